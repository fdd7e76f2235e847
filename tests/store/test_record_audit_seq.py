"""Every breaker record names the seq of its last audit entry (written in the same
transaction), and verify checks each record against the log: a record whose state was
edited back to NORMAL, that names an entry the log does not hold, or that was rolled back
to an older entry is named. Real SQLite files (edited with sqlite3), a real redis-server
(edited with HSET) and the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, ManualClock
from haltgate.store import MemoryStore
from haltgate.store.sqlite import SQLiteStore


def _halted(store: Any) -> CircuitBreakerManager:
    """A drawdown trip, a halt, a reset of the trip: manual is halted, drawdown NORMAL."""
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.10")], store=store, clock=ManualClock()
    )
    manager.can_trade(current_portfolio_value=100)
    manager.can_trade(current_portfolio_value=80)
    manager.halt_all("drill", "ops")
    manager.reset("drawdown", operator="ops")
    return manager


def _sqlite(tmp_path: Path) -> Path:
    db = tmp_path / "hg.db"
    store = SQLiteStore(db)
    manager = _halted(store)
    result = store.verify_audit()
    assert result.ok and result.notes == ()
    manager.close()
    return db


def _verify(db: Path) -> Any:
    store = SQLiteStore(db)
    try:
        return store.verify_audit()
    finally:
        store.close()


def _edit_state(conn: sqlite3.Connection, name: str, state: str) -> None:
    (raw,) = conn.execute("SELECT state FROM breakers WHERE name = ?", (name,)).fetchone()
    snapshot = json.loads(raw)
    snapshot["state"] = state
    conn.execute("UPDATE breakers SET state = ? WHERE name = ?", (json.dumps(snapshot), name))


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_each_record_names_its_last_state_entry(kind: str, tmp_path: Path) -> None:
    store: Any = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db")
    try:
        _halted(store)
        entries = list(store.iter_audit())
        assert [e.event for e in entries] == [
            "breaker_tripped",
            "breaker_halted",
            "breaker_reset",
        ]
        records = store.load_all_records()
        assert records["drawdown"][1] == 3 and records["manual"][1] == 2
        # An audit entry that records no state (a refused reset, a config load) moves none.
        store.append_audit("kill_switch_reset_refused", breaker="manual", payload={"x": 1})
        assert store.load_all_records()["manual"][1] == 2
        assert store.verify_audit().ok
    finally:
        store.close()


def test_a_record_edited_back_to_normal_is_named(tmp_path: Path, run_cli: Any) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        _edit_state(conn, "manual", "NORMAL")  # the log is left alone
    result = _verify(db)
    assert not result.ok
    assert len(result.records) == 1
    assert "'manual' is NORMAL" in result.records[0]
    assert "entry 2 (breaker_halted) says MANUALLY_HALTED" in result.records[0]
    done = run_cli("--store", f"sqlite:///{db}", "audit", "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "AUDIT CHECK FAILED" in done.stdout and "'manual' is NORMAL" in done.stdout


def test_a_record_edited_and_unnamed_is_still_checked_against_the_log(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        _edit_state(conn, "manual", "NORMAL")
        conn.execute("UPDATE breakers SET audit_seq = NULL WHERE name = 'manual'")
    result = _verify(db)
    assert not result.ok and "'manual' is NORMAL" in result.records[0]


def test_a_record_naming_an_entry_beyond_the_head_is_named(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE breakers SET audit_seq = 99 WHERE name = 'drawdown'")
    result = _verify(db)
    assert not result.ok
    assert "'drawdown' names audit entry 99, which the log does not hold" in result.records[0]


def test_a_record_naming_another_breakers_entry_is_named(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE breakers SET audit_seq = 2 WHERE name = 'drawdown'")
    result = _verify(db)
    assert not result.ok and "which is for 'manual'" in result.records[0]


def test_a_record_rolled_back_to_an_older_entry_is_named(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        # drawdown as it was after its trip (entry 1), although entry 3 reset it.
        _edit_state(conn, "drawdown", "TRIPPED")
        conn.execute("UPDATE breakers SET audit_seq = 1 WHERE name = 'drawdown'")
    result = _verify(db)
    assert not result.ok
    assert (
        "'drawdown' names audit entry 1 but the log records a later change" in (result.records[0])
    )


def test_a_tripped_record_without_any_entry_is_named(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO breakers (name, state, data, change_seq) VALUES (?, ?, '{}', 0)",
            ("ghost", json.dumps({"name": "ghost", "type": "manual", "state": "TRIPPED"})),
        )
    result = _verify(db)
    assert not result.ok and "'ghost' is TRIPPED" in result.records[0]
    assert "names no audit entry" in result.records[0]


def _as_an_earlier_version(db: Path) -> None:
    """What a file written before records named their entry (and before the marker) has."""
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE breakers DROP COLUMN audit_seq")
        conn.execute("DELETE FROM kv WHERE key = 'store_epoch'")


def test_records_of_an_earlier_version_are_noted_not_failed(tmp_path: Path, run_cli: Any) -> None:
    db = _sqlite(tmp_path)
    _as_an_earlier_version(db)
    result = _verify(db)
    assert result.ok, result.problem
    assert len(result.notes) == 2
    assert all(
        "no audit seq recorded (written before this check existed)" in n for n in result.notes
    )
    done = run_cli("--store", f"sqlite:///{db}", "audit", "verify")
    assert done.returncode == 0 and "note: breaker 'drawdown'" in done.stdout
    # The next change names its entry again.
    store = SQLiteStore(db)
    manager = CircuitBreakerManager(breakers=[], store=store, clock=ManualClock())
    manager.reset("manual", operator="ops")
    try:
        assert store.load_all_records()["manual"][1] is not None
        assert len(store.verify_audit().notes) == 1
    finally:
        manager.close()


def test_an_edited_record_of_an_earlier_version_still_fails(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    _as_an_earlier_version(db)
    with sqlite3.connect(db) as conn:
        _edit_state(conn, "manual", "NORMAL")
    result = _verify(db)
    assert not result.ok and "'manual' is NORMAL" in result.records[0]


def test_a_redis_record_edited_back_to_normal_is_named(redis_url: str, run_cli: Any) -> None:
    pytest.importorskip("redis", reason="the redis extra is installed by scripts/test.sh")
    import redis

    from haltgate.store.redis import RedisStore

    store = RedisStore(redis_url)
    manager = _halted(store)
    try:
        assert store.verify_audit().ok
        assert store.load_all_records()["manual"][1] == 2
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        key = f"{store.namespace}:breaker:manual"
        snapshot = json.loads(client.hget(key, "state"))
        snapshot["state"] = "NORMAL"
        client.hset(key, "state", json.dumps(snapshot))  # the log is left alone
        client.close()
        result = store.verify_audit()
        assert not result.ok and "'manual' is NORMAL" in result.records[0]
    finally:
        manager.close()
    done = run_cli("--store", redis_url, "audit", "verify")
    assert done.returncode == 1 and "'manual' is NORMAL" in done.stdout
