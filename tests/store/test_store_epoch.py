"""A store that lost its data is noticed (SPEC §6): the store holds an epoch marker written
when it is set up; a namespace without it is never taken for a new one, and a marker that
disappears or changes, or an audit head that goes back, under a running process fails it
closed with ``store lost its data`` until an operator re-initialises the store
(``haltgate store init``, audited); then each process writes back the halts it holds.

A real redis-server (FLUSHDB, a restart without persistence), real SQLite files, the CLI
in subprocesses."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerManager,
    ManualCircuitBreaker,
    ManualClock,
    OrderRateCircuitBreaker,
)
from haltgate.store.sqlite import SQLiteStore

from .conftest import RedisServer
from .conftest import wait_for as _wait_for

pytestmark = pytest.mark.timeout(90)

LOST = "store lost its data"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Poll ``condition`` closely (the figures printed are detection times)."""
    return _wait_for(condition, timeout, poll=0.002)


def _redis() -> Any:
    pytest.importorskip("redis", reason="the redis extra is installed by scripts/test.sh")
    from haltgate.store.redis import RedisStore

    return RedisStore


def _flushdb(server: RedisServer) -> None:
    client: Any = server.client()
    try:
        client.flushdb()
    finally:
        client.close()


def _lost(manager: CircuitBreakerManager) -> bool:
    return any(LOST in reason for reason in manager.get_blocking_reasons())


# --------------------------------------------------------------------------- Redis
def test_a_flushed_namespace_is_reported_by_status_and_verify(
    redis_server: RedisServer, redis_url: str, run_cli: Any
) -> None:
    RedisStore = _redis()
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=RedisStore(redis_url))
    manager.halt_all("before the flush", "ops")
    manager.close()
    _flushdb(redis_server)  # no process running
    status = run_cli("--store", redis_url, "status")
    assert status.returncode == 1, status.stdout + status.stderr
    assert "TRADING ALLOWED" not in status.stdout and LOST in status.stdout
    as_json = run_cli("--store", redis_url, "status", "--json")
    assert as_json.returncode == 1
    payload = json.loads(as_json.stdout)
    assert payload["trading_allowed"] is False and payload["store_lost_data"] is True
    verify = run_cli("--store", redis_url, "audit", "verify")
    assert verify.returncode == 1 and "no epoch marker" in verify.stdout
    # A process started now refuses trading too, and writes nothing into the namespace.
    late = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker(), OrderRateCircuitBreaker(10, 60)],
        store=RedisStore(redis_url),
    )
    try:
        assert late.can_trade() is False and _lost(late)
        assert late.record_order() is False
        late.halt_all("still halting in memory", "ops")
        assert late.can_trade() is False
    finally:
        late.close()
    # fail_open keeps trading through an outage, not through lost data.
    open_store = RedisStore(redis_url, fail_open=True)
    try:
        assert LOST in (open_store.blocking_reason() or "")
    finally:
        open_store.close()
    client: Any = redis_server.client()
    try:
        assert client.keys("haltgate:*") == []
    finally:
        client.close()


