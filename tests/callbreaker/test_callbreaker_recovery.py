"""OPEN → HALF_OPEN → CLOSED / OPEN: timeouts, probes, backoff, stale calls, operator actions."""

from __future__ import annotations

import logging

import pytest
from cb_support import Boom, fail, make, ok, succeed

from haltgate import (
    BreakerEvent,
    CircuitBreaker,
    CircuitOpenException,
    CircuitState,
    EventKind,
    ManualClock,
)


def opened(clock: ManualClock, **settings: object) -> CircuitBreaker:
    """A breaker that has just opened (failure_threshold=1)."""
    breaker = make(clock, failure_threshold=1, **settings)
    fail(breaker)
    assert breaker.state is CircuitState.OPEN
    return breaker


def retry_after(breaker: CircuitBreaker) -> float | None:
    with pytest.raises(CircuitOpenException) as caught:
        breaker.call_sync(ok)
    return caught.value.retry_after


def test_open_becomes_half_open_lazily_after_the_timeout() -> None:
    clock = ManualClock()
    breaker = opened(clock, open_timeout_seconds=10)
    clock.advance(9.5)
    assert retry_after(breaker) == pytest.approx(0.5)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.5)
    assert breaker.state is CircuitState.HALF_OPEN  # a status read moves it
    assert breaker.is_half_open and not breaker.is_open and not breaker.is_closed


def test_a_call_after_the_timeout_is_a_probe() -> None:
    clock = ManualClock()
    breaker = opened(clock, open_timeout_seconds=10, success_threshold=2)
    clock.advance(10)
    assert breaker.call_sync(ok) == "ok"  # no status read before: the call moves it
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.get_status()["half_open_successes"] == 1


def test_success_threshold_successes_close() -> None:
    clock = ManualClock()
    breaker = opened(clock, open_timeout_seconds=10, success_threshold=3)
    recovered: list[tuple[str, object]] = []
    breaker.register_recovery_callback(lambda name, kind: recovered.append((name, kind)))
    clock.advance(10)
    succeed(breaker, 2)
    assert breaker.is_half_open
    assert recovered == []
    succeed(breaker)
    assert breaker.is_closed
    assert recovered == [("api", breaker.circuit_type)]
    status = breaker.get_status()
    assert status["failure_count"] == 0 and status["window_calls"] == 0  # fresh start


def test_one_failure_in_half_open_reopens_with_trip_event() -> None:
    clock = ManualClock()
    breaker = opened(clock, open_timeout_seconds=10, success_threshold=3)
    trips: list[str] = []
    events: list[BreakerEvent] = []
    breaker.register_trip_callback(lambda name, kind: trips.append(name))
    breaker.add_listener(events.append)
    clock.advance(10)
    succeed(breaker, 2)
    fail(breaker)
    assert breaker.state is CircuitState.OPEN
    assert trips == ["api"]
    assert [(e.kind, e.previous_state, e.state) for e in events] == [
        (EventKind.TRIPPED, CircuitState.HALF_OPEN, CircuitState.OPEN)
    ]
    assert events[0].reason is not None and events[0].reason.startswith("probe failed: Boom")


def test_backoff_grows_on_each_reopen_is_capped_and_resets_on_close() -> None:
    clock = ManualClock()
    breaker = opened(
        clock,
        open_timeout_seconds=10,
        backoff_multiplier=2,
        max_backoff_seconds=35,
        success_threshold=1,
    )
    assert retry_after(breaker) == 10
    for expected in (20, 35, 35):  # 10 → 20 → 40 capped at 35 → stays 35
        clock.advance(breaker.get_status()["open_timeout_seconds"])
        assert breaker.is_half_open
        fail(breaker)
        assert retry_after(breaker) == expected
        assert breaker.get_status()["open_timeout_seconds"] == expected
    clock.advance(35)
    succeed(breaker)
    assert breaker.is_closed
    assert breaker.get_status()["open_timeout_seconds"] == 10
    fail(breaker)  # a fresh trip from CLOSED starts again at the base timeout
    assert retry_after(breaker) == 10


