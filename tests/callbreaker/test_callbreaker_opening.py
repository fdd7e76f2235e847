"""CLOSED → OPEN: consecutive failures, failure rate over the window, slow calls,
record/ignore exceptions and failure results."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cb_support import Boom, boom, fail, make, ok, succeed

from haltgate import BreakerEvent, CircuitOpenException, CircuitState, EventKind, ManualClock

NEVER = 10**6  # a threshold that is never reached


def test_opens_on_consecutive_failures() -> None:
    breaker = make(failure_threshold=3)
    fail(breaker, 2)
    assert breaker.is_closed
    assert breaker.get_status()["failure_count"] == 2
    fail(breaker)
    assert breaker.state is CircuitState.OPEN
    assert breaker.is_open
    calls = []
    with pytest.raises(CircuitOpenException) as caught:
        breaker.call_sync(lambda: calls.append(1))
    assert calls == []  # the function never ran
    assert caught.value.name == "api"
    assert caught.value.state is CircuitState.OPEN
    assert caught.value.retry_after == 60.0


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = make(failure_threshold=3, minimum_calls=NEVER)
    for _ in range(5):
        fail(breaker, 2)
        succeed(breaker)
    assert breaker.is_closed
    assert breaker.get_status()["failure_count"] == 0


def test_failure_rate_needs_minimum_calls() -> None:
    breaker = make(failure_threshold=NEVER, minimum_calls=10, failure_rate_threshold="0.5")
    events: list[BreakerEvent] = []
    breaker.add_listener(events.append)
    fail(breaker, 9)  # 100 % failures, but only 9 calls
    assert breaker.is_closed
    fail(breaker)  # the 10th call
    assert breaker.is_open
    assert [e.kind for e in events] == [EventKind.TRIPPED]
    assert events[0].reason is not None and events[0].reason.startswith("failure rate 10/10")
    assert events[0].details["window_calls"] == 10


def test_failure_rate_at_threshold_opens_below_does_not() -> None:
    breaker = make(failure_threshold=NEVER, minimum_calls=10, failure_rate_threshold="0.5")
    # F S F S F S F S S: 9 calls, 4 failures, never two failures in a row.
    for index in range(8):
        (fail if index % 2 == 0 else succeed)(breaker)
    succeed(breaker)
    assert breaker.is_closed
    fail(breaker)  # 10 calls, 5 failures: rate 0.5 >= 0.5
    assert breaker.is_open

    below = make(failure_threshold=NEVER, minimum_calls=10, failure_rate_threshold="0.5")
    for index in range(12):
        (fail if index % 3 == 0 else succeed)(below)  # 4 of 12 fail
    assert below.is_closed
    status = below.get_status()
    assert (status["window_calls"], status["window_failures"]) == (12, 4)


def test_failure_rate_window_is_half_open() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=NEVER, minimum_calls=4, failure_window_seconds=60)
    succeed(breaker, 6)  # at t=0
    clock.advance(59)
    fail(breaker, 3)  # 9 calls, 3 failures: 0.33
    assert breaker.is_closed
    clock.advance(0.999)
    assert breaker.get_status()["window_calls"] == 9  # t=0 still inside at 59.999
    clock.advance(0.001)
    # At t=60 the successes of t=0 have left the window: 60 - 60 < 0 is false.
    assert breaker.get_status()["window_calls"] == 3
    fail(breaker)  # 4 calls, 4 failures
    assert breaker.is_open


def test_without_the_window_expiring_the_same_calls_stay_closed() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=NEVER, minimum_calls=4, failure_window_seconds=120)
    succeed(breaker, 6)
    clock.advance(60)
    fail(breaker, 4)  # 10 calls, 4 failures: 0.4
    assert breaker.is_closed


def test_slow_calls_count_as_failures() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=2, slow_call_seconds=1.0)

    def slow() -> str:
        clock.advance(1.5)
        return "late"

    def just_in_time() -> str:
        clock.advance(1.0)
        return "on time"

    assert breaker.call_sync(slow) == "late"  # the caller still gets the result
    assert breaker.get_status()["failure_count"] == 1
    assert breaker.call_sync(just_in_time) == "on time"  # not longer than 1 s: a success
    assert breaker.get_status()["failure_count"] == 0
    breaker.call_sync(slow)
    assert breaker.is_closed
    breaker.call_sync(slow)
    assert breaker.is_open


def test_slow_calls_feed_the_failure_rate() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=NEVER, minimum_calls=4, slow_call_seconds=0.5)

    def slow() -> int:
        clock.advance(1)
        return 1

    for _ in range(2):
        succeed(breaker)
        breaker.call_sync(slow)
    assert breaker.is_open  # 4 calls, 2 slow: rate 0.5


@pytest.mark.parametrize("selector", [(ConnectionError,), ConnectionError])
def test_only_recorded_exceptions_are_failures(selector: object) -> None:
    breaker = make(failure_threshold=3, record_exceptions=selector)

    def refused() -> None:
        raise ConnectionError("down")

    def bad_input() -> None:
        raise ValueError("bad symbol")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call_sync(refused)
    for _ in range(10):  # not recorded: neither resets nor adds to the count
        with pytest.raises(ValueError):
            breaker.call_sync(bad_input)
    status = breaker.get_status()
    assert status["failure_count"] == 2
    assert status["total_ignored"] == 10
    assert status["window_calls"] == 2
    with pytest.raises(ConnectionError):
        breaker.call_sync(refused)
    assert breaker.is_open


def test_ignored_exceptions_neither_reset_nor_count() -> None:
    def insufficient_funds() -> None:
        raise KeyError("insufficient funds")

    breaker = make(failure_threshold=3, ignore_exceptions=KeyError)
    fail(breaker, 2)
    for _ in range(5):
        with pytest.raises(KeyError):
            breaker.call_sync(insufficient_funds)
    assert breaker.is_closed
    assert breaker.get_status()["failure_count"] == 2  # not reset, not increased
    fail(breaker)
    assert breaker.is_open


def test_exception_predicates() -> None:
    def is_server_error(exc: BaseException) -> bool:
        return "5xx" in str(exc)

    breaker = make(failure_threshold=2, record_exceptions=is_server_error)
    for message in ("5xx", "4xx", "5xx"):
        with pytest.raises(Boom):
            breaker.call_sync(lambda m=message: (_ for _ in ()).throw(Boom(m)))
    assert breaker.is_open

    ignoring = make(failure_threshold=1, ignore_exceptions=lambda exc: "ignore" in str(exc))
    with pytest.raises(Boom):
        ignoring.call_sync(lambda: (_ for _ in ()).throw(Boom("please ignore")))
    assert ignoring.is_closed
    fail(ignoring)
    assert ignoring.is_open


def test_a_broken_exception_predicate_counts_as_failure() -> None:
    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    breaker = make(failure_threshold=1, record_exceptions=broken)
    fail(breaker)  # the call's own exception still reaches the caller
    assert breaker.is_open


def test_base_exceptions_are_not_failures() -> None:
    breaker = make(failure_threshold=1)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call_sync(interrupted)
    assert breaker.is_closed
    assert breaker.get_status()["total_ignored"] == 1


@dataclass
class Response:
    status: int


def test_failure_result_marks_return_values_as_failures() -> None:
    breaker = make(failure_threshold=2, failure_result=lambda r: r.status >= 500)
    assert breaker.call_sync(lambda: Response(503)).status == 503  # returned to the caller
    assert breaker.call_sync(lambda: Response(200)).status == 200  # resets the count
    assert breaker.call_sync(lambda: Response(502)).status == 502
    assert breaker.is_closed
    assert breaker.call_sync(lambda: Response(500)).status == 500
    assert breaker.is_open


def test_a_broken_failure_result_counts_as_failure() -> None:
    def broken(result: object) -> bool:
        raise RuntimeError("predicate bug")

    breaker = make(failure_threshold=1, failure_result=broken)
    assert breaker.call_sync(ok) == "ok"
    assert breaker.is_open


def test_refusals_do_not_count_as_calls() -> None:
    breaker = make(failure_threshold=1)
    fail(breaker)
    for _ in range(3):
        with pytest.raises(CircuitOpenException):
            breaker.call_sync(boom)
    status = breaker.get_status()
    assert status["total_rejected"] == 3
    assert status["total_failures"] == 1
