"""Connection breaker: trips on consecutive broker failures or a silent connection."""

from __future__ import annotations

from typing import Any

from ..clock import Clock
from ..events import BreakerEvent
from ..values import Number, to_count, to_seconds
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import CircuitBreakerType

__all__ = ["ConnectionCircuitBreaker"]


class ConnectionCircuitBreaker(BaseCircuitBreaker):
    """Trips after ``failure_threshold`` consecutive failures, or when no success or
    heartbeat came for **more than** ``timeout_seconds``.

    The next :meth:`record_success` clears either trip; a :meth:`heartbeat` proves the link
    is alive, so it clears a timeout trip but not a failure trip.
    """

    contract = BreakerContract(trips_by_time=True)
    _rebaseline_on_self_clear = False

    def __init__(
        self,
        failure_threshold: int = 3,
        timeout_seconds: Number = 30,
        *,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        threshold = to_count(failure_threshold, "failure_threshold")
        timeout = to_seconds(timeout_seconds, "timeout_seconds")
        super().__init__(CircuitBreakerType.CONNECTION, name=name, clock=clock)
        self.failure_threshold = threshold
        self.timeout_seconds = timeout
        self._consecutive = 0
        self._last_alive = self._clock.monotonic()
        self._trip_cause: str | None = None

    def _set_clock(self, clock: Clock) -> None:
        self._clock = clock
        self._last_alive = clock.monotonic()

    def record_failure(self, error: Any = None) -> None:
        """Record a failed broker call or connection attempt."""
        events: list[BreakerEvent] = []
        with self._lock:
            self._consecutive += 1
            if self._consecutive >= self.failure_threshold and self._condition is not None:
                # Tripped by a timeout and now failing too: a heartbeat alone must no
                # longer clear it, only a success.
                self._trip_cause = "failures"
            elif self._consecutive >= self.failure_threshold and self._condition is None:
                self._trip_cause = "failures"
                self._trip_locked(
                    f"{self._consecutive} consecutive connection failures "
                    f"(max {self.failure_threshold})",
                    {
                        "threshold": self.failure_threshold,
                        "observed": self._consecutive,
                        "last_error": None if error is None else repr(error)[:500],
                    },
                    events,
                )
        if events:
            self._publish(events)

    def record_success(self) -> None:
        """Record a successful call: resets the failure count and clears a trip."""
        events: list[BreakerEvent] = []
        with self._lock:
            self._consecutive = 0
            self._last_alive = self._clock.monotonic()
            self._clear_locked("connection restored", {"cause": "success"}, events)
        if events:
            self._publish(events)

    def heartbeat(self) -> None:
        """Record a sign of life: restarts the timeout and clears a timeout trip."""
        events: list[BreakerEvent] = []
        with self._lock:
            self._last_alive = self._clock.monotonic()
            if self._trip_cause == "timeout":
                self._clear_locked("heartbeat received", {"cause": "heartbeat"}, events)
        if events:
            self._publish(events)

    def get_consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._consecutive

    def seconds_since_alive(self) -> float:
        """Seconds since the last success or heartbeat."""
        return self._clock.monotonic() - self._last_alive

    def next_deadline(self) -> float | None:
        """Monotonic time after which silence trips this breaker."""
        return self._last_alive + self.timeout_seconds

    def _pending_trip(self) -> tuple[str, dict[str, Any]] | None:
        if self._condition is not None:
            return None
        silent = self._clock.monotonic() - self._last_alive
        if silent <= self.timeout_seconds:
            return None
        return (
            f"No success or heartbeat for {silent:.1f}s (max {self.timeout_seconds:g}s)",
            {"threshold": self.timeout_seconds, "observed": silent},
        )

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        pending = self._pending_trip()
        if pending is not None:
            self._trip_cause = "timeout"
            self._trip_locked(pending[0], pending[1], events)

    def _on_reset(self) -> None:
        self._consecutive = 0
        self._last_alive = self._clock.monotonic()
        self._trip_cause = None
