"""Error-rate breaker: trips when too many errors fall in a sliding window."""

from __future__ import annotations

import copy
import math
from typing import Any

from ..clock import Clock
from ..events import BreakerEvent
from ..filters import CompiledFilter, FilterSpec, compile_filter
from ..values import Number, to_count, to_seconds, to_text
from ..windows import SlidingWindowCounter
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import CircuitBreakerType

__all__ = ["ErrorRateCircuitBreaker"]


class ErrorRateCircuitBreaker(BaseCircuitBreaker):
    """Trips when the errors within ``window_seconds`` are **more than** ``max_errors``.

    ``ignore`` (exception types or a predicate) skips expected errors such as insufficient
    funds. Clears by itself when the count is back within the limit (and
    ``cooldown_seconds`` after the trip have passed). A manual :meth:`reset` also forgets
    the errors in the window: the operator has acknowledged them.
    """

    contract = BreakerContract(counts_errors=True, clears_by_time=True)
    _rebaseline_on_self_clear = False

    def __init__(
        self,
        max_errors: int,
        window_seconds: Number = 300,
        *,
        ignore: FilterSpec | None = None,
        cooldown_seconds: Number = 0,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        limit = to_count(max_errors, "max_errors")
        window = to_seconds(window_seconds, "window_seconds")
        cooldown = to_seconds(cooldown_seconds, "cooldown_seconds", allow_zero=True)
        ignored = compile_filter(ignore, "ignore", match_counts=False)
        super().__init__(CircuitBreakerType.ERROR_RATE, name=name, clock=clock)
        self.max_errors = limit
        self.window_seconds = window
        self.cooldown_seconds = cooldown
        self._ignore: CompiledFilter | None = ignored
        self._window = SlidingWindowCounter(window, compact_above=limit)

    def record_error(self, error: Any = None, *, category: str | None = None) -> bool:
        """Record an error (an exception, a message or None); returns whether it counted."""
        if category is not None:
            category = to_text(category, "category")
        ignore = self._ignore
        if error is not None and ignore is not None and ignore.matches(error, self.name):
            return False
        if category is None:
            category = type(error).__name__ if isinstance(error, BaseException) else "error"
        events: list[BreakerEvent] = []
        with self._lock:
            now = self._clock.monotonic()
            count = self._window.add(now, 1, category)
            if count > self.max_errors and self._condition is None:
                self._trip_locked(
                    f"Error rate exceeded: {count} errors in the last {self.window_seconds:g}s "
                    f"(max {self.max_errors})",
                    {
                        "threshold": self.max_errors,
                        "observed": count,
                        "window_seconds": self.window_seconds,
                        "by_category": self._window.tags(now),
                        "last_error": None if error is None else repr(error)[:500],
                    },
                    events,
                )
            else:
                self._refresh_locked(events)
        if events:
            self._publish(events)
        return True

    def get_error_count(self) -> int:
        """Errors within the window now."""
        with self._lock:
            return self._window.count(self._clock.monotonic())

    def get_error_categories(self) -> dict[str, int]:
        """Errors within the window per category (exception type name by default)."""
        with self._lock:
            return self._window.tags(self._clock.monotonic())

    def unchanged_by_time_until(self) -> float:
        """See :meth:`BaseCircuitBreaker.unchanged_by_time_until`. NORMAL: only an error can
        trip it; a trip of its own clears once the cooldown has passed and the window holds
        no more than ``max_errors`` (reported a little early, never late). A halt or a trip
        from elsewhere: any read may change it."""
        if type(self).contract.asked:
            return -math.inf
        with self._lock:
            condition = self._condition
            if self._halt is not None:
                return -math.inf
            if condition is None:
                return math.inf
            if condition.restored or condition.origin != self._origin:
                return -math.inf
            now = self._clock.monotonic()
            frees = self._window.frees_at(self.max_errors + 1, now)
            until = self._tripped_mono + self.cooldown_seconds
            if frees is not None and frees > until:
                until = frees
            return until - 0.001  # early rather than late: float vs whole microseconds

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        if self._condition is None:
            return
        now = self._clock.monotonic()
        if now - self._tripped_mono < self.cooldown_seconds:
            return
        count = self._window.count(now)
        if count <= self.max_errors:
            self._clear_locked(
                "errors back within the limit",
                {"cause": "errors_aged_out", "observed": count},
                events,
            )

    def _on_reset(self) -> None:
        self._window.clear()

    def _memento(self) -> Any:
        # The window is this breaker's evidence and is not exported: keep a copy so a
        # reset the store refuses forgets no error.
        return copy.deepcopy(self._window)

    def _restore_memento(self, memento: Any) -> None:
        self._window = memento

    def _restore_hold_seconds(self) -> float:
        return max(self.window_seconds, self.cooldown_seconds)
