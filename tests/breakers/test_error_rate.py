"""ErrorRateCircuitBreaker: strict '>', half-open window, ignore, categories, self-clear."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerManager,
    CircuitBreakerState,
    ErrorRateCircuitBreaker,
    HaltgateError,
    ManualClock,
)


class InsufficientFunds(Exception):
    pass


class Timeout(Exception):
    pass


def make(clock: ManualClock, n: int = 3, window: Any = 300, **kw: Any) -> ErrorRateCircuitBreaker:
    return ErrorRateCircuitBreaker(max_errors=n, window_seconds=window, clock=clock, **kw)


def test_exactly_max_errors_does_not_trip(clock: ManualClock) -> None:
    breaker = make(clock)
    for _ in range(3):
        assert breaker.record_error()
    assert breaker.can_trade()
    assert breaker.record_error()
    assert not breaker.can_trade()
    assert breaker.get_error_count() == 4


def test_trip_details_count_by_category_and_type(clock: ManualClock) -> None:
    breaker = make(clock, n=2)
    breaker.record_error(Timeout("slow"))
    breaker.record_error("rejected", category="broker")
    breaker.record_error(Timeout("slower"))
    details = breaker.get_trip_details()
    assert details["by_category"] == {"Timeout": 2, "broker": 1}
    assert details["threshold"] == 2
    assert details["observed"] == 3
    assert details["last_error"] == "Timeout('slower')"
    assert breaker.get_error_categories() == {"Timeout": 2, "broker": 1}
    assert breaker.get_trip_reason() == "Error rate exceeded: 3 errors in the last 300s (max 2)"


def test_plain_errors_are_counted_as_error(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.record_error()
    breaker.record_error("a message")
    assert breaker.get_error_categories() == {"error": 2}


def test_ignore_exception_types(clock: ManualClock) -> None:
    breaker = make(clock, n=1, ignore=InsufficientFunds)
    for _ in range(10):
        assert not breaker.record_error(InsufficientFunds())
    assert breaker.get_error_count() == 0
    assert breaker.can_trade()
    assert breaker.record_error(Timeout())


def test_ignore_tuple_and_predicate(clock: ManualClock) -> None:
    types_ = make(clock, ignore=(InsufficientFunds, KeyError))
    assert not types_.record_error(KeyError("x"))
    predicate = make(clock, ignore=lambda e: "funds" in str(e))
    assert not predicate.record_error("insufficient funds")
    assert predicate.record_error("exchange down")
    assert predicate.get_error_count() == 1


def test_ignore_must_be_types_or_a_predicate(clock: ManualClock) -> None:
    with pytest.raises(HaltgateError, match="ignore"):
        make(clock, ignore=("not a type",))
    with pytest.raises(TypeError, match="ignore"):
        make(clock, ignore=42)


class BrokerDown(Exception):
    pass


def _broken_ignore(error: object) -> bool:
    # A filter that assumes every error carries a broker code.
    return error.code == "INSUFFICIENT_FUNDS"  # type: ignore[attr-defined]


def _filter_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.message == "exception_filter_failed"]


def test_a_raising_ignore_predicate_counts_the_error_and_does_not_raise(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock, n=2, ignore=_broken_ignore, name="broker_errors")
    with caplog.at_level(logging.ERROR, logger="haltgate.filters"):
        for _ in range(3):
            assert breaker.record_error(BrokerDown("503")) is True
    assert breaker.get_error_count() == 3
    assert breaker.state is CircuitBreakerState.TRIPPED
    failures = _filter_failures(caplog)
    assert len(failures) == 3  # once per recorded error
    assert all(r.parameter == "ignore" for r in failures)  # type: ignore[attr-defined]
    assert all(r.breaker == "broker_errors" for r in failures)  # type: ignore[attr-defined]


def test_guard_re_raises_the_brokers_exception_when_the_ignore_predicate_raises(
    clock: ManualClock,
) -> None:
    breaker = make(clock, n=1, ignore=_broken_ignore)
    manager = CircuitBreakerManager(breakers=[breaker], clock=clock)

    @manager.guard
    def submit(symbol: str) -> str:
        raise BrokerDown(f"rejected {symbol}")

    for _ in range(2):
        with pytest.raises(BrokerDown, match="rejected XYZ"):
            submit("XYZ")
    assert breaker.get_error_count() == 2
    assert not manager.can_trade()


def test_half_open_window_and_self_clear(clock: ManualClock) -> None:
    breaker = make(clock, n=1, window=10)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    breaker.record_error()  # t = 0
    clock.advance(5)
    breaker.record_error()  # t = 5: 2 > 1, trips
    assert breaker.is_tripped
    clock.advance(4.999)  # now 9.999: both counted
    assert breaker.get_error_count() == 2
    assert breaker.is_tripped
    clock.advance(0.001)  # now 10: the error at 0 leaves (0 > 10 - 10 is false)
    assert breaker.get_error_count() == 1
    assert breaker.state is CircuitBreakerState.NORMAL  # back within the limit
    assert [(e.kind, e.state) for e in seen] == [
        ("tripped", CircuitBreakerState.TRIPPED),
        ("reset", CircuitBreakerState.RESETTING),
        ("reset", CircuitBreakerState.NORMAL),
    ]
    assert seen[-1].details["cause"] == "errors_aged_out"


def test_cooldown(clock: ManualClock) -> None:
    breaker = make(clock, n=1, window=10, cooldown_seconds=60)
    breaker.record_error()
    breaker.record_error()
    clock.advance(59)
    assert breaker.is_tripped
    clock.advance(1)
    assert not breaker.is_tripped


def test_reset_forgets_the_errors(clock: ManualClock) -> None:
    breaker = make(clock, n=1)
    breaker.record_error()
    breaker.record_error()
    breaker.reset(operator="ops")
    assert breaker.get_error_count() == 0
    assert breaker.record_error()
    assert breaker.can_trade()


def test_errors_during_a_halt_are_counted_but_do_not_change_the_halt(clock: ManualClock) -> None:
    breaker = make(clock, n=1)
    breaker.trigger_halt("maintenance", "ops")
    breaker.record_error()
    breaker.record_error()
    assert breaker.state is CircuitBreakerState.MANUALLY_HALTED
    assert breaker.get_trip_reason() == "maintenance"
    assert breaker.get_error_count() == 2


def test_self_clear_keeps_the_errors_still_in_the_window(clock: ManualClock) -> None:
    """Regression: clearing by itself used to forget the window, so a burst right after
    the clear could not trip the breaker."""
    breaker = make(clock, n=2, window=20)
    breaker.record_error()
    breaker.record_error()
    clock.advance(10)
    breaker.record_error()  # 3 > 2: tripped
    clock.advance(10)  # the first two leave; one error (at 10) is still in the window
    assert breaker.state is CircuitBreakerState.NORMAL
    assert breaker.get_error_count() == 1
    breaker.record_error()
    assert breaker.can_trade()  # 2: within the limit
    breaker.record_error()
    assert not breaker.can_trade()  # 3 errors within 20 s: tripped again


def test_exact_boundary_with_fractional_times(clock: ManualClock) -> None:
    breaker = make(clock, n=1, window=20)
    clock.advance(10)
    clock.advance("0.005")
    breaker.record_error()
    breaker.record_error()
    clock.advance(20)  # now = 30.005: the errors at 10.005 leave exactly now
    assert breaker.get_error_count() == 0
    assert breaker.state is CircuitBreakerState.NORMAL
