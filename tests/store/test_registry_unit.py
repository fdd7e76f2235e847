"""The process registry's rules on one store: what an entry holds, TTL, pruning, bounds,
clean close, who does not register (the memory store, an operator's view)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haltgate import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    InvalidInputError,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from haltgate.breakers.parameters import parameter_names, parameters_of
from haltgate.config import BREAKER_CLASSES
from haltgate.operator import StoredBreaker, operator_manager
from haltgate.store import MemoryStore, Store
from haltgate.store.registry import (
    MAX_ENTRIES,
    PRUNE_AFTER_SECONDS,
    REGISTRY_KEY,
    live_breakers,
    read_registry,
)
from haltgate.store.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(60)

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _registered(store: Store, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not store.registration.registered:
        assert time.monotonic() < deadline, "not registered"
        time.sleep(0.005)


def test_an_entry_holds_origin_pid_host_and_the_breakers_with_their_parameters(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "f.db")
    manager = CircuitBreakerManager(
        breakers=[
            DrawdownCircuitBreaker("0.10"),
            DailyLossCircuitBreaker("5000", calendar="XNYS"),
            OrderRateCircuitBreaker(5, 60),
        ],
        store=store,
    )
    try:
        deadline = time.monotonic() + 5
        while len(read_registry(store)) != 1 or len(read_registry(store)[0].breakers) != 3:
            assert time.monotonic() < deadline, "the three breakers were not listed"
            time.sleep(0.005)
        (entry,) = read_registry(store)
        # The same origin the snapshots carry: a reader can tell whose trip it looks at.
        assert entry.origin == store.origin
        assert entry.pid == os.getpid() and entry.host == socket.gethostname()
        assert entry.live and entry.started is not None and entry.started <= entry.last_seen
        by_name = {b["name"]: b for b in entry.breakers}
        assert by_name["daily_loss"]["parameters"] == {
            "calendar": "XNYS",
            "max_daily_loss": "5000",
        }
        assert by_name["order_rate"] == {
            "name": "order_rate",
            "type": "order_rate",
            "parameters": {
                "cooldown_seconds": 0.0,
                "max_orders_per_minute": 5,
                "window_seconds": 60.0,
            },
            "state": "NORMAL",
        }
        # A breaker added later is listed without waiting for the next heartbeat.
        store.registration.configure(heartbeat_seconds=30, ttl_seconds=60)
        before = read_registry(store)[0].last_seen
        manager.add_breaker(ManualCircuitBreaker())
        deadline = time.monotonic() + 5
        while "manual" not in read_registry(store)[0].breaker_names():
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert read_registry(store)[0].last_seen >= before
    finally:
        manager.close()
    reader = SQLiteStore(tmp_path / "f.db")
    try:
        assert read_registry(reader) == []  # a clean close removed the entry
    finally:
        reader.close()


def test_the_parameters_are_the_ones_the_config_accepts() -> None:
    # One rule: the config's keys for a type are exactly the parameters a registry shows.
    samples = {
        "drawdown": DrawdownCircuitBreaker("0.1"),
        "daily_loss": DailyLossCircuitBreaker(max_daily_loss_pct="0.02"),
        "error_rate": ErrorRateCircuitBreaker(3),
    }
    for kind, breaker in samples.items():
        assert set(parameters_of(breaker)) <= set(parameter_names(BREAKER_CLASSES[kind]))
    assert parameters_of(samples["daily_loss"]) == {
        "calendar": "utc",
        "max_daily_loss_pct": "0.02",
    }
    assert "ignore" not in parameter_names(ErrorRateCircuitBreaker)
    assert "name" not in parameter_names(ErrorRateCircuitBreaker)


def test_liveness_is_judged_by_ttl_on_the_store_clock(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db")
    store.registration.configure(heartbeat_seconds=0.5, ttl_seconds=2)
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.1")], store=store)
    try:
        _registered(store)
        (entry,) = read_registry(store)
        seen = entry.last_seen
        assert read_registry(store, now=seen + 2)[0].live
        late = read_registry(store, now=seen + 2.001)[0]
        assert not late.live and late.age == pytest.approx(2.001)
        assert live_breakers(read_registry(store, now=seen + 1)) == {"drawdown": "drawdown"}
        assert live_breakers(read_registry(store, now=seen + 3)) == {}
        # A reader whose clock is behind the writer's sees the process live, age 0.
        early = read_registry(store, now=seen - 10)[0]
        assert early.live and early.age == 0
    finally:
        manager.close()


def test_heartbeats_prune_old_entries_and_bound_the_registry(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db")
    now = store.store_time()
    old = {
        f"dead{i}": {"pid": i, "host": "h", "last_seen": now - PRUNE_AFTER_SECONDS - 1, "ttl": 5}
        for i in range(10)
    }
    stale = {
        f"stale{i}": {"pid": i, "host": "h", "last_seen": now - 60 - i, "ttl": 5}
        for i in range(MAX_ENTRIES + 20)
    }
    store.set_value(REGISTRY_KEY, {"processes": {**old, **stale, "junk": "not an entry"}})
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.1")], store=store)
    try:
        _registered(store)
        entries = read_registry(store)
        assert len(entries) == MAX_ENTRIES
        assert entries[0].origin == store.origin and entries[0].live  # live kept first
        origins = {e.origin for e in entries}
        assert not any(o.startswith("dead") for o in origins)  # unseen for an hour: gone
        # The most recently seen stale entries are kept, the oldest dropped.
        assert "stale0" in origins and f"stale{MAX_ENTRIES + 19}" not in origins
    finally:
        manager.close()


def test_bad_heartbeat_settings_are_refused_naming_the_parameter(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db")
    try:
        with pytest.raises(InvalidInputError, match="heartbeat_seconds"):
            store.registration.configure(heartbeat_seconds=0)
        with pytest.raises(InvalidInputError, match="ttl_seconds"):
            store.registration.configure(heartbeat_seconds=1, ttl_seconds=1)
        with pytest.raises(InvalidInputError, match="ttl_seconds"):
            store.registration.configure(ttl_seconds="nan")
        assert store.registration.heartbeat_seconds == 1.0  # nothing changed
        assert store.registration.ttl_seconds == 5.0
    finally:
        store.close()


def test_the_memory_store_and_operator_views_register_nothing(tmp_path: Path) -> None:
    memory = MemoryStore()
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.1")], store=memory)
    assert memory.get_value(REGISTRY_KEY) is None and read_registry(memory) == []
    manager.close()

    store = SQLiteStore(tmp_path / "f.db")
    view = operator_manager(store)  # the CLI's and the admin server's view
    try:
        view.add_breaker(StoredBreaker("drawdown", "drawdown"))
        view.add_breaker(DrawdownCircuitBreaker("0.1", name="real"))  # a config's breaker
        time.sleep(0.1)  # a few background rounds: nothing may be written
        assert store.get_value(REGISTRY_KEY) is None
        assert not store.registration.registered
    finally:
        view.close()


def test_a_process_whose_heartbeat_fails_keeps_trading_and_recovers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.db")
    store.registration.configure(heartbeat_seconds=0.05, ttl_seconds=1)
    failing = {"on": True}
    real_update = store.update_value

    def update_value(key: str, update: object) -> object:
        if key == REGISTRY_KEY and failing["on"]:
            from haltgate import StoreUnavailableError

            raise StoreUnavailableError("registry write refused (test)")
        return real_update(key, update)  # type: ignore[arg-type]

    store.update_value = update_value  # type: ignore[method-assign]
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.1")], store=store)
    try:
        time.sleep(0.2)
        # The heartbeat is not a state change: trading is not refused because of it.
        assert manager.can_trade() and store.blocking_reason() is None
        assert not store.registration.registered
        failing["on"] = False
        _registered(store)
        assert read_registry(store)[0].origin == store.origin
    finally:
        manager.close()


def test_status_never_registers_nor_writes(tmp_path: Path, run_cli: RunCli) -> None:
    import sqlite3

    db = tmp_path / "f.db"
    store = SQLiteStore(db)
    store.registration.configure(heartbeat_seconds=30, ttl_seconds=60)  # no beat meanwhile
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.1")], store=store)
    try:
        _registered(store)

        def dump() -> list[object]:
            with sqlite3.connect(db) as conn:
                return [
                    conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                    for t in ("breakers", "kv", "audit")
                ]

        before = dump()
        for args in (("status",), ("status", "--json")):
            done = run_cli("--store", f"sqlite:///{db}", *args)
            assert done.returncode == 0, done.stderr
            assert "drawdown" in done.stdout
        assert dump() == before
    finally:
        manager.close()


def test_on_redis_each_process_has_its_own_field_and_old_ones_are_pruned(
    redis_url: str,
) -> None:
    import json

    from haltgate.store.redis import RedisStore

    first = RedisStore(redis_url)
    client = first._client
    now = first.store_time()
    client.hset(
        "haltgate:processes",
        mapping={
            "dead": json.dumps({"pid": 1, "last_seen": now - PRUNE_AFTER_SECONDS - 1, "ttl": 5}),
            "stale": json.dumps({"pid": 2, "last_seen": now - 60, "ttl": 5}),
            "junk": "{not json",
        },
    )
    second = RedisStore(redis_url)
    a = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.1")], store=first)
    b = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=second)
    try:
        _registered(first)
        _registered(second)
        fields = set(client.hkeys("haltgate:processes"))
        assert fields == {first.origin, second.origin, "stale"}
        entries = read_registry(second)
        assert [e.live for e in entries] == [True, True, False]
        assert live_breakers(entries) == {"drawdown": "drawdown", "manual": "manual"}
    finally:
        a.close()
    assert set(client.hkeys("haltgate:processes")) == {second.origin, "stale"}
    b.close()
    assert set(client.hkeys("haltgate:processes")) == {"stale"}


@given(
    ages=st.lists(
        st.tuples(st.floats(0, 2 * PRUNE_AFTER_SECONDS), st.sampled_from([1.0, 5.0, 600.0])),
        max_size=MAX_ENTRIES + 40,
    )
)
@settings(max_examples=60, deadline=None)
def test_pruning_keeps_what_is_fresh_bounded_live_first(ages: list[tuple[float, float]]) -> None:
    from haltgate.store.registry import pruned

    now = 1_000_000.0
    processes = {f"p{i}": {"last_seen": now - age, "ttl": ttl} for i, (age, ttl) in enumerate(ages)}
    kept = pruned(processes, now)
    fresh = {o for o, e in processes.items() if now - e["last_seen"] <= PRUNE_AFTER_SECONDS}
    assert set(kept) <= fresh and len(kept) == min(len(fresh), MAX_ENTRIES)
    live = {o for o in fresh if now - processes[o]["last_seen"] <= processes[o]["ttl"]}
    # Live entries are dropped last: every live one is kept while there is room for it.
    assert len(live & set(kept)) == min(len(live), MAX_ENTRIES)
    dropped = fresh - set(kept)
    if dropped and not live & dropped:
        newest_dropped = max(processes[o]["last_seen"] for o in dropped)
        stale_kept = [processes[o]["last_seen"] for o in set(kept) - live]
        assert all(seen >= newest_dropped for seen in stale_kept)