def test_flushdb_under_a_halted_process_fails_it_closed_and_store_init_writes_the_halt_back(
    redis_server: RedisServer, redis_url: str, run_cli: Any
) -> None:
    RedisStore = _redis()
    trading = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker(), ManualCircuitBreaker(name="desk")],
        store=RedisStore(redis_url),
    )
    other = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=RedisStore(redis_url))
    try:
        trading.halt_all("halted before the flush", "ops")
        wait_for(lambda: other.can_trade() is False)
        _flushdb(redis_server)
        flushed = time.monotonic()
        wait_for(lambda: _lost(trading), timeout=2)
        took = time.monotonic() - flushed
        print(f"FLUSHDB noticed after {took * 1000:.0f} ms")
        assert took < 0.5  # the watcher polls every 20 ms
        wait_for(lambda: _lost(other), timeout=2)
        assert trading.can_trade() is False and trading.record_order() is False
        # Nothing is taken for a new store meanwhile: the halt is not written anywhere.
        time.sleep(0.1)
        status = run_cli("--store", redis_url, "status")
        assert status.returncode == 1 and LOST in status.stdout
        assert "MANUALLY_HALTED" not in status.stdout
        # A reset cannot be recorded in a store that lost its data.
        from haltgate import StoreUnavailableError

        with pytest.raises(StoreUnavailableError):
            other.reset("manual", operator="ops")
        init = run_cli("--store", redis_url, "store", "init", "--operator", "alice")
        assert init.returncode == 0, init.stdout + init.stderr
        assert "INITIALISED" in init.stdout
        # Each process adopts the new epoch and writes back the halt it holds.
        wait_for(lambda: not _lost(trading) and not _lost(other), timeout=2)
        probe = RedisStore(redis_url)
        try:
            wait_for(lambda: probe.load_snapshot("manual") is not None, timeout=2)
            stored = probe.load_snapshot("manual")
            assert stored is not None and stored["state"] == "MANUALLY_HALTED"
            assert stored["trip"]["reason"] == "halted before the flush"
            events = [e.event for e in probe.iter_audit()]
            assert events[0] == "store_initialised"
            assert "breaker_reasserted" in events
            wait_for(lambda: probe.verify_audit().ok, timeout=2)
        finally:
            probe.close()
        status = run_cli("--store", redis_url, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "MANUALLY_HALTED" in status.stdout and "halted before the flush" in status.stdout
        assert trading.can_trade() is False and other.can_trade() is False
        # Trading resumes only per the breakers' states: the operator's reset is real now.
        trading.reset("manual", operator="alice")
        wait_for(lambda: other.can_trade(), timeout=2)
        assert trading.can_trade()
    finally:
        trading.close()
        other.close()


def test_redis_restarted_empty_is_lost_until_store_init(
    redis_server: RedisServer, redis_url: str, run_cli: Any
) -> None:
    RedisStore = _redis()
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=RedisStore(redis_url))
    try:
        manager.halt_all("before the restart", "ops")
        redis_server.stop(keep_data=False)
        redis_server.start()  # same port, no data
        wait_for(lambda: _lost(manager), timeout=5)
        assert manager.can_trade() is False
        status = run_cli("--store", redis_url, "status")
        assert status.returncode == 1 and LOST in status.stdout
        init = run_cli("store", "init", redis_url, "--operator", "alice")
        assert init.returncode == 0, init.stdout + init.stderr
        wait_for(lambda: not _lost(manager), timeout=2)
        assert manager.can_trade() is False  # still halted, and stored again:
        wait_for(lambda: "before the restart" in run_cli("--store", redis_url, "status").stdout)
        late = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=RedisStore(redis_url))
        try:
            assert late.can_trade() is False
            assert late.get_trip_reasons() == {"manual": "before the restart"}
        finally:
            late.close()
    finally:
        manager.close()


def test_redis_restarted_with_its_data_is_not_lost(
    redis_server: RedisServer, redis_url: str
) -> None:
    RedisStore = _redis()
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=RedisStore(redis_url))
    try:
        manager.halt_all("kept", "ops")
        redis_server.stop()  # saved first: comes back with its data (as with AOF)
        redis_server.start()
        wait_for(lambda: manager.store.blocking_reason() is None, timeout=5)
        assert manager.store.lost_data_reason() is None
        assert manager.can_trade() is False
    finally:
        manager.close()


def test_create_sets_up_only_an_empty_namespace(redis_url: str) -> None:
    RedisStore = _redis()
    fresh = RedisStore(redis_url, namespace="fresh", create=True)
    try:
        assert fresh.lost_data_reason() is None and fresh.blocking_reason() is None
        marker = fresh.load_epoch()
        assert marker is not None and marker["how"] == "created"
        assert list(fresh.iter_audit()) == []  # nothing to lose: not audited
    finally:
        fresh.close()
    again = RedisStore(redis_url, namespace="fresh", create=True)
    try:
        assert again.load_epoch() == marker  # an existing marker is kept
    finally:
        again.close()
    # A namespace that holds data but no marker (an earlier version's, or one that lost
    # its marker) is not set up by create=True.
    client: Any = again._client.__class__.from_url(redis_url, decode_responses=True)
    try:
        client.rpush("old:audit", "{}")
    finally:
        client.close()
    old = RedisStore(redis_url, namespace="old", create=True)
    try:
        assert old.load_epoch() is None
        reason = old.blocking_reason()
        assert reason is not None and LOST in reason and "holds haltgate data" in reason
    finally:
        old.close()
    # Without create=True a new namespace is never taken for new.
    bare = RedisStore(redis_url, namespace="bare")
    try:
        assert LOST in (bare.blocking_reason() or "")
    finally:
        bare.close()


def test_store_init_on_an_initialised_store_changes_nothing_unless_a_new_epoch_is_asked(
    redis_url: str, run_cli: Any
) -> None:
    RedisStore = _redis()
    store = RedisStore(redis_url)
    before = store.load_epoch()
    store.close()
    again = run_cli("--store", redis_url, "store", "init", "--operator", "alice")
    assert again.returncode == 0 and "already initialised" in again.stdout
    probe = RedisStore(redis_url)
    try:
        assert probe.load_epoch() == before and list(probe.iter_audit()) == []
    finally:
        probe.close()
    forced = run_cli("--store", redis_url, "store", "init", "--operator", "alice", "--new-epoch")
    assert forced.returncode == 0 and "INITIALISED" in forced.stdout
    probe = RedisStore(redis_url)
    try:
        after = probe.load_epoch()
        assert after is not None and before is not None and after["id"] != before["id"]
        assert after["previous"] == before["id"]
        entries = list(probe.iter_audit())
        assert [e.event for e in entries] == ["store_initialised"]
        assert entries[0].operator == "alice"
        assert probe.verify_audit().ok
    finally:
        probe.close()


