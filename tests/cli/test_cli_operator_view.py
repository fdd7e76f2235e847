"""What an operator reads first: who acted last, audit columns, check-config FILE."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from haltgate import CircuitBreakerManager, ManualCircuitBreaker, ManualClock
from haltgate.store.sqlite import SQLiteStore

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _row(status: str, name: str) -> list[str]:
    # The breakers' table is the second block (the processes section follows it).
    header, *lines = status.split("\n\n")[1].splitlines()
    assert header.split() == ["BREAKER", "TYPE", "STATE", "SINCE", "BY", "REASON"]
    (line,) = [line for line in lines if line.split()[0] == name]
    return line.split()


def test_status_shows_who_reset_a_breaker(tmp_path: Path, run_cli: RunCli) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    assert (
        run_cli("--store", url, "halt", "--reason", "outage", "--operator", "alice").returncode == 0
    )
    assert run_cli("--store", url, "reset", "manual", "--operator", "bob").returncode == 0
    status = run_cli("--store", url, "status")
    assert status.returncode == 0, status.stderr
    row = _row(status.stdout, "manual")
    assert row[2] == "NORMAL" and row[-2] == "bob", row  # BY, then REASON "-"
    report = json.loads(run_cli("--store", url, "status", "--json").stdout)
    (manual,) = [b for b in report["breakers"] if b["name"] == "manual"]
    assert manual["operator"] == "bob"
    halted = run_cli("--store", url, "halt", "--reason", "again", "--operator", "carol")
    assert halted.returncode == 0
    assert _row(run_cli("--store", url, "status").stdout, "manual")[-2:] == ["carol", "again"]


def test_a_snapshot_written_before_by_existed_still_reads(tmp_path: Path, run_cli: RunCli) -> None:
    db = tmp_path / "hg.db"
    store = SQLiteStore(db)
    try:
        manager = CircuitBreakerManager(
            breakers=[ManualCircuitBreaker()], store=store, clock=ManualClock()
        )
        manager.halt_all(reason="old", operator="alice")
        manager.get_breaker("manual").reset(operator="bob")  # type: ignore[union-attr]
        snapshot = store.load_snapshot("manual")
        assert snapshot is not None and snapshot["by"] == "bob"
        del snapshot["by"]  # as an older haltgate wrote it
        with store._locked():  # write() is called with the write lock held (its contract)
            store.write("manual", snapshot, [])
    finally:
        store.close()
    status = run_cli("--store", f"sqlite:///{db}", "status")
    assert status.returncode == 0, status.stderr
    row = _row(status.stdout, "manual")
    assert row[2] == "NORMAL" and row[-2:] == ["-", "-"], row


def test_audit_tail_has_a_header_line(tmp_path: Path, run_cli: RunCli) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    assert (
        run_cli("--store", url, "halt", "--reason", "outage", "--operator", "alice").returncode == 0
    )
    tail = run_cli("--store", url, "audit", "tail")
    assert tail.returncode == 0, tail.stderr
    header, first, *_ = tail.stdout.splitlines()
    assert header.split()[:2] == ["SEQ", "TIME"] and "EVENT" in header and "OPERATOR" in header
    # The columns line up with the entries.
    assert header.index("EVENT") == first.index("breaker_halted")
    assert header.index("OPERATOR") == first.index("alice")
    lines = run_cli("--store", url, "audit", "tail", "--json").stdout.splitlines()
    assert all(json.loads(line) for line in lines)  # --json stays one object per line


def test_check_config_takes_the_file_as_argument(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "a.toml").write_text('[[breakers]]\ntype = "manual"\n')
    (tmp_path / "b.toml").write_text('[[breakers]]\ntype = "manual"\n')
    positional = run_cli("check-config", "a.toml")
    assert positional.returncode == 0, positional.stderr
    assert positional.stdout.startswith("config OK: a.toml")
    assert run_cli("--config", "a.toml", "check-config").stdout == positional.stdout
    assert run_cli("--config", "a.toml", "check-config", "a.toml").returncode == 0
    both = run_cli("--config", "a.toml", "check-config", "b.toml")
    assert both.returncode == 2 and "'a.toml'" in both.stderr and "'b.toml'" in both.stderr
    missing = run_cli("check-config")
    assert missing.returncode == 2 and "check-config FILE" in missing.stderr
