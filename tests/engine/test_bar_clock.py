"""Historical bars drive the engine's clock unless a clock was given (issue 12 item 14).

A backtest over months of bars must judge daily loss per bar session, look back in bar
time and stamp its events with the bars' times, not run every bar "now" on the system
clock. The expected trips are computed here independently of the breakers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engine_support import Recorder
from hypothesis import given, settings
from hypothesis import strategies as st

from haltgate import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    InvalidInputError,
    ManualClock,
    OrderRateCircuitBreaker,
    SystemClock,
)
from haltgate.engine import BarClock, DataPortal, LiveTradingEngine, OrderStatus, PaperBroker

FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
SHARES = 100
CASH = Decimal(100_000)
LIMIT = Decimal(5000)
# Intraday moves (price change at 17:00, at 21:00) on some days; every day opens at the
# previous close (no overnight gap), so a session's first value is the previous close.
SHOCKS = {
    100: (Decimal(-55), Decimal(10)),  # 5,500 down at 17:00: trips there
    170: (Decimal(-30), Decimal(-20)),  # exactly 5,000 by the close: does not trip (> only)
    200: (Decimal(-20), Decimal(-32)),  # 5,200 down by the close: trips at 21:00
}


def weekdays(count: int) -> list[datetime]:
    days: list[datetime] = []
    day = FIRST_DAY
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def decline_bars(days: int = 240) -> list[dict[str, Any]]:
    """Three bars a weekday (14:30 at the previous close, 17:00, 21:00); the price slides
    0.5 a day (12,000 on 100 shares over 240 days: far over the daily limit in total,
    never in one session) with the one-day shocks of SHOCKS."""
    usual = (Decimal("-0.2"), Decimal("-0.3"))
    return bars_from_moves([SHOCKS.get(index, usual) for index in range(days)])


def bars_from_moves(
    moves: list[tuple[Decimal, Decimal]], start: Decimal = Decimal(500)
) -> list[dict[str, Any]]:
    """Three bars a weekday from ``start``: the open at the previous close, then each day's
    moves at 17:00 and 21:00."""
    bars: list[dict[str, Any]] = []
    close = start
    for day, (mid_move, close_move) in zip(weekdays(len(moves)), moves, strict=True):
        opening = close
        mid = opening + mid_move
        close = mid + close_move
        for hour, minute, price in ((14, 30, opening), (17, 0, mid), (21, 0, close)):
            bars.append(
                {
                    "timestamp": day.replace(hour=hour, minute=minute),
                    "symbol": "XYZ",
                    "close": price,
                }
            )
    return bars


class BuyOnce:
    def on_bar(self, context: Any, bar: Any) -> None:
        if context.positions.get(bar.symbol, 0) == 0:
            context.buy(bar.symbol, SHARES)


def values_of(bars: list[dict[str, Any]], cash: Decimal = CASH) -> list[Decimal]:
    """The portfolio value the engine observes at each bar (before the strategy): all cash
    at the first bar, where 100 shares are bought at its close."""
    first = bars[0]["close"]
    return [cash - SHARES * first + SHARES * b["close"] for b in bars]


def expected_daily_loss_trips(bars: list[dict[str, Any]], cash: Decimal = CASH) -> list[datetime]:
    """Per UTC session: the first bar whose loss against the previous close (the session's
    first value here) exceeds the limit."""
    values = values_of(bars, cash)
    trips: list[datetime] = []
    session = None
    baseline = previous = values[0]
    tripped = False
    for bar, value in zip(bars, values, strict=True):
        day = bar["timestamp"].date()
        if day != session:
            if session is not None:
                baseline = previous
            session, tripped = day, False
        if not tripped and baseline - value > LIMIT:
            trips.append(bar["timestamp"])
            tripped = True
        previous = value
    return trips


def run(engine: LiveTradingEngine) -> None:
    engine.run_sync()


def test_a_240_day_decline_trips_daily_loss_only_in_sessions_that_lose_too_much() -> None:
    bars = decline_bars()
    assert bars[-1]["timestamp"] - bars[0]["timestamp"] > timedelta(days=330)
    expected = expected_daily_loss_trips(bars)
    # The data is what the test says: two losing sessions, a multi-month loss far over the
    # limit, and an exactly-at-the-limit session that must not trip.
    assert [t.date() for t in expected] == [
        weekdays(240)[100].date(),
        weekdays(240)[200].date(),
    ]
    assert values_of(bars)[0] - values_of(bars)[-1] > 2 * LIMIT

    coordinator = CircuitBreakerManager()  # no clock given anywhere
    daily = DailyLossCircuitBreaker(max_daily_loss=LIMIT)
    drawdown = DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10"), lookback_days=30)
    coordinator.add_breaker(daily)
    coordinator.add_breaker(drawdown)
    portal = DataPortal(bars)
    engine = LiveTradingEngine(
        strategy=BuyOnce(),
        broker_adapter=PaperBroker(portal, cash=CASH),
        data_portal=portal,
        circuit_breakers=coordinator,
    )
    seen = Recorder()
    engine.add_listener(seen)
    run(engine)

    trips = [e for e in seen.kinds("tripped") if e.breaker_name == "daily_loss"]
    assert [e.timestamp for e in trips] == expected
    # Each trip cleared at the first bar of the next session, stamped with that bar's time.
    stamps = [b["timestamp"] for b in bars]
    clears = [
        e.timestamp
        for e in seen.kinds("reset")
        if e.breaker_name == "daily_loss" and e.state == "NORMAL"
    ]
    assert clears == [stamps[stamps.index(t) + (3 - stamps.index(t) % 3)] for t in expected]
    # The drawdown look-back is in bar time: no 30 days of this history lose 10 %.
    assert {e.breaker_name for e in seen.kinds("tripped")} == {"daily_loss"}
    assert drawdown.state == "NORMAL"
    today = datetime.now(UTC).date()
    assert all(e.timestamp in stamps for e in seen.events)
    assert all(e.timestamp.date() != today for e in seen.events)
    assert engine.clock_source == "bars"
    assert engine.clock.now() == stamps[-1]


def test_the_bar_clock_is_shared_with_the_manager_and_its_clockless_breakers() -> None:
    own = ManualClock()
    coordinator = CircuitBreakerManager()
    shared = DailyLossCircuitBreaker(max_daily_loss=LIMIT)
    mine = OrderRateCircuitBreaker(5, clock=own, name="mine")
    coordinator.add_breaker(shared)
    coordinator.add_breaker(mine)
    before = SystemClock().monotonic()
    portal = DataPortal(decline_bars(3))
    engine = LiveTradingEngine(BuyOnce(), PaperBroker(portal), portal, coordinator)
    assert isinstance(engine.clock, BarClock)
    assert coordinator.clock is engine.clock
    assert shared.clock is engine.clock
    assert mine.clock is own  # a breaker given its own clock keeps it
    later = OrderRateCircuitBreaker(5)
    coordinator.add_breaker(later)
    assert later.clock is engine.clock
    # It starts at the first bar (before on_start or any read) and its monotonic reading
    # continues from the clock it replaced.
    assert engine.clock.now() == FIRST_DAY.replace(hour=14, minute=30)
    assert engine.clock.monotonic() >= before


def test_orders_within_one_bar_share_an_instant_and_windows_empty_between_bars() -> None:
    coordinator = CircuitBreakerManager()
    rate = OrderRateCircuitBreaker(max_orders_per_minute=10)
    coordinator.add_breaker(rate)
    portal = DataPortal(
        [
            {"timestamp": FIRST_DAY + timedelta(days=d), "symbol": "XYZ", "close": 10}
            for d in range(2)
        ]
    )

    def twelve(context: Any, bar: Any) -> None:
        for _ in range(12):
            context.buy("XYZ", 1)

    engine = LiveTradingEngine(twelve, PaperBroker(portal), portal, coordinator)
    run(engine)
    statuses = [o.status for o in engine.orders]
    # Each day: 10 fill, 2 refused; the next day (bar time) the window has emptied.
    assert statuses[:12].count(OrderStatus.FILLED) == 10
    assert statuses[12:].count(OrderStatus.FILLED) == 10


def test_a_clock_given_to_the_manager_wins_over_the_bars() -> None:
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    coordinator = CircuitBreakerManager(clock=clock)
    daily = DailyLossCircuitBreaker(max_daily_loss=LIMIT)
    coordinator.add_breaker(daily)
    portal = DataPortal(decline_bars(2))
    engine = LiveTradingEngine(BuyOnce(), PaperBroker(portal), portal, coordinator)
    assert engine.clock_source == "manager"
    assert engine.clock is clock and daily.clock is clock
    run(engine)
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)  # older bars never move it back


def test_a_clock_given_to_the_engine_is_shared_with_a_clockless_manager() -> None:
    clock = ManualClock(FIRST_DAY)
    coordinator = CircuitBreakerManager()
    daily = DailyLossCircuitBreaker(max_daily_loss=LIMIT)
    coordinator.add_breaker(daily)
    portal = DataPortal(decline_bars(2))
    engine = LiveTradingEngine(BuyOnce(), PaperBroker(portal), portal, coordinator, clock=clock)
    assert engine.clock_source == "engine"
    assert coordinator.clock is clock and daily.clock is clock
    run(engine)
    assert clock.now() == decline_bars(2)[-1]["timestamp"]


def test_a_live_feed_stays_on_the_system_clock() -> None:
    async def feed() -> AsyncIterator[dict[str, Any]]:
        yield {"timestamp": datetime.now(UTC), "symbol": "XYZ", "close": 10}

    for portal in (DataPortal(feed()), DataPortal()):
        coordinator = CircuitBreakerManager()
        daily = DailyLossCircuitBreaker(max_daily_loss=LIMIT)
        coordinator.add_breaker(daily)
        engine = LiveTradingEngine(BuyOnce(), PaperBroker(portal), portal, coordinator)
        assert engine.clock_source == "system"
        assert isinstance(engine.clock, SystemClock) and isinstance(daily.clock, SystemClock)
        assert not portal.historical
    assert DataPortal(feed(), historical=True).historical
    assert not DataPortal([{"timestamp": FIRST_DAY, "close": 1}], historical=False).historical
    with pytest.raises(InvalidInputError, match="historical"):
        DataPortal([], historical="yes")  # type: ignore[arg-type]


def test_a_generator_keeps_the_bar_read_to_start_the_clock() -> None:
    bars = decline_bars(2)
    seen: list[datetime] = []

    class Strategy(BuyOnce):
        def on_start(self, context: Any) -> None:
            seen.append(context.now)

    portal = DataPortal(b for b in bars)
    engine = LiveTradingEngine(Strategy(), PaperBroker(portal), portal, CircuitBreakerManager())
    assert engine.clock_source == "bars"
    assert run(engine) is None
    assert engine.bars_processed == len(bars)
    assert seen == [bars[0]["timestamp"]]


def test_a_bar_back_in_time_is_refused_naming_it_and_nothing_of_it_happens(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "bars.csv"
    csv.write_text(
        "timestamp,symbol,close\n"
        "2024-03-01T21:00:00Z,XYZ,100\n"
        "2024-03-04T21:00:00Z,XYZ,90\n"
        "2024-03-02T21:00:00Z,XYZ,10\n"
        "2024-03-05T21:00:00Z,XYZ,95\n",
        encoding="utf-8",
    )
    coordinator = CircuitBreakerManager()
    drawdown = DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.5"))
    coordinator.add_breaker(drawdown)
    portal = DataPortal.from_csv(csv)
    broker = PaperBroker(portal, cash=1000)

    def buy_ten_once(context: Any, bar: Any) -> None:
        if not context.positions:
            context.buy("XYZ", 10)

    engine = LiveTradingEngine(buy_ten_once, broker, portal, coordinator)
    with pytest.raises(InvalidInputError, match=r"bars\.csv line 4\.timestamp") as err:
        run(engine)
    assert "2024-03-02" in str(err.value) and "2024-03-04" in str(err.value)
    march_4 = datetime(2024, 3, 4, 21, tzinfo=UTC)
    assert engine.bars_processed == 2
    assert engine.clock.now() == march_4
    assert portal.current_price("XYZ") == Decimal(90)  # the refused bar's price never counted
    assert broker.get_account_value() == Decimal(900)  # 10 shares at 90
    assert drawdown.get_current_drawdown() == Decimal("0.1")
    assert drawdown.state == "NORMAL"

    # The same through process_bar, and on the clock itself.
    with pytest.raises(InvalidInputError, match=r"bar\.timestamp"):
        asyncio.run(engine.process_bar({"timestamp": march_4 - timedelta(seconds=1), "close": 1}))
    assert engine.bars_processed == 2
    with pytest.raises(InvalidInputError, match="dt"):
        engine.clock.set(march_4 - timedelta(microseconds=1))  # type: ignore[attr-defined]
    assert engine.clock.now() == march_4
    # Equal times are fine (several symbols at one instant).
    asyncio.run(engine.process_bar({"timestamp": march_4, "symbol": "ABC", "close": 5}))
    assert engine.bars_processed == 3


def test_pushed_historical_bars_start_the_clock_before_any_bar() -> None:
    portal = DataPortal(historical=True)
    engine = LiveTradingEngine(BuyOnce(), PaperBroker(portal), portal, CircuitBreakerManager())
    assert engine.clock_source == "bars"
    assert engine.clock.now() < FIRST_DAY  # the first bar moves time forward
    asyncio.run(engine.process_bar({"timestamp": FIRST_DAY, "symbol": "XYZ", "close": 5}))
    assert engine.clock.now() == FIRST_DAY


def test_a_second_run_of_the_same_history_on_one_manager_is_refused_not_judged_late() -> None:
    coordinator = CircuitBreakerManager()
    coordinator.add_breaker(DailyLossCircuitBreaker(max_daily_loss=LIMIT))
    bars = decline_bars(3)
    first = DataPortal(bars)
    LiveTradingEngine(BuyOnce(), PaperBroker(first), first, coordinator).run_sync()
    again = DataPortal(bars)
    engine = LiveTradingEngine(BuyOnce(), PaperBroker(again), again, coordinator)
    assert engine.clock_source == "manager" and isinstance(engine.clock, BarClock)
    with pytest.raises(InvalidInputError, match=r"bar\[1\]\.timestamp"):
        engine.run_sync()
    assert engine.bars_processed == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-60, 20), st.integers(-60, 20)).map(
            lambda m: (Decimal(m[0]), Decimal(m[1]))
        ),
        min_size=1,
        max_size=25,
    )
)
def test_daily_loss_trips_exactly_in_the_sessions_whose_own_loss_exceeds_the_limit(
    moves: list[tuple[Decimal, Decimal]],
) -> None:
    # Worst case 25 days of -120 from 4,000: prices stay positive.
    bars = bars_from_moves(moves, start=Decimal(4000))
    assert min(b["close"] for b in bars) > 0
    coordinator = CircuitBreakerManager()
    coordinator.add_breaker(DailyLossCircuitBreaker(max_daily_loss=LIMIT))
    portal = DataPortal(bars)
    cash = Decimal(1_000_000)
    engine = LiveTradingEngine(BuyOnce(), PaperBroker(portal, cash=cash), portal, coordinator)
    seen = Recorder()
    engine.add_listener(seen)
    engine.run_sync()
    assert [e.timestamp for e in seen.kinds("tripped")] == expected_daily_loss_trips(bars, cash)
    assert engine.orders[0].status is OrderStatus.FILLED