def test_another_epoch_under_a_running_process_is_lost_until_store_init(
    redis_server: RedisServer, redis_url: str
) -> None:
    RedisStore = _redis()
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=RedisStore(redis_url))
    try:
        manager.halt_all("held", "ops")
        other = RedisStore(redis_url, namespace="other", create=True)
        foreign = other.load_epoch()
        other.close()
        client: Any = redis_server.client()
        try:  # another store's marker where this one's was (its data, restored here)
            client.set("haltgate:kv:store_epoch", json.dumps(foreign))
        finally:
            client.close()
        wait_for(lambda: _lost(manager), timeout=2)
        assert "another epoch marker" in manager.get_blocking_reasons()[0]
        # A namespace flushed and set up again with create=True is no re-initialisation.
        _flushdb(redis_server)
        RedisStore(redis_url, create=True).close()
        time.sleep(0.1)
        assert _lost(manager)
        operator = RedisStore(redis_url)
        try:
            _marker, written = operator.initialise("alice", new_epoch_anyway=True)
            assert written
        finally:
            operator.close()
        wait_for(lambda: not _lost(manager), timeout=2)
        assert manager.can_trade() is False
        probe = RedisStore(redis_url)
        try:
            wait_for(
                lambda: (probe.load_snapshot("manual") or {}).get("state") == "MANUALLY_HALTED"
            )
        finally:
            probe.close()
    finally:
        manager.close()


def test_an_audit_head_that_goes_back_fails_a_running_process_closed(
    redis_server: RedisServer, redis_url: str
) -> None:
    RedisStore = _redis()
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=RedisStore(redis_url))
    try:
        for i in range(3):
            manager.halt_all(f"drill {i}", "ops")
            manager.reset("manual", operator="ops")
        wait_for(lambda: manager.store._head_high == 6)
        client: Any = redis_server.client()
        try:
            # An older copy: the log and head as they were two entries ago.
            client.ltrim("haltgate:audit", 0, 3)
            entry = json.loads(client.lindex("haltgate:audit", 3))
            client.set("haltgate:audit:head", f"4:{entry['hash']}")
        finally:
            client.close()
        wait_for(lambda: _lost(manager), timeout=2)
        assert "audit head went back from entry 6 to entry 4" in manager.get_blocking_reasons()[0]
    finally:
        manager.close()


def test_store_create_is_a_strict_boolean_in_the_config(tmp_path: Path, run_cli: Any) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\nurl = "redis://127.0.0.1:1/0"\ncreate = "true"\n')
    done = run_cli("--config", str(bad), "check-config")
    assert done.returncode == 2 and "store.create" in done.stderr
    sqlite_file = tmp_path / "sqlite.toml"
    sqlite_file.write_text('[store]\nurl = "sqlite:///x.db"\ncreate = true\n')
    done = run_cli("--config", str(sqlite_file), "check-config")
    assert done.returncode == 2 and "store.create" in done.stderr
    good = tmp_path / "good.toml"
    good.write_text('[store]\nurl = "redis://127.0.0.1:1/0"\ncreate = true\n')
    done = run_cli("--config", str(good), "check-config")
    assert done.returncode == 0, done.stderr
    assert "create=true" in done.stdout


# --------------------------------------------------------------------------- SQLite
def test_a_new_sqlite_file_is_set_up_and_an_earlier_versions_file_adopted_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hg.db"
    store = SQLiteStore(db)
    marker = store.load_epoch()
    assert marker is not None and marker["how"] == "created"
    assert list(store.iter_audit()) == [] and store.verify_audit().ok
    store.close()
    with sqlite3.connect(db) as conn:  # what a file of an earlier version lacks
        conn.execute("DELETE FROM kv WHERE key = 'store_epoch'")
    adopted = SQLiteStore(db)
    try:
        marker = adopted.load_epoch()
        assert marker is not None and marker["how"] == "adopted"
        assert [e.event for e in adopted.iter_audit()] == ["store_epoch_adopted"]
        assert adopted.lost_data_reason() is None and adopted.verify_audit().ok
    finally:
        adopted.close()
    again = SQLiteStore(db)
    try:
        assert again.load_epoch() == marker
        assert len(list(again.iter_audit())) == 1
    finally:
        again.close()


