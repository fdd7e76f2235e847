"""ThresholdCircuitBreaker on its own: inclusive limit, crossing warnings, the three ways
a trip clears, fresh allowance after a reset, persistence."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from haltgate import (
    BreakerEvent,
    CircuitBreakerType,
    InvalidInputError,
    ManualClock,
    MemoryStore,
    StoreUnavailableError,
)
from haltgate.breakers.threshold import CrossingWarning, ThresholdCircuitBreaker


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 5, 4, 12, tzinfo=UTC))


def test_crossing_warning():
    crossing = CrossingWarning()
    assert [crossing.update(b) for b in [False, True, True, False, True]] == [
        False,
        True,
        False,
        False,
        True,
    ]


def test_inclusive_limit_and_latching(clock):
    breaker = ThresholdCircuitBreaker(CircuitBreakerType.DRAWDOWN, "-10", clock=clock)
    assert breaker.latched
    assert breaker.observe("-9.999")
    assert not breaker.observe(Decimal("-10"))
    clock.advance(10**6)
    assert breaker.observe("0") is False
    breaker.reset(operator="ops")
    assert breaker.can_trade()


def test_warning_events(clock):
    events: list[BreakerEvent] = []
    breaker = ThresholdCircuitBreaker("daily_loss", "-2", warning="-1.5", clock=clock)
    breaker.add_listener(events.append)
    for value in ["-1.5", "-1.9", "-2.5", "-1.2", "-1.6"]:
        breaker.observe(value)
    assert [e.kind for e in events] == ["warning", "tripped", "warning"]


def test_warning_must_be_above_the_limit():
    with pytest.raises(InvalidInputError) as info:
        ThresholdCircuitBreaker("custom", "-2", warning="-3")
    assert info.value.parameter == "warning"


def test_recovery_seconds(clock):
    breaker = ThresholdCircuitBreaker("daily_loss", "-2", recovery_seconds=60, clock=clock)
    breaker.observe("-3")
    clock.advance(30)
    breaker.observe("-2")  # still at the limit: restarts the wait
    clock.advance(30)
    breaker.observe("-1")
    assert breaker.is_tripped
    clock.advance(29.9)
    assert breaker.is_tripped
    clock.advance(0.1)
    assert not breaker.is_tripped


def test_session_roll_clears(clock):
    breaker = ThresholdCircuitBreaker("daily_loss", "-2", calendar="utc", clock=clock)
    breaker.observe("-2.5")
    clock.advance(3600)
    assert breaker.is_tripped
    clock.set(datetime(2026, 5, 5, 0, 0, 1, tzinfo=UTC))
    assert not breaker.is_tripped
    assert breaker.get_value() is None


def test_trip_survives_a_restart(clock):
    store = MemoryStore()
    first = ThresholdCircuitBreaker("drawdown", "-10", name="dd", clock=clock)
    store.attach(first)
    first.observe("-12")
    first.reset(operator="ops")  # fresh allowance: -22
    first.observe("-23")
    second = ThresholdCircuitBreaker("drawdown", "-10", name="dd", clock=clock)
    store.attach(second)
    assert second.is_tripped
    assert second.effective_limit() == Decimal("-22")
    assert second.get_trip_reason() == first.get_trip_reason()


class BusyStore(MemoryStore):
    """A MemoryStore that refuses every write while ``busy`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def write(self, name, snapshot, audit):
        if self.busy:
            raise StoreUnavailableError("store busy")
        return super().write(name, snapshot, audit)


def test_a_session_roll_the_store_refused_is_retried_by_the_next_read(clock):
    store = BusyStore()
    breaker = ThresholdCircuitBreaker("daily_loss", "-2", calendar="utc", clock=clock)
    store.attach(breaker)
    breaker.observe("-2.5")
    clock.set(datetime(2026, 5, 5, 0, 0, 1, tzinfo=UTC))
    store.busy = True
    assert breaker.is_tripped  # the clear could not be recorded: stay tripped (fail safe)
    store.busy = False
    assert not breaker.is_tripped  # the roll is retried
    assert breaker.get_value() is None
    snapshot = store.load_snapshot("daily_loss")
    assert snapshot["state"] == "NORMAL"
    assert snapshot["data"]["session"] == "2026-05-05T00:00:00+00:00"
