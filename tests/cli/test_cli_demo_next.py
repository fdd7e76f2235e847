"""The demo's ``next:`` lines run as printed, also when ``haltgate`` is not on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import haltgate

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_the_demos_next_commands_run_as_printed_without_haltgate_on_path(
    tmp_path: Path, run_cli: RunCli
) -> None:
    demo = run_cli("demo", "--db", "demo.db")
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.split("\nnext: ", 1)[1].splitlines()
    commands = [line.strip() for line in lines if line.strip()]
    assert [c.split()[-1] for c in commands] == ["status", "verify"]
    env = dict(os.environ)
    env["PATH"] = "/usr/bin:/bin"  # no venv: `haltgate` alone would not be found
    env["PYTHONPATH"] = str(Path(haltgate.__file__).resolve().parents[1])
    assert Path(sys.executable).parent.as_posix() not in env["PATH"]
    for command in commands:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
    assert "audit log OK" in done.stdout
