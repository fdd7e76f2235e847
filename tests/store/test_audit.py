"""The audit log on every store: hash chain, tamper detection, HMAC key, JSONL export."""

from __future__ import annotations

import io
import itertools
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, ManualCircuitBreaker
from haltgate.audit import canonical_json, entry_from_fields, verify_entries
from haltgate.store import MemoryStore, Store
from haltgate.store.redis import RedisStore
from haltgate.store.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        made: Store = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "audit.db")
    else:
        made = RedisStore(request.getfixturevalue("redis_url"), namespace="audit", create=True)
    yield made
    made.close()


def fill(store: Store) -> CircuitBreakerManager:
    """Five audited events: trip, halt, reset, reset, a config load."""
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.10"), ManualCircuitBreaker()], store=store
    )
    manager.can_trade(current_portfolio_value=100)
    manager.can_trade(current_portfolio_value=80)  # trip
    manager.halt_all("fat finger", "alice")
    manager.reset("drawdown", operator="bob")
    manager.reset("manual", operator="bob")
    store.append_audit("config_loaded", operator="ops", payload={"path": "x.toml", "n": 1})
    return manager


def test_chain_records_every_change_with_canonical_payload(store: Store) -> None:
    fill(store)
    entries = list(store.iter_audit())
    assert [e.event for e in entries] == [
        "breaker_tripped",
        "breaker_halted",
        "breaker_reset",
        "breaker_reset",
        "config_loaded",
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[1].operator == "alice" and entries[1].breaker == "manual"
    assert all(e.payload == canonical_json(json.loads(e.payload)) for e in entries)
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert store.verify_audit().ok
    assert store.verify_audit().checked == 5


def _tamper(store: Store, how: str) -> None:
    """Change entry 3 the way an attacker with direct access to the store would."""
    if isinstance(store, MemoryStore):
        entries = store._audit
        if how == "alter":
            entries[2] = entry_from_fields({**entries[2].to_dict(), "payload": '{"x":1}'})
        elif how == "delete":
            del entries[2]
        else:
            entries.insert(2, entries[1])
    elif isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        if how == "alter":
            conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = 3")
        elif how == "delete":
            conn.execute("DELETE FROM audit WHERE seq = 3")
        else:
            # Make room at seq 3 (two steps: seq is the primary key).
            conn.execute("UPDATE audit SET seq = -seq WHERE seq >= 3")
            conn.execute("UPDATE audit SET seq = 1 - seq WHERE seq < 0")
            conn.execute(
                "INSERT INTO audit SELECT 3, time, 'mallory', event, breaker, payload, "
                "prev_hash, hash FROM audit WHERE seq = 2"
            )
        conn.commit()
        conn.close()
    else:
        assert isinstance(store, RedisStore)
        client = store._client
        key = store._key("audit")
        raw = client.lindex(key, 2)
        if how == "alter":
            fields = json.loads(raw)
            fields["operator"] = "mallory"
            client.lset(key, 2, canonical_json(fields))
        elif how == "delete":
            client.lrem(key, 1, raw)
        else:
            forged = json.loads(client.lindex(key, 1))
            forged["operator"] = "mallory"
            client.linsert(key, "BEFORE", raw, canonical_json(forged))


@pytest.mark.parametrize("how", ["alter", "delete", "insert"])
def test_verify_names_the_first_tampered_entry(store: Store, how: str) -> None:
    fill(store)
    assert store.verify_audit().ok
    _tamper(store, how)
    result = store.verify_audit()
    assert not result.ok
    assert result.first_bad_seq == 3, result
    assert result.checked == 2
    assert result.problem


def test_sqlite_refuses_update_and_delete_of_the_audit_log(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    try:
        fill(store)
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET operator = 'mallory' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 5")
    conn.close()
    reopened = SQLiteStore(tmp_path / "a.db")
    try:
        assert reopened.verify_audit().checked == 5
    finally:
        reopened.close()


def test_hmac_key_from_environment(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The store under test has no key; a keyed store on the same backend chains with HMAC.
    monkeypatch.setenv("HALTGATE_AUDIT_KEY", "test-key-generated-here")
    if isinstance(store, MemoryStore):
        keyed: Store = MemoryStore()
    elif isinstance(store, SQLiteStore):
        keyed = SQLiteStore(tmp_path / "keyed.db")
    else:
        assert isinstance(store, RedisStore)
        keyed = RedisStore(store.url, namespace="keyed", create=True)
    try:
        fill(keyed)
        entries = list(keyed.iter_audit())
        assert keyed.verify_audit().ok
        assert verify_entries(entries, b"test-key-generated-here").ok
        # Without the key (or with another one) the chain does not verify.
        assert not verify_entries(entries, None).ok
        assert not verify_entries(entries, b"other").ok
    finally:
        keyed.close()


def test_export_jsonl_round_trips_and_verifies(store: Store) -> None:
    fill(store)
    out = io.StringIO()
    assert store.export_audit_jsonl(out) == 5
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    parsed: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert [p["seq"] for p in parsed] == [1, 2, 3, 4, 5]
    assert verify_entries([entry_from_fields(p) for p in parsed], None).ok
    parsed[1]["operator"] = "mallory"
    bad = verify_entries([entry_from_fields(p) for p in parsed], None)
    assert bad.first_bad_seq == 2


def test_two_processes_share_one_chain_on_sqlite(tmp_path: Path) -> None:
    from .conftest import spawn

    db = tmp_path / "shared.db"
    code = (
        "import sys\n"
        "from haltgate.store.sqlite import SQLiteStore\n"
        "s = SQLiteStore(sys.argv[1], store_timeout=5)\n"
        "for i in range(40):\n"
        "    s.append_audit('tick', operator=sys.argv[2], payload={'i': i})\n"
        "s.close()\n"
        "print('done', flush=True)\n"
    )
    procs = [spawn(code, str(db), who) for who in ("p1", "p2")]
    for proc in procs:
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    store = SQLiteStore(db)
    try:
        result = store.verify_audit()
        assert result.ok and result.checked == 80
    finally:
        store.close()


def test_two_processes_share_one_chain_on_redis(redis_url: str) -> None:
    from .conftest import spawn

    code = (
        "import sys\n"
        "from haltgate.store.redis import RedisStore\n"
        "s = RedisStore(sys.argv[1], namespace='race', store_timeout=2, create=True)\n"
        "for i in range(40):\n"
        "    s.append_audit('tick', operator=sys.argv[2], payload={'i': i})\n"
        "s.close()\n"
    )
    procs = [spawn(code, redis_url, who) for who in ("p1", "p2")]
    for proc in procs:
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    store = RedisStore(redis_url, namespace="race")
    try:
        result = store.verify_audit()
        assert result.ok and result.checked == 80
    finally:
        store.close()
