"""Daily-loss breaker: trips when today's loss exceeds a limit; clears at the next session."""

from __future__ import annotations

from collections.abc import Mapping
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


class DailyLossCircuitBreaker(BaseCircuitBreaker):
    """Trips when ``start_of_day_value - current`` is **greater than** the limit.

    Give exactly one of ``max_daily_loss`` (an amount) or ``max_daily_loss_pct`` (a
    fraction of the start-of-day value in (0, 1]). Sessions come from ``calendar``
    (default :class:`~haltgate.UTCDailyCalendar`). The baseline is the ``start_of_day_value``
    given for the session, else the first value observed in it. At a new session the
    baseline resets and a trip clears by itself; a manual halt stays. Sessions only move
    forward (:class:`~haltgate.calendars.SessionTracker`): a wall clock stepped back never
    clears a trip, and a roll whose clear the store refused is retried by the next read.
    """

    contract = BreakerContract(
        observes={"current_portfolio_value": to_decimal, "start_of_day_value": to_decimal},
        clears_by_time=True,
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
            if current is not None:
                self._current = current
                if self._baseline is None:
                    self._baseline = current
                    changed = True
                self._check_locked(events)
            if changed and not events:
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

    def _check_locked(self, events: list[BreakerEvent]) -> None:
        if self._baseline is None or self._current is None:
            return
        loss = DECIMAL_CONTEXT.subtract(self._baseline, self._current)
        limit = self.limit()
        if limit is None or loss <= limit or self._condition is not None:
            return
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
        """A new session: reset the baseline and clear a trip. False when the clear could
        not be recorded: the trip stays (fail safe) and the roll is retried by the next
        read, while the values observed meanwhile already count for the new session."""
        if self._figures_of != start:
            self._baseline = None
            self._current = None
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
        """Loss since the start of the session (positive = losing; 0 before any value)."""
        self._refresh()
        if self._baseline is None or self._current is None:
            return _ZERO
        return DECIMAL_CONTEXT.subtract(self._baseline, self._current)

    def get_start_of_day_value(self) -> Decimal | None:
        """This session's baseline, or ``None`` before any value."""
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
