"""DrawdownCircuitBreaker: strict '>', look-back peak, bounded memory, latch, reset."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from haltgate import CircuitBreakerState, DrawdownCircuitBreaker, ManualClock

DAY = 86400


def make(clock: ManualClock, pct: Any = "0.10", days: Any = 30) -> DrawdownCircuitBreaker:
    return DrawdownCircuitBreaker(max_drawdown_pct=pct, lookback_days=days, clock=clock)


def test_exactly_ten_percent_does_not_trip(clock: ManualClock) -> None:
    breaker = make(clock)
    assert breaker.can_trade(current_portfolio_value=Decimal("100000"))
    assert breaker.can_trade(current_portfolio_value=Decimal("90000"))
    assert breaker.get_current_drawdown() == Decimal("0.1")
    assert breaker.state is CircuitBreakerState.NORMAL


def test_a_cent_beyond_ten_percent_trips(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.can_trade(current_portfolio_value=Decimal("100000"))
    assert not breaker.can_trade(current_portfolio_value=Decimal("89999.99"))
    assert breaker.state is CircuitBreakerState.TRIPPED
    details = breaker.get_trip_details()
    assert details["threshold"] == Decimal("0.10")
    assert details["observed"] == Decimal("0.1000001")
    assert details["peak"] == Decimal("100000")
    assert details["current"] == Decimal("89999.99")
    assert details["tripped_at"] == clock.now()
    assert details["operator"] is None
    assert breaker.get_trip_reason() == (
        "Drawdown 10.0000% exceeds max 10.00% (peak 100000, current 89999.99)"
    )


def test_peak_includes_the_current_value_and_follows_new_highs(clock: ManualClock) -> None:
    breaker = make(clock)
    assert breaker.get_peak() is None
    assert breaker.update(100) == 0
    assert breaker.update(120) == 0
    assert breaker.get_peak() == 120
    assert breaker.update(108) == Decimal("0.1")
    assert breaker.can_trade()


def test_float_int_and_str_inputs_are_decimals(clock: ManualClock) -> None:
    breaker = make(clock, pct=0.1)
    assert breaker.max_drawdown_pct == Decimal("0.1")
    breaker.update(0.3)
    breaker.update("0.27")
    assert breaker.get_current_drawdown() == Decimal("0.1")
    assert breaker.can_trade()


def test_latched_until_reset_even_when_value_recovers(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.update(100)
    breaker.update(80)
    clock.advance(40 * DAY)  # the old peak has long left the look-back
    assert not breaker.can_trade(current_portfolio_value=200)
    assert breaker.is_tripped
    assert breaker.get_trip_reason() is not None


def test_reset_restarts_the_peak_at_the_latest_value(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.update(100)
    breaker.update(85)
    breaker.reset(operator="risk", reason="reviewed")
    assert breaker.state is CircuitBreakerState.NORMAL
    assert breaker.get_peak() == 85
    assert breaker.get_current_drawdown() == 0
    # A fresh 10 % allowance from 85: 76.5 is exactly 10 %, 76.4 is beyond.
    assert breaker.can_trade(current_portfolio_value="76.5")
    assert not breaker.can_trade(current_portfolio_value="76.4")


def test_zero_or_negative_peak_never_trips(clock: ManualClock) -> None:
    breaker = make(clock)
    assert breaker.can_trade(current_portfolio_value=0)
    assert breaker.can_trade(current_portfolio_value=-50)
    assert breaker.get_current_drawdown() == 0
    # Once there is a positive peak, a fall below zero is a drawdown over 100 %.
    breaker.update(10)
    assert not breaker.can_trade(current_portfolio_value=-1)


def test_old_peak_leaves_the_look_back(clock: ManualClock) -> None:
    breaker = make(clock, days=1)
    breaker.update(100)
    clock.advance(DAY / 2)
    breaker.update(95)
    clock.advance(DAY / 2 + 120)  # the 100 is now more than a day (plus a bucket) old
    assert breaker.get_peak() == 95
    assert breaker.can_trade(current_portfolio_value="85.5")  # exactly 10 % below 95
    assert breaker.get_current_drawdown() == Decimal("0.1")
    assert not breaker.can_trade(current_portfolio_value="85.4")


def test_peak_is_never_forgotten_early(clock: ManualClock) -> None:
    breaker = make(clock, days=1)
    breaker.update(100)
    clock.advance(DAY - 1)  # still within the look-back
    assert breaker.get_peak() == 100
    assert not breaker.can_trade(current_portfolio_value=89)


def test_fractional_look_back_days(clock: ManualClock) -> None:
    breaker = make(clock, days="0.5")
    breaker.update(100)
    clock.advance(DAY)
    breaker.update(50)
    assert breaker.get_peak() == 50
    assert breaker.can_trade()


def test_memory_is_bounded_over_a_million_observations(clock: ManualClock) -> None:
    breaker = make(clock, pct="0.99", days=2)
    # 1,000,000 observations over 5 days (one every 0.432 s). A steadily falling value is
    # the worst case: every minute's maximum stays a candidate peak.
    step = 5 * DAY / 1_000_000
    window = breaker._window
    largest = 0
    for i in range(1_000_000):
        clock.advance(step)
        breaker.update(2_000_000 - i)
        if i % 997 == 0:
            largest = max(largest, len(window))
    largest = max(largest, len(window))
    # Per-minute maxima over 2 days: at most 2 * 1440 + 2 buckets whatever the count.
    assert 2 * 1440 - 2 <= largest <= 2 * 1440 + 2
    # The peak is the value seen two days ago, or up to one bucket (60 s) older: never newer.
    two_days_ago = 2_000_000 - (1_000_000 - 1 - round(2 * DAY / step))
    assert two_days_ago <= breaker.get_peak() <= two_days_ago + round(60 / step)
    assert len(breaker.export_state()["data"]["window"]) <= 2 * 1440 + 1


def test_observations_feed_a_tripped_breaker_for_after_reset(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.update(100)
    breaker.update(80)
    breaker.update(70)
    breaker.reset(operator="risk")
    assert breaker.get_peak() == 70


def test_reset_of_normal_breaker_is_a_no_op(clock: ManualClock) -> None:
    breaker = make(clock)
    events: list[Any] = []
    breaker.add_listener(events.append)
    breaker.update(100)
    breaker.reset(operator="x")
    assert events == []
    assert breaker.get_peak() == 100


def test_halt_then_reset(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.trigger_halt("maintenance", "ops")
    assert breaker.state is CircuitBreakerState.MANUALLY_HALTED
    assert not breaker.can_trade(current_portfolio_value=100)
    assert breaker.get_trip_details()["operator"] == "ops"
    breaker.reset(operator="ops")
    assert breaker.can_trade(current_portfolio_value=100)


@pytest.mark.parametrize("pct", ["1", Decimal("0.0001")])
def test_fraction_bounds_are_inclusive_at_one(clock: ManualClock, pct: str) -> None:
    assert make(clock, pct=pct).max_drawdown_pct == Decimal(pct)
