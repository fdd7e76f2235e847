"""The chain head, kept apart from the log: a cut-off tail, a dropped or emptied log, a
shorter valid chain are caught by verify; a consistent rewrite only by an outside anchor
(``--expect-head``). Driven on real SQLite files, a real redis-server and the CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from haltgate import CircuitBreakerManager, ManualCircuitBreaker, ManualClock
from haltgate.store.sqlite import SQLiteStore


def _fill(store: Any, n: int = 6) -> None:
    manager = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker()], store=store, clock=ManualClock()
    )
    for i in range(n // 2):
        manager.halt_all(f"drill {i}", "ops")
        manager.reset("manual", operator="ops")


def _sqlite(tmp_path: Path) -> Path:
    db = tmp_path / "hg.db"
    store = SQLiteStore(db)
    _fill(store)
    assert store.verify_audit().ok
    store.close()
    return db


def _verify(db: Path, **kwargs: Any) -> Any:
    store = SQLiteStore(db)
    try:
        return store.verify_audit(**kwargs)
    finally:
        store.close()


def test_deleting_the_last_entries_is_caught(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        conn.execute("DELETE FROM audit WHERE seq > 4")
    result = _verify(db)
    assert not result.ok and "cut off" in (result.problem or "")


def test_dropping_the_audit_table_is_caught(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE audit")
    result = _verify(db)  # the store recreates the table empty at open
    assert not result.ok and "log ends at entry 0" in (result.problem or "")


def test_a_shorter_valid_chain_is_caught(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    short = tmp_path / "short.db"
    store = SQLiteStore(short)
    _fill(store, 2)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        conn.execute("DELETE FROM audit")
        conn.execute("ATTACH DATABASE ? AS other", (str(short),))
        conn.execute("INSERT INTO audit SELECT * FROM other.audit")
    result = _verify(db)
    assert not result.ok


def test_a_consistent_rewrite_is_caught_only_by_an_outside_anchor(
    tmp_path: Path, run_cli: Any
) -> None:
    db = _sqlite(tmp_path)
    url = f"sqlite:///{db}"
    head = run_cli("--store", url, "audit", "head")
    assert head.returncode == 0 and ":" in head.stdout
    anchor = head.stdout.strip()
    assert run_cli("--store", url, "audit", "verify", "--expect-head", anchor).returncode == 0
    # Rewrite everything consistently (log and head) from another store's valid chain.
    other = tmp_path / "other.db"
    store = SQLiteStore(other)
    _fill(store, 6)
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        conn.execute("DELETE FROM audit")
        conn.execute("ATTACH DATABASE ? AS other", (str(other),))
        conn.execute("INSERT INTO audit SELECT * FROM other.audit")
        conn.execute(
            "UPDATE kv SET value = (SELECT value FROM other.kv WHERE key = 'audit_head') "
            "WHERE key = 'audit_head'"
        )
    assert run_cli("--store", url, "audit", "verify").returncode == 0  # looks fine...
    anchored = run_cli("--store", url, "audit", "verify", "--expect-head", anchor)
    assert anchored.returncode == 1  # ...but not against the head kept outside
    assert "expected head" in anchored.stdout


def test_ltrim_on_redis_is_caught(redis_url: str) -> None:
    pytest.importorskip("redis", reason="the redis extra is installed by scripts/test.sh")
    import redis

    from haltgate.store.redis import RedisStore

    store = RedisStore(redis_url)
    try:
        _fill(store)
        assert store.verify_audit().ok
        client = redis.Redis.from_url(redis_url)
        client.ltrim(f"{store.namespace}:audit", 0, 3)
        result = store.verify_audit()
        assert not result.ok and "cut off" in (result.problem or "")
    finally:
        store.close()