def test_without_exponential_backoff_the_timeout_stays() -> None:
    clock = ManualClock()
    breaker = opened(clock, open_timeout_seconds=10, exponential_backoff=False)
    for _ in range(3):
        clock.advance(10)
        fail(breaker)
        assert retry_after(breaker) == 10


def test_half_open_timeout_reopens_a_stuck_probe() -> None:
    clock = ManualClock()
    breaker = opened(
        clock,
        open_timeout_seconds=10,
        half_open_timeout_seconds=30,
        half_open_max_calls=1,
        success_threshold=1,
    )
    trips: list[str] = []
    breaker.register_trip_callback(lambda name, kind: trips.append(name))
    clock.advance(10)
    seen: list[object] = []

    def hanging_probe() -> str:
        # While this probe hangs, every other caller is refused...
        with pytest.raises(CircuitOpenException) as caught:
            breaker.call_sync(ok)
        seen.append(caught.value.state)
        seen.append(caught.value.retry_after)
        clock.advance(29.9)
        seen.append(breaker.state)
        clock.advance(0.1)
        # ...until it has run for half_open_timeout_seconds: the circuit re-opens.
        seen.append(breaker.state)
        return "too late"

    assert breaker.call_sync(hanging_probe) == "too late"
    assert seen == [CircuitState.HALF_OPEN, 30.0, CircuitState.HALF_OPEN, CircuitState.OPEN]
    # The late success belongs to the earlier HALF_OPEN: it does not close the circuit.
    assert breaker.state is CircuitState.OPEN
    assert trips == ["api"]
    assert retry_after(breaker) == 20  # a re-open from HALF_OPEN: backoff applied


def test_a_probe_finishing_after_the_half_open_timeout_reopens_unobserved() -> None:
    clock = ManualClock()
    breaker = opened(
        clock, open_timeout_seconds=10, half_open_timeout_seconds=30, success_threshold=1
    )
    clock.advance(10)

    def slow_probe() -> str:
        clock.advance(30)  # nobody calls or reads the state meanwhile
        return "late"

    assert breaker.call_sync(slow_probe) == "late"
    assert breaker.state is CircuitState.OPEN  # not closed by the late success
    assert retry_after(breaker) == 20


def test_a_quiet_half_open_does_not_reopen_by_itself() -> None:
    clock = ManualClock()
    breaker = opened(clock, open_timeout_seconds=10, half_open_timeout_seconds=30)
    clock.advance(10)
    assert breaker.is_half_open
    clock.advance(3600)  # no probe ran, so none is stuck
    assert breaker.is_half_open
    succeed(breaker, 3)
    assert breaker.is_closed


def test_a_failure_from_an_earlier_state_does_not_move_the_new_one() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, open_timeout_seconds=10)

    def started_while_closed() -> None:
        fail(breaker)  # another call opens the circuit meanwhile
        clock.advance(10)
        assert breaker.state is CircuitState.HALF_OPEN
        raise Boom("late failure")

    with pytest.raises(Boom):
        breaker.call_sync(started_while_closed)
    assert breaker.state is CircuitState.HALF_OPEN  # not re-opened by the stale failure
    assert breaker.get_status()["total_stale"] == 1


def test_a_success_from_an_earlier_state_does_not_count_as_a_probe() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, open_timeout_seconds=10, success_threshold=1)

    def started_while_closed() -> str:
        fail(breaker)
        clock.advance(10)
        assert breaker.is_half_open
        return "late"

    assert breaker.call_sync(started_while_closed) == "late"
    assert breaker.is_half_open  # success_threshold=1, yet the stale success did not close it


def test_a_success_from_an_earlier_closed_state_does_not_reset_the_new_count() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=3)

    def spans_a_reset() -> str:
        breaker.force_open()
        breaker.force_close()
        fail(breaker, 2)
        return "late"

    assert breaker.call_sync(spans_a_reset) == "late"
    assert breaker.get_status()["failure_count"] == 2  # not reset by the stale success
    fail(breaker)
    assert breaker.is_open


