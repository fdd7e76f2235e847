"""The CLI decodes its arguments with replacement: a non-UTF-8 reason still halts (SPEC §2)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_a_non_utf8_reason_still_halts_and_is_stored(run_cli: RunCli, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'hg.db'}"
    # bytes in argv, as a latin-1 terminal sends "café": not UTF-8.
    done = run_cli("--store", store, "halt", "--reason", b"caf\xe9 outage", "--operator", "bob")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    status = run_cli("--store", store, "status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["trading_allowed"] is False
    (row,) = [b for b in data["breakers"] if b["name"] == "manual"]
    assert row["state"] == "MANUALLY_HALTED"
    assert row["reason"] == "caf\ufffd outage" and row["operator"] == "bob"
