"""Threshold breaker: trips when a reported percentage is at or below a limit.

For values that someone else computes and reports (a portfolio system's daily P&L % or
drawdown from peak, losses negative). The limit is **inclusive**: with ``limit=-2.0`` a
reported ``-2.0`` trips. A warning level above the limit fires once per crossing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..calendars import SessionTracker, TradingCalendar, calendar_from_spec
from ..clock import Clock
from ..errors import InvalidInputError
from ..events import BreakerEvent
from ..values import DECIMAL_CONTEXT, Number, to_decimal, to_seconds, to_text
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import BLOCKING_STATES, CircuitBreakerType

__all__ = ["CrossingWarning", "ThresholdCircuitBreaker"]

_ZERO = Decimal(0)


class CrossingWarning:
    """Fires once each time a value crosses a level, and re-arms when it comes back.

    Not thread-safe on its own: callers hold their breaker's lock.
    """

    __slots__ = ("armed",)

    def __init__(self) -> None:
        self.armed = True

    def update(self, beyond: bool) -> bool:
        """Feed whether the value is beyond the level now; True when a warning is due."""
        if not beyond:
            self.armed = True
            return False
        if self.armed:
            self.armed = False
            return True
        return False


class ThresholdCircuitBreaker(BaseCircuitBreaker):
    """Trips when an observed value is **at or below** ``limit`` (inclusive).

    Values are reported percentages with losses negative (``Decimal("-2.5")`` is a 2.5 %
    loss). ``warning`` (above the limit, or ``None``) publishes a ``warning`` event once
    per crossing; it re-arms when the value comes back above the warning level.

    How a trip clears:

    * ``recovery_seconds`` (optional): by itself, once the latest value is back above the
      limit and that many seconds have passed since the last value at or below it;
    * ``calendar`` (optional): by itself when a new session starts (a daily figure).
      Sessions only move forward (:class:`~haltgate.calendars.SessionTracker`, shared with
      :class:`~haltgate.DailyLossCircuitBreaker`): a wall clock stepped back never clears a
      trip, and a roll whose clear the store refused is retried by the next read;
    * with neither, it is latched: only :meth:`reset` clears it.

    A manual :meth:`reset` while the value is still at or below the limit grants a fresh
    allowance of the same size measured from that value (``-12`` with a ``-10`` limit
    trips again at ``-22``), as a drawdown or daily-loss reset does; the configured limit
    applies again once the value is back above it or a new session starts.
    """

    contract = BreakerContract(clears_by_time=True)

    def __init__(
        self,
        breaker_type: CircuitBreakerType | str,
        limit: Number,
        *,
        warning: Number | None = None,
        recovery_seconds: Number | None = None,
        calendar: TradingCalendar | str | None = None,
        label: str = "Value",
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        threshold = to_decimal(limit, "limit")
        level = None if warning is None else to_decimal(warning, "warning")
        if level is not None and level <= threshold:
            raise InvalidInputError("warning", warning, f"must be above the limit {threshold}")
        recovery = (
            None
            if recovery_seconds is None
            else to_seconds(recovery_seconds, "recovery_seconds", allow_zero=True)
        )
        cal = None if calendar is None else calendar_from_spec(calendar)
        text = to_text(label, "label")
        super().__init__(breaker_type, name=name, clock=clock)
        self.limit = threshold
        self.warning = level
        self.recovery_seconds = recovery
        self._sessions = None if cal is None else SessionTracker(cal)
        self.label = text
        self._last: Decimal | None = None
        self._last_breach = float("-inf")
        # Offset of the fresh allowance granted by a reset (0 = the configured limit).
        self._base = _ZERO
        self._warning = CrossingWarning()

    # ------------------------------------------------------------------ reading
    @property
    def calendar(self) -> TradingCalendar | None:
        """The calendar whose sessions clear a trip, or ``None`` without sessions."""
        return None if self._sessions is None else self._sessions.calendar

    @property
    def latched(self) -> bool:
        """True when only :meth:`reset` can clear a trip."""
        return self.recovery_seconds is None and self.calendar is None

    def effective_limit(self) -> Decimal:
        """The limit in force now (the configured one, or a reset's fresh allowance)."""
        return DECIMAL_CONTEXT.add(self._base, self.limit)

    def effective_warning(self) -> Decimal | None:
        """The warning level in force now, or ``None`` without one."""
        return None if self.warning is None else DECIMAL_CONTEXT.add(self._base, self.warning)

    def get_value(self) -> Decimal | None:
        """The latest observed value (``None`` before any, or after a session roll)."""
        self._refresh()
        return self._last

    def can_trade(self) -> bool:
        """True unless tripped or halted (observe values with :meth:`observe`)."""
        return not self.is_tripped

    # ------------------------------------------------------------------ observing
    def observe(self, value: Number) -> bool:
        """Observe a reported value; returns True unless the breaker is tripped or halted."""
        observed = to_decimal(value, "value")
        events: list[BreakerEvent] = []
        warnings: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            self._refresh_locked(events)
            self._last = observed
            if self._base != _ZERO and observed > self.limit:
                # Back inside the configured limit: the reset's extra allowance is spent.
                self._base = _ZERO
                self._persist_soft()
            limit = self.effective_limit()
            level = self.effective_warning()
            if level is not None and self._warning.update(observed <= level):
                warnings.append(
                    (
                        f"{self.label} {observed}% is at or below the warning level {level}%"
                        f" (limit {limit}%)",
                        {"threshold": level, "limit": limit, "observed": observed},
                    )
                )
            if observed <= limit:
                self._last_breach = self._clock.monotonic()
                if self._condition is None:
                    self._trip_locked(
                        f"{self.label} {observed}% is at or below the limit {limit}%",
                        {
                            "threshold": limit,
                            "configured_limit": self.limit,
                            "observed": observed,
                            "session_start": None
                            if self._sessions is None
                            else self._sessions.session,
                        },
                        events,
                    )
            ok = self._state not in BLOCKING_STATES
        for reason, details in warnings:
            self._warn(reason, details)
        self._publish(events)
        return ok

    # ------------------------------------------------------------------ time-driven clearing
    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        if self._sessions is not None:
            self._sessions.roll(self._clock.now(), self._roll_locked, events)
        if (
            self.recovery_seconds is not None
            and self._condition is not None
            and self._last is not None
            and self._last > self.effective_limit()
            and self._clock.monotonic() - self._last_breach >= self.recovery_seconds
        ):
            self._clear_locked(
                f"{self.label} recovered above the limit",
                {
                    "cause": "recovered",
                    "observed": self._last,
                    "threshold": self.effective_limit(),
                    "recovery_seconds": self.recovery_seconds,
                },
                events,
            )

    def _roll_locked(
        self, start: datetime, previous: datetime | None, events: list[BreakerEvent]
    ) -> bool:
        """A new session: forget the day's figure and clear a trip. False (everything as it
        was) when the clear could not be recorded, so that the roll is retried."""
        if previous is None:
            return True
        kept = (self._last, self._base, self._warning)
        self._last = None
        self._base = _ZERO
        self._warning = CrossingWarning()
        if self._clears_own_condition and not self._clear_locked(
            "new trading session", {"cause": "new_session", "session_start": start}, events
        ):
            # Still tripped (store refused the clear, or a restored trip is held): the trip
            # and its day's figures stay until the roll succeeds.
            self._last, self._base, self._warning = kept
            return False
        self._persist_soft()
        return True

    def _restore_hold_seconds(self) -> float:
        return self.recovery_seconds or 0.0

    def _on_reset(self) -> None:
        last = self._last
        if last is not None and last <= self.effective_limit():
            self._base = last
        self._warning = CrossingWarning()

    # ------------------------------------------------------------------ persistence
    def _export_data(self) -> dict[str, Any]:
        return {
            "last": None if self._last is None else str(self._last),
            "base": str(self._base),
            "session": None if self._sessions is None else self._sessions.export(),
            "warning_armed": self._warning.armed,
        }

    def _import_data(self, data: Mapping[str, Any]) -> None:
        last = data.get("last")
        self._last = None if last is None else Decimal(last)
        self._base = Decimal(data.get("base", "0"))
        if self._sessions is not None:
            self._sessions.restore(data.get("session"))
        self._warning.armed = bool(data.get("warning_armed", True))
