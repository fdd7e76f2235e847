"""Connection breaker: trips on consecutive broker failures or a silent connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clock import Clock
from ..events import BreakerEvent
from ..values import Number, to_count, to_seconds, to_text
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import CircuitBreakerType

__all__ = ["CALLER", "ConnectionCircuitBreaker"]

#: The default source of failures and successes: the caller's own broker/API calls.
CALLER = "caller"

_TIMEOUT = "timeout"
_FAILURES = "failures"


class ConnectionCircuitBreaker(BaseCircuitBreaker):
    """Trips after ``failure_threshold`` consecutive failures, or when no success or
    heartbeat came for **more than** ``timeout_seconds``.

    The next :meth:`record_success` clears either trip; a :meth:`heartbeat` proves the link
    is alive, so it clears a timeout trip but not a failure trip.

    Failures and successes may name their ``source`` (default ``"caller"``): each source
    keeps its own count of failures in a row, and the breaker trips when their sum reaches
    ``failure_threshold``. ``record_success(source=s)`` forgets only the failures of ``s``
    and clears a failure trip only once no source has failures left, so one source's
    recovery (e.g. the portfolio provider answering again) never hides another's failing
    calls. ``record_success()`` without a source is a success of the whole connection.
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
        self._failures: dict[str, int] = {}
        self._last_alive = self._clock.monotonic()
        # What caused the current trip: "timeout", "failures", or None when unknown (a trip
        # restored from a snapshot that did not record it: only a success may clear it).
        self._trip_cause: str | None = None

    def _set_clock(self, clock: Clock) -> None:
        self._clock = clock
        self._last_alive = clock.monotonic()

    @property
    def _consecutive(self) -> int:
        return sum(self._failures.values())

    def record_failure(self, error: Any = None, *, source: str = CALLER) -> None:
        """Record a failed broker call or connection attempt (from ``source``)."""
        source = to_text(source, "source")
        events: list[BreakerEvent] = []
        with self._lock:
            self._failures[source] = self._failures.get(source, 0) + 1
            total = self._consecutive
            if total >= self.failure_threshold and self._condition is None:
                self._trip_cause = _FAILURES
                self._trip_locked(
                    f"{total} consecutive connection failures (max {self.failure_threshold})",
                    {
                        "threshold": self.failure_threshold,
                        "observed": total,
                        "by_source": dict(self._failures),
                        "last_error": None if error is None else repr(error)[:500],
                    },
                    events,
                )
            elif self._condition is not None:
                if total >= self.failure_threshold:
                    # Tripped by a timeout and now failing too: a heartbeat alone must no
                    # longer clear it, only a success.
                    self._trip_cause = _FAILURES
                # What clears this trip after a restart depends on these counts and cause.
                self._persist_soft()
        if events:
            self._publish(events)

    def record_success(self, *, source: str | None = None) -> None:
        """Record a successful call: resets the failure count and clears a trip.

        With ``source``, only that source's failures are forgotten: a timeout trip clears
        (the answer is a sign of life), a failure trip only if no other source has failures
        left. A trip whose cause is unknown (restored from an older snapshot) is cleared
        only by a success without ``source``.
        """
        if source is not None:
            source = to_text(source, "source")
        events: list[BreakerEvent] = []
        with self._lock:
            self._last_alive = self._clock.monotonic()
            if source is None:
                self._failures.clear()
                self._self_clear("connection restored", {"cause": "success"}, events)
            else:
                had = self._failures.pop(source, 0)
                cleared = False
                if self._trip_cause == _TIMEOUT or (
                    self._trip_cause == _FAILURES and not self._failures
                ):
                    cleared = self._self_clear(
                        "connection restored", {"cause": "success", "source": source}, events
                    )
                if had and not cleared and self._condition is not None:
                    self._persist_soft()
        if events:
            self._publish(events)

    def heartbeat(self) -> None:
        """Record a sign of life: restarts the timeout and clears a timeout trip."""
        events: list[BreakerEvent] = []
        with self._lock:
            self._last_alive = self._clock.monotonic()
            if self._trip_cause == _TIMEOUT:
                self._self_clear("heartbeat received", {"cause": "heartbeat"}, events)
        if events:
            self._publish(events)

    def get_consecutive_failures(self) -> int:
        """Failures since the last success (summed over every source)."""
        return self._consecutive

    def get_failures_by_source(self) -> dict[str, int]:
        """Failures in a row per source (sources without failures are left out)."""
        with self._lock:
            return dict(self._failures)

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

    def _self_clear(self, why: str, details: dict[str, Any], events: list[BreakerEvent]) -> bool:
        # The cause goes with the trip, also in the NORMAL snapshot the clear writes: a stale
        # cause would let a heartbeat lift a trip imported later from another process.
        cause = self._trip_cause
        self._trip_cause = None
        if self._clear_locked(why, details, events):
            return True
        self._trip_cause = cause
        return False

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        pending = self._pending_trip()
        if pending is not None:
            self._trip_cause = _TIMEOUT
            if not self._trip_locked(pending[0], pending[1], events):
                self._trip_cause = None

    def _on_reset(self) -> None:
        self._failures.clear()
        self._last_alive = self._clock.monotonic()
        self._trip_cause = None

    def _export_data(self) -> dict[str, Any]:
        return {"cause": self._trip_cause, "failures": dict(self._failures)}

    def _import_data(self, data: Mapping[str, Any]) -> None:
        cause = data.get("cause")
        # Anything else (an older snapshot, a damaged one) is an unknown cause: the safe
        # side, where only a success clears the trip.
        self._trip_cause = cause if cause in (_TIMEOUT, _FAILURES) else None
        failures: dict[str, int] = {}
        raw = data.get("failures")
        if isinstance(raw, Mapping):
            for source, count in raw.items():
                if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                    failures[str(source)] = count
        self._failures = failures