def test_force_open_latches_until_force_close() -> None:
    clock = ManualClock()
    breaker = make(clock, open_timeout_seconds=10)
    events: list[BreakerEvent] = []
    breaker.add_listener(events.append)
    breaker.force_open(operator="alice", reason="broker maintenance")
    assert breaker.state is CircuitState.FORCED_OPEN
    assert breaker.is_open and breaker.is_forced_open
    clock.advance(10_000)
    assert breaker.state is CircuitState.FORCED_OPEN  # no timeout ends it
    with pytest.raises(CircuitOpenException) as caught:
        breaker.call_sync(ok)
    assert caught.value.state is CircuitState.FORCED_OPEN
    assert caught.value.retry_after is None
    breaker.force_open()  # idempotent
    breaker.force_close(operator="alice")
    assert breaker.is_closed
    assert breaker.call_sync(ok) == "ok"
    assert [(e.kind, e.state, e.operator) for e in events] == [
        (EventKind.HALTED, CircuitState.FORCED_OPEN, "alice"),
        (EventKind.RESET, CircuitState.CLOSED, "alice"),
    ]
    assert events[0].reason == "broker maintenance"


def test_force_open_latches_until_reset() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1)
    fail(breaker)
    breaker.force_open()
    clock.advance(10_000)
    assert breaker.is_forced_open
    breaker.reset()
    assert breaker.is_closed
    status = breaker.get_status()
    assert status["total_failures"] == 0 and status["total_rejected"] == 0


def test_force_close_starts_fresh() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=2, open_timeout_seconds=10, success_threshold=1)
    fail(breaker, 2)
    clock.advance(10)
    fail(breaker)  # re-open from HALF_OPEN: timeout now 20
    breaker.force_close()
    status = breaker.get_status()
    assert (status["state"], status["failure_count"], status["open_timeout_seconds"]) == (
        "closed",
        0,
        10,
    )
    fail(breaker)
    assert breaker.is_closed  # one failure after the fresh start is not two


def test_reset_while_closed_clears_counts() -> None:
    breaker = make(failure_threshold=3)
    fail(breaker, 2)
    breaker.reset()
    fail(breaker, 2)
    assert breaker.is_closed
    assert breaker.get_status()["total_failures"] == 2


def test_operator_text_is_validated() -> None:
    breaker = make()
    with pytest.raises(ValueError, match="operator"):
        breaker.force_open(operator="  ")
    assert breaker.is_closed


def test_get_status() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=2, open_timeout_seconds=10)
    succeed(breaker)
    fail(breaker)
    status = breaker.get_status()
    assert status["name"] == "api"
    assert status["circuit_type"] == "connection_failure"
    assert status["state"] == "closed"
    assert status["failure_count"] == 1
    assert (status["window_calls"], status["window_failures"]) == (2, 1)
    assert status["failure_rate"] == 0.5
    assert status["retry_after"] is None
    assert status["total_successes"] == 1 and status["total_failures"] == 1
    assert status["config"]["failure_threshold"] == 2
    fail(breaker)
    clock.advance(4)
    status = breaker.get_status()
    assert status["state"] == "open"
    assert status["retry_after"] == 6
    assert status["opened_at"] is not None
    clock.advance(6)
    assert breaker.get_status()["state"] == "half_open"  # a status read moves it too


def test_a_state_change_during_admission_publication_is_respected() -> None:
    # User code runs while an admission publishes its transition (here a log handler on
    # "call_breaker_half_open"); if it forces the circuit open, the call must not run.
    clock = ManualClock()
    breaker = opened(clock, open_timeout_seconds=10)

    class ForceOpenOnHalfOpen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "call_breaker_half_open":
                breaker.force_open(operator="ops")

    handler = ForceOpenOnHalfOpen()
    log = logging.getLogger("haltgate.callbreaker")
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.INFO)
    try:
        clock.advance(10)
        ran: list[int] = []
        with pytest.raises(CircuitOpenException) as caught:
            breaker.call_sync(lambda: ran.append(1))
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    assert ran == []
    assert caught.value.state is CircuitState.FORCED_OPEN
    assert breaker.get_status()["half_open_in_flight"] == 0