def test_a_marker_removed_under_a_running_sqlite_process_fails_it_closed(
    tmp_path: Path, run_cli: Any
) -> None:
    db = tmp_path / "hg.db"
    manager = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker()], store=SQLiteStore(db), clock=ManualClock()
    )
    try:
        manager.halt_all("held", "ops")
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM kv WHERE key = 'store_epoch'")
        took = wait_for(lambda: _lost(manager), timeout=2)
        print(f"marker removal noticed after {took * 1000:.0f} ms")
        assert manager.can_trade() is False
        init = run_cli("--store", f"sqlite:///{db}", "store", "init", "--operator", "alice")
        assert init.returncode == 0, init.stdout + init.stderr
        wait_for(lambda: not _lost(manager), timeout=2)
        assert manager.can_trade() is False
        done = run_cli("--store", f"sqlite:///{db}", "audit", "verify")
        assert done.returncode == 0, done.stdout
    finally:
        manager.close()


def test_another_marker_in_a_running_sqlite_store_fails_it_closed(tmp_path: Path) -> None:
    db = tmp_path / "hg.db"
    other = SQLiteStore(tmp_path / "other.db")
    foreign = other.load_epoch()
    other.close()
    manager = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker()], store=SQLiteStore(db), clock=ManualClock()
    )
    try:
        assert manager.can_trade()
        with sqlite3.connect(db) as conn:  # another store's data where this one was
            conn.execute(
                "UPDATE kv SET value = ? WHERE key = 'store_epoch'", (json.dumps(foreign),)
            )
        wait_for(lambda: _lost(manager), timeout=2)
        assert "another epoch marker" in manager.get_blocking_reasons()[0]
    finally:
        manager.close()


def test_an_audit_head_that_goes_back_in_sqlite_fails_a_running_process_closed(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hg.db"
    manager = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker()], store=SQLiteStore(db), clock=ManualClock()
    )
    try:
        for i in range(2):
            manager.halt_all(f"drill {i}", "ops")
            manager.reset("manual", operator="ops")
        wait_for(lambda: manager.store._head_high == 4)
        with sqlite3.connect(db) as conn:  # an older copy of the log and its head
            conn.execute("DROP TRIGGER audit_no_delete")
            conn.execute("DELETE FROM audit WHERE seq > 2")
            (digest,) = conn.execute("SELECT hash FROM audit WHERE seq = 2").fetchone()
            conn.execute(
                "UPDATE kv SET value = ? WHERE key = 'audit_head'",
                (json.dumps({"seq": 2, "hash": digest}),),
            )
        wait_for(lambda: _lost(manager), timeout=2)
        assert "audit head went back from entry 4 to entry 2" in (manager.get_blocking_reasons()[0])
    finally:
        manager.close()


def test_processes_creating_one_sqlite_file_at_once_agree_on_one_new_epoch(
    tmp_path: Path,
) -> None:
    from .conftest import read_line, spawn

    db = tmp_path / "race.db"
    code = (
        "import sys\n"
        "from haltgate.store.sqlite import SQLiteStore\n"
        "s = SQLiteStore(sys.argv[1], store_timeout=5)\n"
        "print(s.load_epoch()['id'], flush=True)\n"
        "s.close()\n"
    )
    procs = [spawn(code, str(db)) for _ in range(4)]
    ids = {read_line(proc, 30) for proc in procs}
    for proc in procs:
        assert proc.wait(timeout=30) == 0
    assert len(ids) == 1  # one marker, made with the tables; nobody adopted the file
    store = SQLiteStore(db)
    try:
        marker = store.load_epoch()
        assert marker is not None and marker["how"] == "created" and marker["id"] in ids
        assert list(store.iter_audit()) == []
    finally:
        store.close()


def test_a_store_that_lost_its_data_takes_no_order_and_no_message_in_its_shared_windows(
    redis_url: str, redis_server: RedisServer
) -> None:
    """The one-round-trip admission of the checks' windows (and a counted message) write
    nothing to a namespace that lost its data: the order is refused with that reason."""
    from haltgate import Order
    from haltgate.checks import DuplicateOrder, ExecutionThrottle, MessageThrottle
    from haltgate.store.redis import RedisStore

    manager = CircuitBreakerManager(
        breakers=[OrderRateCircuitBreaker(1000, 60)], store=RedisStore(redis_url)
    )
    manager.add_check(DuplicateOrder(60))
    manager.add_check(MessageThrottle(1000, 60))
    manager.add_check(ExecutionThrottle(1000, 60))
    try:
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100)) == []
        _flushdb(redis_server)
        wait_for(lambda: _lost(manager))
        refused = manager.admit_order(order=Order.make("SPY", 2, limit_price=100))
        assert refused and any(LOST in reason for reason in refused)
        manager.record_message("cancel")
        with pytest.raises(Exception, match=LOST):
            manager.store.reserve_windows(
                [(manager.get_check("duplicate_order").bound_window, ("SPY",), 10)], []
            )
        client: Any = redis_server.client()
        try:
            assert client.keys("*window*") == []
        finally:
            client.close()
    finally:
        manager.close()
