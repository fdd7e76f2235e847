"""Adopting another process's change: two stores on one SQLite file are two processes
(each has its own connection, background watcher and origin)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerManager,
    CircuitBreakerState,
    ErrorRateCircuitBreaker,
    ManualClock,
    StoreUnavailableError,
    VolatilityCircuitBreaker,
)
from haltgate.audit import AuditEntry
from haltgate.store.base import AuditRecord
from haltgate.store.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(60)

TRIPPED = CircuitBreakerState.TRIPPED
NORMAL = CircuitBreakerState.NORMAL


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Wait for another store's background watcher (real time: propagation, not logic)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.01)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SQLiteStore, SQLiteStore]]:
    path = tmp_path / "shared.db"
    a, b = SQLiteStore(path), SQLiteStore(path)
    yield a, b
    a.close()
    b.close()


def _errors(clock: ManualClock) -> ErrorRateCircuitBreaker:
    return ErrorRateCircuitBreaker(max_errors=2, window_seconds=60, clock=clock)


def test_an_importer_never_clears_a_trip_it_imported_and_the_origin_keeps_its_errors(
    stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    store_a, store_b = stores
    clock_a, clock_b = ManualClock(), ManualClock()
    a = CircuitBreakerManager(breakers=[_errors(clock_a)], store=store_a, clock=clock_a)
    b = CircuitBreakerManager(breakers=[_errors(clock_b)], store=store_b, clock=clock_b)
    errors_a = a.get_breaker("error_rate")
    errors_b = b.get_breaker("error_rate")
    assert errors_a is not None and errors_b is not None
    for _ in range(3):
        a.record_error(RuntimeError("broker"))
    assert errors_a.state is TRIPPED
    wait_for(lambda: errors_b._state is TRIPPED, "B adopts A's trip")

    # B's clock runs far past any hold or window: B holds no evidence, so it never
    # clears A's trip by itself.
    clock_b.advance(3600)
    errors_b.refresh()
    assert errors_b.state is TRIPPED
    assert not b.can_trade()
    time.sleep(0.2)  # give A's watcher the chance to (wrongly) adopt anything
    assert errors_a.state is TRIPPED
    assert errors_a.get_error_count() == 3

    # A's errors age out: A clears its own trip, and B lifts the trip it imported from A.
    clock_a.advance(61)
    errors_a.refresh()
    assert errors_a.state is NORMAL
    wait_for(lambda: errors_b._state is NORMAL, "B adopts A's self-clear")
    a.close()
    b.close()


def test_a_self_clear_elsewhere_never_wipes_this_process_evidence(
    stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    store_a, store_b = stores
    clock_a, clock_b = ManualClock(), ManualClock()
    a = CircuitBreakerManager(breakers=[_errors(clock_a)], store=store_a, clock=clock_a)
    b = CircuitBreakerManager(breakers=[_errors(clock_b)], store=store_b, clock=clock_b)
    errors_a = a.get_breaker("error_rate")
    errors_b = b.get_breaker("error_rate")
    assert errors_a is not None and errors_b is not None
    # Both trip on their own evidence.
    for _ in range(3):
        a.record_error(RuntimeError("a"))
        b.record_error(RuntimeError("b"))
    clock_b.advance(61)
    errors_b.refresh()  # B's errors aged out: B clears its own trip
    assert errors_b.state is NORMAL
    time.sleep(0.3)
    # A still has its errors: its trip stands, and one more error is still counted.
    assert errors_a.state is TRIPPED
    assert errors_a.get_error_count() == 3
    a.record_error(RuntimeError("a"))
    assert errors_a.get_error_count() == 4
    assert not a.can_trade()


def test_an_imported_volatility_trip_is_not_cleared_by_the_importer_cooldown(
    stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    store_a, store_b = stores
    clock_a, clock_b = ManualClock(), ManualClock()

    def vol() -> VolatilityCircuitBreaker:
        return VolatilityCircuitBreaker(std_threshold=3, lookback=5, cooldown_seconds=60)

    a = CircuitBreakerManager(breakers=[vol()], store=store_a, clock=clock_a)
    b = CircuitBreakerManager(breakers=[vol()], store=store_b, clock=clock_b)
    va, vb = a.get_breaker("volatility"), b.get_breaker("volatility")
    assert va is not None and vb is not None
    for r in ("0.001", "-0.001", "0.001", "-0.001"):
        a.can_trade(last_return=r)
    assert not a.can_trade(last_return="0.5")
    wait_for(lambda: vb._state is TRIPPED, "B adopts A's volatility trip")
    clock_b.advance(600)
    vb.refresh()
    assert vb.state is TRIPPED
    time.sleep(0.2)
    assert va.state is TRIPPED


class FailingSQLiteStore(SQLiteStore):
    """An SQLite store whose writes fail while ``failing`` is set."""

    failing = False

    def write(
        self, name: str, snapshot: Mapping[str, Any] | None, audit: Sequence[AuditRecord]
    ) -> list[AuditEntry]:
        if self.failing:
            raise StoreUnavailableError("disk I/O error (test)")
        return super().write(name, snapshot, audit)


def test_the_admin_server_never_undoes_a_halt_the_store_has_not_recorded_yet(
    tmp_path: Path,
) -> None:
    pytest.importorskip("starlette", reason="the server extra is installed by scripts/test.sh")
    from starlette.testclient import TestClient

    from haltgate import hash_key
    from haltgate.config import parse_config
    from haltgate.server import build_service, create_app

    token = "op-token-0123456789"
    config = parse_config(
        {
            "store": {"url": "memory://"},
            "breakers": [{"type": "manual"}],
            "operators": [{"name": "alice", "token_hash": hash_key(token), "role": "operator"}],
        }
    )
    store = FailingSQLiteStore(tmp_path / "x.db")
    try:
        client = TestClient(create_app(build_service(store, config)), base_url="http://127.0.0.1")
        auth = {"Authorization": f"Bearer {token}"}
        # A stored NORMAL record of the breaker (an earlier halt and reset).
        assert client.post("/api/halt", json={"reason": "drill"}, headers=auth).status_code == 200
        r = client.post("/api/reset", json={"breaker": "manual"}, headers=auth)
        assert r.status_code == 200, r.text
        assert client.get("/api/status", headers=auth).json()["trading_allowed"] is True
        store.failing = True
        r = client.post("/api/halt", json={"reason": "outage"}, headers=auth)
        assert r.status_code == 503
        for _ in range(3):
            status = client.get("/api/status", headers=auth).json()
            states = {b["name"]: b["state"] for b in status["breakers"]}
            assert states["manual"] == "MANUALLY_HALTED"
            assert status["trading_allowed"] is False
        store.failing = False
        wait_for(lambda: store.blocking_reason() is None, "the retry writes the halt")
        status = client.get("/api/status", headers=auth).json()
        assert {b["name"]: b["state"] for b in status["breakers"]}["manual"] == "MANUALLY_HALTED"
        snapshot = store.load_snapshot("manual")
        assert snapshot is not None and snapshot["state"] == "MANUALLY_HALTED"
        assert [e.event for e in store.iter_audit()][-1] == "breaker_halted"
    finally:
        store.close()


def test_on_redis_an_importer_never_clears_a_trip_it_imported(redis_url: str) -> None:
    pytest.importorskip("redis", reason="the redis extra is installed by scripts/test.sh")
    from haltgate.store.redis import RedisStore

    clock_a, clock_b = ManualClock(), ManualClock()
    store_a, store_b = RedisStore(redis_url), RedisStore(redis_url)
    a = CircuitBreakerManager(breakers=[_errors(clock_a)], store=store_a, clock=clock_a)
    b = CircuitBreakerManager(breakers=[_errors(clock_b)], store=store_b, clock=clock_b)
    try:
        errors_a, errors_b = a.get_breaker("error_rate"), b.get_breaker("error_rate")
        assert errors_a is not None and errors_b is not None
        for _ in range(3):
            a.record_error(RuntimeError("broker"))
        wait_for(lambda: errors_b._state is TRIPPED, "B adopts A's trip")
        clock_b.advance(3600)
        errors_b.refresh()
        assert errors_b.state is TRIPPED
        time.sleep(0.1)
        assert errors_a.state is TRIPPED and errors_a.get_error_count() == 3
        clock_a.advance(61)
        errors_a.refresh()
        wait_for(lambda: errors_b._state is NORMAL, "B adopts A's self-clear")
    finally:
        a.close()
        b.close()
