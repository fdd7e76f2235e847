"""The breakers beyond the guide: position concentration, volatility, connection."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerState,
    ConnectionCircuitBreaker,
    HaltgateError,
    ManualClock,
    PositionConcentrationCircuitBreaker,
    VolatilityCircuitBreaker,
)

NORMAL = CircuitBreakerState.NORMAL
TRIPPED = CircuitBreakerState.TRIPPED
HALTED = CircuitBreakerState.MANUALLY_HALTED


# ----------------------------------------------------------------- position concentration
def test_concentration_refuses_an_order_above_the_limit(clock: ManualClock) -> None:
    breaker = PositionConcentrationCircuitBreaker(Decimal("0.20"), clock=clock)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    assert breaker.check_order("AAPL", 20000, 100000)  # exactly 20 %: allowed
    assert not breaker.check_order("AAPL", "20000.01", 100000)
    assert breaker.check_order("AAPL", 5000, 100000, current_position_value=15000)
    assert not breaker.check_order("AAPL", 5001, 100000, current_position_value=15000)
    assert breaker.state is NORMAL  # does not latch
    assert breaker.check_order("AAPL", 1000, 100000)
    [first, second] = seen
    assert first.kind == "order_refused"
    assert first.details["symbol"] == "AAPL"
    assert first.details["threshold"] == Decimal("0.20")
    assert first.details["observed"] == Decimal("0.2000001")
    assert "AAPL" in (first.reason or "")
    assert second.details["observed"] == Decimal("0.20001")


def test_concentration_always_allows_a_reducing_order(clock: ManualClock) -> None:
    breaker = PositionConcentrationCircuitBreaker("0.10", clock=clock)
    # 30 % of the portfolio in one symbol (e.g. after a rally): selling some is allowed
    # even though 25 % is still above the limit.
    assert breaker.check_order("TSLA", -5000, 100000, current_position_value=30000)
    # Short positions: covering reduces, adding to the short increases.
    assert breaker.check_order("TSLA", 5000, 100000, current_position_value=-30000)
    assert not breaker.check_order("TSLA", -1, 100000, current_position_value=-30000)
    # Flipping a 30 % long into a 15 % short opens a new position above the limit: refused,
    # although its size is smaller. Flipping into a 5 % short is within the limit.
    assert not breaker.check_order("TSLA", -45000, 100000, current_position_value=30000)
    assert breaker.check_order("TSLA", -35000, 100000, current_position_value=30000)
    # Selling the whole position is a reduction.
    assert breaker.check_order("TSLA", -30000, 100000, current_position_value=30000)


def test_concentration_value(clock: ManualClock) -> None:
    breaker = PositionConcentrationCircuitBreaker(1, clock=clock)
    assert breaker.concentration(10, 100, 15) == Decimal("0.25")
    assert breaker.concentration(-40, 100, 15) == Decimal("0.25")
    with pytest.raises(HaltgateError, match="portfolio_value"):
        breaker.concentration(1, 0)


def test_concentration_halt_refuses_everything(clock: ManualClock) -> None:
    breaker = PositionConcentrationCircuitBreaker("0.5", clock=clock)
    breaker.trigger_halt("symbol under review", "risk")
    assert not breaker.can_trade()
    assert not breaker.check_order("AAPL", 1, 100000)
    breaker.reset(operator="risk")
    assert breaker.check_order("AAPL", 1, 100000)


# ------------------------------------------------------------------------------ volatility
def test_volatility_needs_two_returns_before_it_judges(clock: ManualClock) -> None:
    breaker = VolatilityCircuitBreaker(std_threshold=3, lookback=20, clock=clock)
    assert breaker.record_return("0.5") is None
    assert breaker.record_return("-0.5") is None
    assert breaker.state is NORMAL


def test_volatility_trips_strictly_beyond_the_threshold(clock: ManualClock) -> None:
    breaker = VolatilityCircuitBreaker(std_threshold=2, lookback=4, clock=clock)
    for r in ("0.01", "-0.01", "0.01", "-0.01"):
        breaker.record_return(r)
    # mean 0, sample std = sqrt(4 * 0.0001 / 3) = 0.011547...; 2 std = 0.023094...
    assert breaker.record_return("0.023") is not None
    assert breaker.state is NORMAL
    breaker2 = VolatilityCircuitBreaker(std_threshold=2, lookback=4, clock=clock)
    for r in ("0.01", "-0.01", "0.01", "-0.01"):
        breaker2.record_return(r)
    z = breaker2.record_return("-0.0231")
    assert z is not None and z > 2
    assert breaker2.state is TRIPPED
    details = breaker2.get_trip_details()
    assert details["threshold"] == 2
    assert details["observed"] == z
    assert details["return"] == Decimal("-0.0231")
    assert details["mean"] == 0
    assert details["lookback"] == 4


def test_volatility_exact_threshold_does_not_trip(clock: ManualClock) -> None:
    breaker = VolatilityCircuitBreaker(std_threshold=1, lookback=2, clock=clock)
    breaker.record_return(1)
    breaker.record_return(3)  # mean 2, sample std sqrt(2)
    # Exactly one std away needs an irrational return; use a wide look-back instead:
    breaker = VolatilityCircuitBreaker(std_threshold=1, lookback=2, clock=clock)
    breaker.record_return(-1)
    breaker.record_return(1)  # mean 0, std sqrt(2) = 1.414...
    assert breaker.record_return("1.414") is not None
    assert breaker.state is NORMAL
    breaker.record_return("1.414")
    assert breaker.state is NORMAL


def test_volatility_from_prices(clock: ManualClock) -> None:
    breaker = VolatilityCircuitBreaker(std_threshold=3, lookback=10, clock=clock)
    assert breaker.record_price(100) is None
    assert breaker.record_price(101) == Decimal("0.01")
    prices = [100, 101, 100, 101, 100, 101, 100]
    for p in prices:
        breaker.record_price(p)
    assert breaker.state is NORMAL
    assert not breaker.can_trade(price=80)  # a 20 % drop: far outside the spread
    assert breaker.state is TRIPPED
    assert "standard deviations" in (breaker.get_trip_reason() or "")


def test_volatility_zero_spread_any_move_is_extreme(clock: ManualClock) -> None:
    breaker = VolatilityCircuitBreaker(std_threshold=3, lookback=5, clock=clock)
    for _ in range(5):
        breaker.record_return(0)
    assert breaker.record_return(0) is None
    assert breaker.state is NORMAL  # no move at all: fine
    breaker.record_return("0.0001")
    assert breaker.state is TRIPPED
    assert breaker.get_trip_details()["observed"] is None  # infinitely many std
    assert "inf standard deviations" in (breaker.get_trip_reason() or "")


def test_volatility_cooldown_after_the_last_extreme_return(clock: ManualClock) -> None:
    breaker = VolatilityCircuitBreaker(
        std_threshold=3, lookback=5, cooldown_seconds=60, clock=clock
    )
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    for r in ("0.001", "-0.001", "0.001", "-0.001"):
        breaker.can_trade(last_return=r)
    assert not breaker.can_trade(last_return="0.5")
    clock.advance(30)
    breaker.record_return("-0.6")  # another extreme return restarts the cooldown
    clock.advance(59)
    assert breaker.state is TRIPPED
    clock.advance(1)
    assert breaker.state is NORMAL
    assert seen[-1].details["cause"] == "cooldown_elapsed"
    assert [e.state for e in seen] == [TRIPPED, CircuitBreakerState.RESETTING, NORMAL]


def test_volatility_prices_must_be_positive(clock: ManualClock) -> None:
    breaker = VolatilityCircuitBreaker(clock=clock)
    with pytest.raises(HaltgateError, match="price"):
        breaker.record_price(0)
    with pytest.raises(HaltgateError, match="price"):
        breaker.can_trade(price=-5)


# ------------------------------------------------------------------------------ connection
def test_connection_trips_after_consecutive_failures(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=3, timeout_seconds=30, clock=clock)
    breaker.record_failure(ConnectionError("reset by peer"))
    breaker.record_failure()
    assert breaker.can_trade()
    breaker.record_success()  # not consecutive any more
    assert breaker.get_consecutive_failures() == 0
    for _ in range(2):
        breaker.record_failure()
    assert breaker.can_trade()
    breaker.record_failure(TimeoutError("slow"))
    assert not breaker.can_trade()
    details = breaker.get_trip_details()
    assert (details["threshold"], details["observed"]) == (3, 3)
    assert details["last_error"] == "TimeoutError('slow')"
    assert breaker.get_trip_reason() == "3 consecutive connection failures (max 3)"


def test_connection_success_clears_a_failure_trip_but_heartbeat_does_not(
    clock: ManualClock,
) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=2, clock=clock)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    breaker.record_failure()
    breaker.record_failure()
    breaker.heartbeat()
    assert breaker.state is TRIPPED
    breaker.record_success()
    assert breaker.state is NORMAL
    assert seen[-1].details["cause"] == "success"


def test_connection_timeout_is_strict_and_heartbeat_clears_it(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=3, timeout_seconds=30, clock=clock)
    clock.advance(30)
    assert breaker.can_trade()  # exactly 30 s: not more than the timeout
    clock.advance(0.001)
    assert not breaker.can_trade()
    assert breaker.get_trip_details()["threshold"] == 30
    assert breaker.seconds_since_alive() == pytest.approx(30.001)
    breaker.heartbeat()
    assert breaker.state is NORMAL
    clock.advance(30)
    assert breaker.can_trade()


def test_connection_success_clears_a_timeout_trip(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(timeout_seconds=5, clock=clock)
    clock.advance(6)
    assert breaker.is_tripped
    breaker.record_success()
    assert not breaker.is_tripped


def test_failures_during_a_timeout_trip_need_a_success(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=2, timeout_seconds=5, clock=clock)
    clock.advance(6)
    assert breaker.is_tripped  # timed out
    breaker.record_failure()
    breaker.record_failure()  # and now failing too
    breaker.heartbeat()
    assert breaker.is_tripped  # a sign of life does not make the calls work
    breaker.record_success()
    assert not breaker.is_tripped


def test_connection_halt_is_not_cleared_by_success(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(clock=clock)
    breaker.trigger_halt("broker maintenance", "ops")
    breaker.record_success()
    breaker.heartbeat()
    assert breaker.state is HALTED
    breaker.reset(operator="ops")
    assert breaker.state is NORMAL
    assert breaker.get_consecutive_failures() == 0


def test_connection_reset_restarts_the_timeout(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(timeout_seconds=10, clock=clock)
    clock.advance(11)
    assert breaker.is_tripped
    breaker.reset(operator="ops")
    assert not breaker.is_tripped
    clock.advance(10)
    assert not breaker.is_tripped


def test_heartbeat_clearing_a_timeout_keeps_the_failure_count(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=3, timeout_seconds=5, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(6)
    assert breaker.is_tripped
    breaker.heartbeat()
    assert not breaker.is_tripped
    assert breaker.get_consecutive_failures() == 2  # a heartbeat is not a success
    breaker.record_failure()
    assert breaker.is_tripped
