"""Shared fixtures: a ManualClock so that no test depends on real time, and ``run_cli``
(the installed ``haltgate`` console script in a subprocess, against this checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import haltgate
from haltgate import ManualClock

START = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)  # a Monday, mid-session in New York


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock(START)


RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _command() -> list[str]:
    script = Path(sys.executable).parent / "haltgate"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "haltgate"]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """``run_cli(*args, module=False, stdin=None)``: the CLI's completed process."""
    src = str(Path(haltgate.__file__).resolve().parents[1])

    def run(
        *args: str, module: bool = False, stdin: str | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        # Read at each call, so a test may set a variable (e.g. with monkeypatch) first.
        env = dict(os.environ)
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("HALTGATE_CONFIG", None)
        env.pop("HALTGATE_STORE", None)
        base = [sys.executable, "-m", "haltgate"] if module else _command()
        return subprocess.run(
            [*base, *args],
            cwd=cwd or tmp_path,
            capture_output=True,
            text=True,
            env=env,
            input=stdin,
            timeout=120,
        )

    return run
