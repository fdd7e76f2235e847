"""The state model and the executor: halts as a layer, permissive changes written first,
types that survive a restart, pure reads that still report a due trip."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerManager,
    CircuitBreakerState,
    ConnectionCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualClock,
    StoreUnavailableError,
)
from haltgate.audit import AuditEntry
from haltgate.store import MemoryStore
from haltgate.store.base import AuditRecord

NORMAL = CircuitBreakerState.NORMAL
TRIPPED = CircuitBreakerState.TRIPPED
HALTED = CircuitBreakerState.MANUALLY_HALTED


class FlakyStore(MemoryStore):
    """A MemoryStore whose writes fail while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.writes = 0

    def write(
        self, name: str, snapshot: Mapping[str, Any] | None, audit: Sequence[AuditRecord]
    ) -> list[AuditEntry]:
        if self.failing:
            raise StoreUnavailableError("store down (test)")
        self.writes += 1
        return super().write(name, snapshot, audit)


# ---------------------------------------------------------------------- halts are a layer
def test_a_breach_during_a_halt_is_recorded_and_outlives_the_halt(clock: ManualClock) -> None:
    store = MemoryStore()
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.10")], store=store, clock=clock
    )
    drawdown = manager.get_breaker("drawdown")
    assert drawdown is not None
    seen: list[Any] = []
    manager.add_listener(seen.append)
    assert manager.can_trade(current_portfolio_value=100_000)
    drawdown.trigger_halt("checking the feed", "alice")
    manager.can_trade(current_portfolio_value=50_000)  # a 50 % fall while halted

    tripped = [e for e in seen if e.kind == "tripped"]
    assert len(tripped) == 1 and tripped[0].breaker_name == "drawdown"
    assert tripped[0].details["observed"] == Decimal("0.5")
    assert [e.event for e in store.iter_audit()][-1] == "breaker_tripped"
    assert drawdown.get_trip_details()["condition"]["observed"] == Decimal("0.5")

    drawdown.reset(operator="alice", reason="feed fine")  # lifts the halt only
    assert drawdown.state is TRIPPED
    assert not manager.can_trade(current_portfolio_value=50_000)
    assert not manager.record_order()
    drawdown.reset(operator="alice", reason="acknowledged the fall")
    assert drawdown.state is NORMAL
    assert manager.can_trade()


# ---------------------------------------------------------------------- permissive first
def test_a_reset_the_store_refuses_keeps_the_error_window(clock: ManualClock) -> None:
    store = FlakyStore()
    errors = ErrorRateCircuitBreaker(max_errors=2, window_seconds=60, clock=clock)
    manager = CircuitBreakerManager(breakers=[errors], store=store, clock=clock)
    for _ in range(3):
        manager.record_error(RuntimeError("broker"))
    assert errors.state is TRIPPED
    store.failing = True
    with pytest.raises(StoreUnavailableError):
        errors.reset(operator="ops")
    assert errors.state is TRIPPED
    assert errors.get_error_count() == 3  # nothing forgotten
    store.failing = False
    # The store is back: the errors are still within the window, so it stays tripped.
    errors.refresh()
    assert errors.state is TRIPPED
    assert not manager.can_trade()


# ---------------------------------------------------------------------- types survive
def test_restored_trip_details_keep_their_types(clock: ManualClock) -> None:
    store = MemoryStore()
    first = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.10")], store=store, clock=clock
    )
    first.can_trade(current_portfolio_value=100_000)
    first.can_trade(current_portfolio_value=80_000)
    before = first.get_breaker("drawdown").get_trip_details()  # type: ignore[union-attr]

    second = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.10")], store=store, clock=clock
    )
    after = second.get_breaker("drawdown").get_trip_details()  # type: ignore[union-attr]
    for key in ("threshold", "observed", "peak", "current"):
        assert type(after[key]) is Decimal, key
        assert after[key] == before[key]
    assert after["tripped_at"] == before["tripped_at"]
    assert second.get_breaker("drawdown").get_peak() == Decimal(100_000)  # type: ignore[union-attr]


# ---------------------------------------------------------------------- pure reads
def test_a_due_timeout_trip_is_reported_while_the_lock_is_busy(clock: ManualClock) -> None:
    connection = ConnectionCircuitBreaker(failure_threshold=3, timeout_seconds=30, clock=clock)
    manager = CircuitBreakerManager(breakers=[connection], clock=clock)
    assert manager.can_trade()
    clock.advance(31)
    holding = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with connection._lock:
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert holding.wait(5)
        assert connection.state is TRIPPED
        assert connection.is_tripped
        assert "No success or heartbeat" in (connection.get_trip_reason() or "")
        assert not manager.can_trade()
        assert manager.get_blocking_reasons()
    finally:
        release.set()
        thread.join()
    # Once the lock is free the refresh step records it.
    connection.refresh()
    assert connection._state is TRIPPED


def test_reads_never_write_to_the_store(clock: ManualClock) -> None:
    store = FlakyStore()
    connection = ConnectionCircuitBreaker(timeout_seconds=30, clock=clock)
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.10"), connection], store=store, clock=clock
    )
    manager.can_trade(current_portfolio_value=100)
    writes = store.writes
    for _ in range(3):
        manager.can_trade()
        manager.get_status()
        manager.get_blocking_reasons()
        manager.get_trip_reasons()
        manager.get_breaker("drawdown").get_trip_details()  # type: ignore[union-attr]
    assert store.writes == writes
