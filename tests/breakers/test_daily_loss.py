"""DailyLossCircuitBreaker: strict '>', baselines, percentage limits, sessions, reset."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from haltgate import (
    CircuitBreakerState,
    DailyLossCircuitBreaker,
    DailyRollCalendar,
    ManualClock,
    MemoryStore,
    StoreUnavailableError,
)
from haltgate.store.base import AuditRecord

HOUR = 3600


def events_of(breaker: DailyLossCircuitBreaker) -> list[Any]:
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    return seen


def test_exactly_the_limit_does_not_trip(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=Decimal("5000"), clock=clock)
    assert breaker.can_trade(current_portfolio_value=95000, start_of_day_value=100000)
    assert breaker.get_current_daily_loss() == Decimal("5000")
    assert breaker.state is CircuitBreakerState.NORMAL


def test_one_cent_over_the_limit_trips_with_details(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss="5000", clock=clock)
    assert not breaker.can_trade(current_portfolio_value="94999.99", start_of_day_value="100000")
    details = breaker.get_trip_details()
    assert details["threshold"] == Decimal("5000")
    assert details["observed"] == Decimal("5000.01")
    assert details["start_of_day_value"] == Decimal("100000")
    assert details["current"] == Decimal("94999.99")
    assert details["tripped_at"] == clock.now()
    assert details["session_start"] == datetime(2025, 3, 3, tzinfo=UTC)
    assert "Daily loss 5000.01 exceeds max 5000" in (breaker.get_trip_reason() or "")


def test_baseline_defaults_to_the_first_value_of_the_session(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=1000, clock=clock)
    assert breaker.get_start_of_day_value() is None
    assert breaker.get_current_daily_loss() == 0
    breaker.update(50000)
    breaker.update(52000)
    assert breaker.get_start_of_day_value() == 50000
    assert breaker.get_current_daily_loss() == -2000  # a gain
    assert breaker.can_trade(current_portfolio_value=49000)  # exactly 1000
    assert not breaker.can_trade(current_portfolio_value=48999)


def test_given_start_of_day_value_replaces_the_first_observation(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=1000, clock=clock)
    breaker.update(50000)
    assert breaker.can_trade(current_portfolio_value=49500, start_of_day_value=50200)
    assert breaker.get_start_of_day_value() == 50200
    assert breaker.get_current_daily_loss() == 700
    # Measured from the given baseline, 49200 is exactly 1000 down; 49199 is beyond.
    assert breaker.can_trade(current_portfolio_value=49200)
    assert not breaker.can_trade(current_portfolio_value=49199)


def test_start_of_day_value_alone_sets_the_baseline(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=1000, clock=clock)
    assert breaker.can_trade(start_of_day_value=10000)
    assert breaker.get_start_of_day_value() == 10000
    assert breaker.get_current_daily_loss() == 0
    assert not breaker.can_trade(current_portfolio_value=8999)


def test_percentage_limit(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss_pct=Decimal("0.02"), clock=clock)
    assert breaker.max_daily_loss is None
    assert breaker.limit() is None  # no baseline yet
    assert breaker.can_trade(current_portfolio_value=98000, start_of_day_value=100000)
    assert breaker.limit() == Decimal("2000")
    assert not breaker.can_trade(current_portfolio_value="97999.99")
    details = breaker.get_trip_details()
    assert details["threshold"] == Decimal("2000.00")
    assert details["threshold_pct"] == Decimal("0.02")
    assert "2.00% of 100000" in (breaker.get_trip_reason() or "")


def test_latched_within_the_session(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    breaker.update(1000)
    breaker.update(800)
    clock.advance(HOUR)
    assert not breaker.can_trade(current_portfolio_value=1000)
    assert breaker.is_tripped


def test_a_new_utc_session_clears_the_trip_and_starts_from_the_previous_close(
    clock: ManualClock,
) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    seen = events_of(breaker)
    breaker.update(1000)
    breaker.update(800)
    clock.set(datetime(2025, 3, 3, 23, 59, 59, 999999, tzinfo=UTC))
    assert breaker.state is CircuitBreakerState.TRIPPED
    clock.advance(0.000001)  # midnight UTC
    assert breaker.state is CircuitBreakerState.NORMAL
    # SPEC §3: the new session's baseline is the previous close (the last value observed).
    assert breaker.get_start_of_day_value() == 800
    assert breaker.get_current_daily_loss() == 0
    assert [(e.kind, e.state) for e in seen] == [
        ("tripped", CircuitBreakerState.TRIPPED),
        ("reset", CircuitBreakerState.RESETTING),
        ("reset", CircuitBreakerState.NORMAL),
    ]
    assert seen[-1].details["cause"] == "new_session"
    assert seen[-1].reason == "new trading session"
    assert breaker.can_trade(current_portfolio_value=700)  # exactly 100 below the close
    assert breaker.get_start_of_day_value() == 800
    assert not breaker.can_trade(current_portfolio_value="699.99")


def test_session_roll_also_happens_through_can_trade_without_a_value(
    clock: ManualClock,
) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    breaker.update(1000)
    breaker.update(800)
    clock.advance(24 * HOUR)
    assert breaker.can_trade()


def test_a_manual_halt_survives_the_session_roll(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    breaker.trigger_halt("desk closed", "ops")
    clock.advance(48 * HOUR)
    assert breaker.state is CircuitBreakerState.MANUALLY_HALTED
    assert not breaker.can_trade(current_portfolio_value=1)


def test_manual_reset_rebaselines_to_the_latest_value(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    breaker.can_trade(current_portfolio_value=1000, start_of_day_value=1000)
    breaker.update(850)
    breaker.reset(operator="risk")
    assert breaker.get_start_of_day_value() == 850
    assert breaker.get_current_daily_loss() == 0
    assert breaker.can_trade(current_portfolio_value=750)  # exactly 100 below 850
    assert not breaker.can_trade(current_portfolio_value=749)


def test_roll_calendar_sessions_for_fx(clock: ManualClock) -> None:
    cal = DailyRollCalendar("America/New_York", "17:00")
    clock.set(datetime(2025, 3, 3, 21, 0, tzinfo=UTC))  # 16:00 EST
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, calendar=cal, clock=clock)
    breaker.update(1000)
    breaker.update(850)
    assert breaker.is_tripped
    clock.advance(HOUR - 1)
    assert breaker.is_tripped  # 16:59:59 New York
    clock.advance(1)  # 17:00 New York: a new session
    assert not breaker.is_tripped
    assert breaker.get_start_of_day_value() == 850  # the previous close
    assert breaker.can_trade(current_portfolio_value=800)
    assert breaker.get_start_of_day_value() == 850


def test_calendar_from_its_config_spelling(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(
        max_daily_loss=1, calendar="roll:17:00@America/New_York", clock=clock
    )
    assert isinstance(breaker.calendar, DailyRollCalendar)
    assert breaker.calendar.describe() == "roll:17:00@America/New_York"


def test_exchange_calendar_sessions(clock: ManualClock) -> None:
    clock.set(datetime(2025, 7, 3, 15, 0, tzinfo=UTC))  # Thursday, early close at 13:00 ET
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, calendar="XNYS", clock=clock)
    breaker.update(1000)
    breaker.update(899)
    assert breaker.is_tripped
    clock.set(datetime(2025, 7, 4, 15, 0, tzinfo=UTC))  # Independence Day: no session
    assert breaker.is_tripped
    clock.set(datetime(2025, 7, 7, 13, 29, tzinfo=UTC))  # Monday 09:29 ET
    assert breaker.is_tripped
    clock.set(datetime(2025, 7, 7, 13, 30, tzinfo=UTC))  # Monday open
    assert not breaker.is_tripped
    assert breaker.get_start_of_day_value() == 899  # Thursday's close


def test_percentage_limit_from_a_baseline_at_or_below_zero(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss_pct="0.10", clock=clock)
    assert breaker.can_trade(current_portfolio_value=-100)  # no loss yet: not tripped
    assert breaker.limit() == 0
    assert breaker.can_trade(current_portfolio_value=-50)  # a gain
    assert not breaker.can_trade(current_portfolio_value="-100.01")  # any loss trips


@pytest.mark.parametrize(
    ("tripped_at", "roll_utc"),
    [
        # Saturday 8 March 2025 (EST) → the roll on Sunday 9 March is 17:00 EDT = 21:00 UTC.
        (datetime(2025, 3, 8, 23, 0, tzinfo=UTC), datetime(2025, 3, 9, 21, 0, tzinfo=UTC)),
        # Saturday 1 November 2025 (EDT) → Sunday 2 November 17:00 EST = 22:00 UTC.
        (datetime(2025, 11, 1, 22, 0, tzinfo=UTC), datetime(2025, 11, 2, 22, 0, tzinfo=UTC)),
    ],
)
def test_roll_calendar_clears_at_17_local_across_dst(
    clock: ManualClock, tripped_at: datetime, roll_utc: datetime
) -> None:
    clock.set(tripped_at)
    breaker = DailyLossCircuitBreaker(
        max_daily_loss=100, calendar=DailyRollCalendar("America/New_York", "17:00"), clock=clock
    )
    breaker.update(1000)
    breaker.update(899)
    assert breaker.is_tripped
    clock.set(roll_utc - timedelta(microseconds=1))
    assert breaker.is_tripped
    clock.set(roll_utc)
    assert not breaker.is_tripped
    assert breaker.get_start_of_day_value() == 899  # the previous close


def test_wall_time_stepping_back_never_rolls_the_session(clock: ManualClock) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    breaker.update(1000)
    breaker.update(800)
    clock.set(datetime(2025, 3, 2, 12, 0, tzinfo=UTC))  # back into the previous UTC day
    assert breaker.is_tripped
    assert breaker.get_start_of_day_value() == 1000
    clock.set(datetime(2025, 3, 4, 0, 0, tzinfo=UTC))  # forward into a new session
    assert not breaker.is_tripped


class BusyStore(MemoryStore):
    """A MemoryStore that refuses every write while ``busy`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def write(self, name: str, snapshot: Any, audit: Sequence[AuditRecord]) -> Any:
        if self.busy:
            raise StoreUnavailableError("store busy")
        return super().write(name, snapshot, audit)


def test_a_session_roll_the_store_refused_is_retried_by_the_next_read(
    clock: ManualClock,
) -> None:
    store = BusyStore()
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    store.attach(breaker)
    breaker.update(1000)
    breaker.update(800)
    assert breaker.is_tripped
    clock.set(datetime(2025, 3, 4, 0, 5, tzinfo=UTC))  # the next UTC session
    store.busy = True
    assert breaker.is_tripped  # the clear could not be recorded: stay tripped (fail safe)
    assert not breaker.can_trade(current_portfolio_value=790)  # first value of the session
    assert breaker.is_tripped
    store.busy = False
    assert not breaker.is_tripped  # the roll is retried
    # The new session's baseline: the previous close, 800, not the 790 seen meanwhile.
    assert breaker.get_start_of_day_value() == 800
    assert breaker.get_current_daily_loss() == 10
    assert breaker.can_trade(current_portfolio_value=700)  # exactly 100 below 800
    assert not breaker.can_trade(current_portfolio_value="699.99")
    resets = [e for e in store.iter_audit() if e.event == "breaker_reset"]
    assert resets[-1].to_dict()["payload"]["details"]["cause"] == "new_session"


def test_a_restart_from_a_store_that_missed_the_roll_clears_the_trip(clock: ManualClock) -> None:
    store = BusyStore()
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    store.attach(breaker)
    breaker.update(1000)
    breaker.update(800)
    clock.set(datetime(2025, 3, 4, 0, 5, tzinfo=UTC))
    store.busy = True
    assert breaker.is_tripped
    store.busy = False
    # A process restarted from the store (which never got the clear) rolls by itself.
    restarted = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    store.attach(restarted)
    assert not restarted.is_tripped
    assert restarted.get_start_of_day_value() == 800  # the close survived the restart
    snapshot = store.load_snapshot("daily_loss")
    assert snapshot is not None
    assert snapshot["state"] == "NORMAL"
    assert snapshot["data"]["session"] == "2025-03-04T00:00:00+00:00"


def test_exchange_calendar_sessions_in_the_1990s(clock: ManualClock) -> None:
    # Before exchange-calendars' default start, each day is still its own session: a loss
    # is measured from the previous session's close, not from the first session the
    # package loads.
    clock.set(datetime(1990, 1, 2, 15, 0, tzinfo=UTC))
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, calendar="XNYS", clock=clock)
    breaker.update(1000)
    assert breaker.get_start_of_day_value() == 1000
    clock.set(datetime(1990, 1, 3, 15, 0, tzinfo=UTC))  # Wednesday's session
    breaker.update(950)
    assert breaker.get_start_of_day_value() == 1000  # Tuesday's close
    clock.set(datetime(1990, 1, 4, 15, 0, tzinfo=UTC))
    breaker.update(880)  # 70 below Wednesday's close, 120 below Tuesday's
    assert breaker.get_start_of_day_value() == 950
    assert not breaker.is_tripped


# ---------------------------------------------------------------- the previous close (SPEC §3)
def test_one_close_per_session_is_judged_against_the_previous_close(clock: ManualClock) -> None:
    # Daily closes: each value is alone in its session. Before, each was its own baseline
    # and nothing could ever trip.
    breaker = DailyLossCircuitBreaker(max_daily_loss=5000, clock=clock)
    closes = [100_000, 96_000, 90_999, 91_000, 85_000]
    tripped = []
    for close in closes:
        clock.advance(24 * HOUR)
        tripped.append(not breaker.can_trade(current_portfolio_value=close))
    # 100000 → 96000 (4000), → 90999 (5001: trips), → 91000 (a gain), → 85000 (6000: trips)
    assert tripped == [False, False, True, False, True]
    assert breaker.get_trip_details()["start_of_day_value"] == Decimal(91_000)


def test_a_given_start_of_day_value_still_wins_over_the_previous_close(
    clock: ManualClock,
) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    breaker.update(1000)
    clock.advance(24 * HOUR)
    assert breaker.can_trade(current_portfolio_value=850, start_of_day_value=900)
    assert breaker.get_start_of_day_value() == 900


def test_the_previous_close_survives_a_restart(clock: ManualClock) -> None:
    store = MemoryStore()
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    store.attach(breaker)
    breaker.update(1000)
    breaker.update(980)  # the close: the last value of the session
    clock.advance(24 * HOUR)
    restarted = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    store.attach(restarted)
    assert restarted.get_start_of_day_value() == 980
    assert not restarted.can_trade(current_portfolio_value=879)  # 101 below the close


def test_the_first_session_without_a_close_starts_at_its_first_value(
    clock: ManualClock,
) -> None:
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    assert breaker.can_trade(start_of_day_value=5000)  # a baseline, but no value observed
    clock.advance(24 * HOUR)
    assert breaker.get_start_of_day_value() is None  # no value was ever observed
    assert breaker.can_trade(current_portfolio_value=700)
    assert breaker.get_start_of_day_value() == 700


def _agrees(calendar: Any, moments: list[datetime]) -> None:
    from haltgate.calendars import SessionTracker

    for moment in moments:
        start = calendar.session_start(moment)
        following = calendar.next_session_start(start)
        assert following > start
        assert calendar.session_start(following) == following
        assert calendar.session_start(following - timedelta(microseconds=1)) == start
        tracker = SessionTracker(calendar)
        tracker.roll(moment, lambda *_: True, None)
        assert tracker.next_start() == following
        assert tracker.new_session(following - timedelta(microseconds=1)) is None
        assert tracker.new_session(following) == following


def test_next_session_start_agrees_with_session_start() -> None:
    base = datetime(2025, 3, 1, tzinfo=UTC)
    moments = [base + timedelta(hours=7 * i) for i in range(120)]  # across spring forward
    moments += [datetime(2025, 11, 1, tzinfo=UTC) + timedelta(hours=5 * i) for i in range(60)]
    from haltgate import UTCDailyCalendar

    _agrees(UTCDailyCalendar(), moments)
    _agrees(DailyRollCalendar("America/New_York", "17:00"), moments)
    _agrees(DailyRollCalendar("America/New_York", "02:30"), moments)  # a roll in the gap
    _agrees(DailyRollCalendar("America/New_York", "01:30"), moments)  # a roll twice


def test_exchange_next_session_start_skips_holidays() -> None:
    from haltgate import ExchangeCalendar

    xnys = ExchangeCalendar("XNYS")
    july3 = datetime(2025, 7, 3, 15, 0, tzinfo=UTC)
    assert xnys.next_session_start(xnys.session_start(july3)) == datetime(
        2025, 7, 7, 13, 30, tzinfo=UTC
    )
    _agrees(xnys, [july3 + timedelta(hours=9 * i) for i in range(40)])


def test_a_tick_feed_writes_the_close_at_most_once_a_second(clock: ManualClock) -> None:
    # The close must survive a restart, but a tick feed must not export a snapshot per tick.
    store = MemoryStore()
    breaker = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    store.attach(breaker)
    writes: list[Any] = []
    original = store.write

    def counting(name: str, snapshot: Any, audit: Sequence[AuditRecord]) -> Any:
        writes.append(snapshot)
        return original(name, snapshot, audit)

    store.write = counting  # type: ignore[method-assign]
    for i in range(100):  # 100 ticks, 10 ms apart: one second
        clock.advance(0.01)
        breaker.update(1000 + i % 3)
    assert 1 <= len(writes) <= 3
    clock.advance(1)
    breaker.update(990)
    snapshot = store.load_snapshot("daily_loss")
    assert snapshot is not None
    assert snapshot["data"]["current"] == "990"
