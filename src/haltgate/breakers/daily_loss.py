"""Daily-loss breaker: trips when today's loss exceeds a limit; clears at the next session."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..calendars import SessionTracker, TradingCalendar, UTCDailyCalendar, calendar_from_spec
from ..clock import Clock
from ..errors import InvalidInputError
from ..events import BreakerEvent
from ..values import DECIMAL_CONTEXT, Number, to_decimal, to_fraction, to_positive
from .base import BaseCircuitBreaker
from .contract import UNSET, BreakerContract
from .state import BLOCKING_STATES, CircuitBreakerType

__all__ = ["DailyLossCircuitBreaker"]

_ZERO = Decimal(0)
# Rows this close (seconds) to the next session's start go to the per-row path, which
# compares datetimes: a float epoch time so close may round onto the boundary.
_EDGE = 0.001
# Seconds between two writes of the latest value (the previous close of the next session).
_CLOSE_EVERY = 1.0


class DailyLossCircuitBreaker(BaseCircuitBreaker):
    """Trips when ``start_of_day_value - current`` is **greater than** the limit.

    Give exactly one of ``max_daily_loss`` (an amount) or ``max_daily_loss_pct`` (a
    fraction of the start-of-day value in (0, 1]). Sessions come from ``calendar``
    (default :class:`~haltgate.UTCDailyCalendar`). The baseline is the ``start_of_day_value``
    given for the session; otherwise the last value observed before the session began (the
    previous close, kept in the snapshot so a restart keeps it), and only when there is none
    (the first session this breaker sees) the first value observed in the session. So one
    observation per session (daily closes) is judged against the previous close, as a broker
    reports daily P&L. At a new session a trip clears by itself; a manual halt stays.
    Sessions only move forward (:class:`~haltgate.calendars.SessionTracker`): a wall clock
    stepped back never clears a trip, and a roll whose clear the store refused is retried by
    the next read.

    The decision is ``current < start_of_day_value - limit`` (:meth:`loss_floor`), the same
    exact comparison as ``loss > limit`` (every operand is exact in ``DECIMAL_CONTEXT``);
    :meth:`feed_batch` uses that same floor for many rows at once.
    """

    contract = BreakerContract(
        observes={"current_portfolio_value": to_decimal, "start_of_day_value": to_decimal},
        clears_by_time=True,
        batch=True,
    )
    # Its only self-clear is the session roll, which starts the new session's baseline
    # afresh; re-baselining to the latest value would take the first value observed while a
    # refused roll waited for the store as the baseline no longer.
    _rebaseline_on_self_clear = False

    def __init__(
        self,
        max_daily_loss: Number | None = None,
        *,
        max_daily_loss_pct: Number | None = None,
        calendar: TradingCalendar | str | None = None,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if (max_daily_loss is None) == (max_daily_loss_pct is None):
            raise InvalidInputError(
                "max_daily_loss",
                max_daily_loss,
                "give exactly one of max_daily_loss or max_daily_loss_pct",
            )
        amount = None if max_daily_loss is None else to_positive(max_daily_loss, "max_daily_loss")
        pct = (
            None
            if max_daily_loss_pct is None
            else to_fraction(max_daily_loss_pct, "max_daily_loss_pct")
        )
        cal = UTCDailyCalendar() if calendar is None else calendar_from_spec(calendar)
        super().__init__(CircuitBreakerType.DAILY_LOSS, name=name, clock=clock)
        self.max_daily_loss = amount
        self.max_daily_loss_pct = pct
        self._sessions = SessionTracker(cal)
        self._baseline: Decimal | None = None
        self._current: Decimal | None = None
        # The session whose figures are kept while its roll waits for the store to record
        # the trip's clear (see _roll_locked).
        self._figures_of: datetime | None = None
        # (baseline, loss floor) of the latest loss_floor() call.
        self._floor: tuple[Decimal, Decimal] | None = None
        # Monotonic time the latest value was last written for (see _close_due).
        self._close_saved = -math.inf

    def can_trade(
        self,
        current_portfolio_value: Number = UNSET,
        start_of_day_value: Number = UNSET,
    ) -> bool:
        """Observe today's values (both optional; ``None`` is refused); True unless tripped
        or halted."""
        current = (
            None
            if current_portfolio_value is UNSET
            else to_decimal(current_portfolio_value, "current_portfolio_value")
        )
        baseline = (
            None
            if start_of_day_value is UNSET
            else to_decimal(start_of_day_value, "start_of_day_value")
        )
        events: list[BreakerEvent] = []
        with self._lock:
            self._refresh_locked(events)
            changed = False
            if baseline is not None and baseline != self._baseline:
                self._baseline = baseline
                changed = True
            moved = False
            if current is not None:
                moved = current != self._current
                self._current = current
                if self._baseline is None:
                    self._baseline = current
                    changed = True
                self._check_locked(events)
            if not events and (changed or (moved and self._close_due())):
                self._persist_soft()
            ok = self._state not in BLOCKING_STATES
        self._publish(events)
        return ok

    @property
    def calendar(self) -> TradingCalendar:
        """The calendar whose sessions this breaker follows."""
        return self._sessions.calendar

    def update(self, value: Number) -> bool:
        """Observe a portfolio value (same as ``can_trade(current_portfolio_value=value)``)."""
        return self.can_trade(current_portfolio_value=to_decimal(value, "value"))

    def limit(self) -> Decimal | None:
        """Today's loss limit as an amount (``None`` for a percentage limit with no baseline)."""
        if self.max_daily_loss is not None:
            return self.max_daily_loss
        if self._baseline is None or self.max_daily_loss_pct is None:
            return None
        # A fraction of nothing is nothing: from a baseline at or below zero, any further
        # loss trips (a negative limit would trip with no loss at all).
        return max(DECIMAL_CONTEXT.multiply(self.max_daily_loss_pct, self._baseline), _ZERO)

    def _close_due(self) -> bool:
        """Whether the latest value (the next session's previous close) is to be written
        now: at most once a second of monotonic time, so that a tick feed does not export
        a snapshot on every tick. A restart then starts the next session from the close as
        of at most a second before the last value seen (and a feed of one value a second or
        slower, daily closes, from exactly the last one)."""
        now = self._clock.monotonic()
        if now - self._close_saved < _CLOSE_EVERY:
            return False
        self._close_saved = now
        return True

    def loss_floor(self) -> Decimal | None:
        """The value below which the session's loss exceeds the limit:
        ``start_of_day_value - limit`` (``None`` before a baseline).

        ``current < floor`` is exactly ``start_of_day_value - current > limit``: both
        differences are exact in ``DECIMAL_CONTEXT`` (no accepted value is ever rounded),
        so the two comparisons order the same rational numbers. Cached per baseline."""
        baseline = self._baseline
        if baseline is None:
            return None
        cached = self._floor
        if cached is not None and cached[0] is baseline:
            return cached[1]
        limit = self.limit()
        if limit is None:
            return None
        floor = DECIMAL_CONTEXT.subtract(baseline, limit)
        self._floor = (baseline, floor)
        return floor

    def feed_batch(
        self, times: Sequence[float], values: Sequence[Decimal], start: int, stop: int
    ) -> int:
        """Observe ``values[start:stop]`` at ``times`` (see
        :meth:`BaseCircuitBreaker.feed_batch`): within the session in force (the session
        roll is :class:`~haltgate.calendars.SessionTracker`'s: a row at or after its
        :meth:`~haltgate.calendars.SessionTracker.next_start` is left to ``can_trade``),
        each row is compared with the same :meth:`loss_floor` as ``can_trade``; stops
        before a new session, a breach, or a session without a baseline. Emits nothing."""
        if start >= stop:
            return start
        with self._lock:
            following = self._sessions.next_start()
            if following is None or self._baseline is None:
                return start
            end = following.timestamp() - _EDGE
            index = start
            if self._condition is not None:
                # Tripped: nothing in this session changes the state but the latest value.
                while index < stop and times[index] < end:
                    index += 1
            else:
                floor = self.loss_floor()
                if floor is None:
                    return start
                while index < stop and times[index] < end and not values[index] < floor:
                    index += 1
            if index > start:
                last = values[index - 1]
                if last != self._current:
                    self._current = last
                    if self._close_due():
                        self._persist_soft()
            return index

    def _check_locked(self, events: list[BreakerEvent]) -> None:
        current = self._current
        if current is None or self._condition is not None:
            return
        floor = self.loss_floor()
        if floor is None or not current < floor:
            return
        baseline = self._baseline
        assert baseline is not None  # a floor needs a baseline
        loss = DECIMAL_CONTEXT.subtract(baseline, current)
        limit = self.limit()
        what = (
            f"{self.max_daily_loss_pct:.2%} of {self._baseline}"
            if self.max_daily_loss_pct is not None
            else f"{limit}"
        )
        self._trip_locked(
            f"Daily loss {loss} exceeds max {what} (start of day {self._baseline}, "
            f"current {self._current})",
            {
                "threshold": limit,
                "threshold_pct": self.max_daily_loss_pct,
                "observed": loss,
                "start_of_day_value": self._baseline,
                "current": self._current,
                "session_start": self._sessions.session,
            },
            events,
        )

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        self._sessions.roll(self._clock.now(), self._roll_locked, events)

    def _roll_locked(
        self, start: datetime, previous: datetime | None, events: list[BreakerEvent]
    ) -> bool:
        """A new session: its baseline is the previous close (the last value observed
        before it; ``None`` when none was ever observed, so the first value of the session
        sets it), and a trip clears. False when the clear could not be recorded: the trip
        stays (fail safe) and the roll is retried by the next read, while the values
        observed meanwhile already count for the new session."""
        if self._figures_of != start:
            self._baseline = self._current
        self._figures_of = None
        if previous is None or not self._clears_own_condition:
            return True  # nothing of ours to clear (an imported trip is its origin's)
        if self._clear_locked(
            "new trading session", {"cause": "new_session", "session_start": start}, events
        ):
            return True
        self._figures_of = start
        return False

    def get_current_daily_loss(self) -> Decimal:
        """Loss since the start of the session (positive = losing; 0 before any value, and
        at the start of a session before its first value)."""
        self._refresh()
        if self._baseline is None or self._current is None:
            return _ZERO
        return DECIMAL_CONTEXT.subtract(self._baseline, self._current)

    def get_start_of_day_value(self) -> Decimal | None:
        """This session's baseline (given, else the previous close, else the session's first
        value), or ``None`` before any value."""
        self._refresh()
        return self._baseline

    def _on_reset(self) -> None:
        if self._current is not None:
            self._baseline = self._current

    def _export_data(self) -> dict[str, Any]:
        return {
            "session": self._sessions.export(),
            "baseline": None if self._baseline is None else str(self._baseline),
            "current": None if self._current is None else str(self._current),
        }

    def _import_data(self, data: Mapping[str, Any]) -> None:
        self._sessions.restore(data.get("session"))
        # Restored figures are the restored session's, not those of a roll still pending.
        self._figures_of = None
        baseline = data.get("baseline")
        self._baseline = None if baseline is None else Decimal(baseline)
        current = data.get("current")
        self._current = None if current is None else Decimal(current)
