"""The audit chain's mode is recorded and said: verify names its check, a keyed chain is
never passed without the key, and a writer of the other mode refuses to append."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, ManualClock
from haltgate.store.sqlite import SQLiteStore

KEY = "audit-key-made-by-this-test"


def _entries(db: Path) -> list[Any]:
    store = SQLiteStore(db)
    try:
        return list(store.iter_audit())
    finally:
        store.close()


def test_verify_says_which_check_it_made(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    assert run_cli("--store", url, "halt", "--reason", "r", "--operator", "o").returncode == 0
    plain = run_cli("--store", url, "audit", "verify")
    assert plain.returncode == 0
    assert "SHA-256, unkeyed: anyone with write access could have rewritten it" in plain.stdout
    keyed_url = f"sqlite:///{tmp_path / 'keyed.db'}"
    monkeypatch.setenv("HALTGATE_AUDIT_KEY", KEY)
    assert run_cli("--store", keyed_url, "halt", "--reason", "r", "--operator", "o").returncode == 0
    keyed = run_cli("--store", keyed_url, "audit", "verify")
    assert keyed.returncode == 0 and "HMAC-SHA256 with the key" in keyed.stdout
    # Without the key a keyed chain is not passed: it says why.
    monkeypatch.delenv("HALTGATE_AUDIT_KEY")
    unkeyed = run_cli("--store", keyed_url, "audit", "verify")
    assert unkeyed.returncode == 1
    assert "keyed (HMAC-SHA256)" in unkeyed.stdout


def test_a_writer_without_the_key_refuses_to_append_to_a_keyed_chain(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "keyed.db"
    url = f"sqlite:///{db}"
    monkeypatch.setenv("HALTGATE_AUDIT_KEY", KEY)
    assert run_cli("--store", url, "halt", "--reason", "r", "--operator", "o").returncode == 0
    assert run_cli("--store", url, "reset", "manual", "--operator", "o").returncode == 0
    before = _entries(db)
    monkeypatch.delenv("HALTGATE_AUDIT_KEY")
    halt = run_cli("--store", url, "halt", "--reason", "r2", "--operator", "o")
    assert halt.returncode == 2, halt.stdout + halt.stderr
    assert "HALTGATE_AUDIT_KEY" in halt.stderr and "Traceback" not in halt.stderr
    assert [e.hash for e in _entries(db)] == [e.hash for e in before]
    monkeypatch.setenv("HALTGATE_AUDIT_KEY", KEY)
    assert run_cli("--store", url, "audit", "verify").returncode == 0


def test_a_trading_process_without_the_key_fails_closed_on_a_keyed_chain(
    tmp_path: Path,
) -> None:
    db = tmp_path / "keyed.db"
    keyed = SQLiteStore(db, audit_key=KEY.encode())
    first = CircuitBreakerManager(breakers=[], store=keyed, clock=ManualClock())
    first.halt_all("drill", "ops")
    first.reset("manual", operator="ops")
    first.close()
    assert os.environ.get("HALTGATE_AUDIT_KEY") is None
    store = SQLiteStore(db)
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.10")], store=store, clock=ManualClock()
    )
    try:
        manager.can_trade(current_portfolio_value=100)
        assert manager.can_trade(current_portfolio_value=80) is False  # the trip stands
        # The trip could not be recorded in the keyed chain: the store blocks trading.
        assert manager.record_order() is False
        assert any("could not record" in r for r in manager.get_blocking_reasons())
    finally:
        manager.close()
    reopened = SQLiteStore(db, audit_key=KEY.encode())
    try:
        assert reopened.verify_audit().ok
    finally:
        reopened.close()
