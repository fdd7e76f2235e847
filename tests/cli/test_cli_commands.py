"""The CLI's commands against one shared store (in-process; subprocess tests use SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    ManualClock,
    MemoryStore,
    hash_key,
)
from haltgate.cli import Context, main


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    shared = MemoryStore()
    monkeypatch.setattr(Context, "open_store", lambda self, must_exist: shared)
    monkeypatch.setattr(MemoryStore, "close", lambda self: None)
    return shared


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--store", "memory://", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _trading_process(store: MemoryStore) -> CircuitBreakerManager:
    """What a trading process leaves in the store: a tripped drawdown breaker."""
    clock = ManualClock()
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker(max_drawdown_pct="0.10")], store=store, clock=clock
    )
    manager.can_trade(current_portfolio_value=100_000)
    clock.advance(60)
    manager.can_trade(current_portfolio_value=85_000)
    return manager


def test_status_shows_a_table_and_one_clear_line(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _trading_process(store)
    code, out, _ = _run(capsys, "status")
    assert code == 0
    assert out.splitlines()[0].startswith("TRADING HALTED")
    assert "drawdown: Drawdown 15.0000% exceeds max 10.00%" in out
    header = next(line for line in out.splitlines() if line.startswith("BREAKER"))
    assert header.split() == ["BREAKER", "TYPE", "STATE", "SINCE", "BY", "REASON"]
    row = next(line for line in out.splitlines() if line.startswith("drawdown "))
    assert "TRIPPED" in row and "UTC" in row
    code, out, _ = _run(capsys, "status", "--json")
    payload = json.loads(out)
    assert payload["trading_allowed"] is False
    (breaker,) = payload["breakers"]
    assert breaker["name"] == "drawdown" and breaker["state"] == "TRIPPED"
    assert breaker["since"].endswith("+00:00")


def test_global_halt_and_reset_with_operator(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "halt", "--reason", "exchange outage", "--operator", "alice")
    assert code == 0 and "HALTED ALL TRADING" in out
    snapshot = store.load_snapshot("manual")
    assert snapshot is not None and snapshot["state"] == "MANUALLY_HALTED"
    assert snapshot["trip"]["operator"] == "alice"
    code, out, _ = _run(capsys, "status")
    assert out.startswith("TRADING HALTED")
    assert "alice" in out and "exchange outage" in out
    code, out, _ = _run(capsys, "reset", "manual", "--operator", "bob")
    assert code == 0 and "TRADING ALLOWED" in out
    assert store.load_snapshot("manual")["state"] == "NORMAL"  # type: ignore[index]
    events = [(e.event, e.operator) for e in store.iter_audit()]
    assert ("breaker_halted", "alice") in events
    assert ("breaker_reset", "bob") in events


def test_halt_and_reset_a_named_breaker_keeps_its_data(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    trader = _trading_process(store)
    code, _out, err = _run(capsys, "reset", "drawdown", "--operator", "carol", "--reason", "ok")
    assert code == 0, err
    # The trading process sees the reset and, like a local reset, re-baselines its peak at
    # the latest value: a fresh 10 % allowance.
    snapshot = store.load_snapshot("drawdown")
    assert snapshot is not None and snapshot["state"] == "NORMAL"
    trader.get_breaker("drawdown").adopt_remote(snapshot)  # type: ignore[union-attr]
    assert trader.can_trade(current_portfolio_value=84_000) is True
    code, _, _ = _run(capsys, "halt", "drawdown", "--reason", "check", "--operator", "dave")
    assert code == 0
    assert store.load_snapshot("drawdown")["state"] == "MANUALLY_HALTED"  # type: ignore[index]
    # The peak window (opaque to the CLI) is still there.
    assert store.load_snapshot("drawdown")["data"]["window"]  # type: ignore[index]


def test_reset_needs_operator_and_unknown_names_are_usage_errors(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--store", "memory://", "reset", "manual"])
    assert info.value.code == 2
    code, _, err = _run(capsys, "reset", "nope", "--operator", "x")
    assert code == 2 and "no breaker named 'nope'" in err
    code, _, err = _run(capsys, "halt", "--reason", " ", "--operator", "x")
    assert code == 2 and "reason" in err


def _keyed(tmp_path: Path, store: MemoryStore) -> Path:
    path = tmp_path / "keyed.toml"
    path.write_text(
        '[store]\nurl = "memory://"\n[[breakers]]\ntype = "manual"\n'
        f'[kill_switch]\nkey_hash = "{hash_key("open-sesame")}"\n'
    )
    return path


def test_keyed_kill_switch_needs_the_key_even_with_store_only(
    tmp_path: Path, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _keyed(tmp_path, store)
    assert main(["--config", str(config), "halt", "--reason", "r", "--operator", "a"]) == 0
    capsys.readouterr()
    # Without the config the store still knows the key is required.
    code, _, err = _run(capsys, "reset", "manual", "--operator", "a")
    assert code == 1 and "key" in err
    code, _, err = _run(capsys, "reset", "manual", "--operator", "a", "--key", "wrong")
    assert code == 1 and "wrong key" in err
    assert store.load_snapshot("manual")["state"] == "MANUALLY_HALTED"  # type: ignore[index]
    code, _out, err = _run(capsys, "reset", "manual", "--operator", "a", "--key", "open-sesame")
    assert code == 0, err
    refused = [e for e in store.iter_audit() if e.event == "kill_switch_reset_refused"]
    assert len(refused) == 2


def test_five_wrong_keys_lock_resets_out(
    tmp_path: Path, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _keyed(tmp_path, store)
    main(["--config", str(config), "halt", "--reason", "r", "--operator", "a"])
    for _ in range(5):
        assert _run(capsys, "reset", "manual", "--operator", "a", "--key", "bad")[0] == 1
    code, _, err = _run(capsys, "reset", "manual", "--operator", "a", "--key", "open-sesame")
    assert code == 1 and "locked out" in err


def test_audit_tail_verify_export(
    tmp_path: Path, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _trading_process(store)
    _run(capsys, "halt", "--reason", "r", "--operator", "alice")
    code, out, _ = _run(capsys, "audit", "tail", "-n", "1")
    assert code == 0
    header, *entries = out.splitlines()
    assert header.split()[0] == "SEQ" and len(entries) == 1
    assert "breaker_halted" in entries[0] and "alice" in entries[0]
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 0 and "audit log OK: 2 entries verified" in out
    target = tmp_path / "audit.jsonl"
    code, _, _ = _run(capsys, "audit", "export", "--jsonl", str(target))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [e["seq"] for e in lines] == [1, 2]
    assert lines[1]["event"] == "breaker_halted"
    assert json.loads(lines[1]["payload"])["reason"] == "r"
    # Tamper with an entry: verify fails with exit 1 and names it.
    from dataclasses import replace

    entries: list[Any] = store._audit
    entries[0] = replace(entries[0], operator="mallory")
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 1 and "entry 1" in out


def test_store_is_required(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    monkeypatch.delenv("HALTGATE_STORE", raising=False)
    monkeypatch.delenv("HALTGATE_CONFIG", raising=False)
    assert main(["status"]) == 2
    assert "--store" in capsys.readouterr().err


def test_missing_sqlite_file_is_not_an_empty_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", f"sqlite:///{tmp_path}/absent.db", "status"]) == 2
    assert "no store at" in capsys.readouterr().err


def test_an_unreachable_store_reads_as_halted(
    store: MemoryStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trading processes refuse orders while the store is down (fail-closed): status must not
    # say trading is allowed just because no breaker is tripped.
    _run(capsys, "halt", "--reason", "r", "--operator", "a")
    _run(capsys, "reset", "manual", "--operator", "a")
    monkeypatch.setattr(store, "blocking_reason", lambda: "store unavailable: disk full")
    code, out, _ = _run(capsys, "status")
    assert code == 0
    assert out.startswith("TRADING HALTED")
    assert "store unavailable: disk full" in out
