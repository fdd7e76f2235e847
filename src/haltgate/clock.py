"""Clocks: where every breaker reads the time.

Sliding windows, cooldowns and backoff use :meth:`Clock.monotonic`; look-back in days and
trading-day boundaries use :meth:`Clock.now`. Tests, replay and demos inject
:class:`ManualClock` so that time moves only when they say so.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from .errors import InvalidInputError, InvalidTypeError
from .values import to_seconds

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of time: monotonic seconds and timezone-aware UTC wall time."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def now(self) -> datetime:
        """The current wall time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`datetime.now` in UTC."""

    __slots__ = ()

    # A class attribute bound to the builtin keeps the hot path one C call deep.
    monotonic = staticmethod(time.monotonic)

    def now(self) -> datetime:
        """The current wall time in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


def _aware_utc(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidTypeError(name, value, "must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(name, value, "must be timezone-aware (e.g. tzinfo=UTC)")
    return value.astimezone(UTC)


_MICROSECOND = timedelta(microseconds=1)
_ZERO_DELTA = timedelta(0)


class ManualClock:
    """A clock that moves only when told to; for tests, replay and demos.

    ``start`` is the initial wall time (timezone-aware); by default the current time.
    The monotonic reading starts at 0.0. Both readings move in whole microseconds (the
    resolution of ``datetime``), counted exactly, so a thousand ``advance(0.001)`` land on
    exactly 1.0 and window boundaries can be tested to the microsecond.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = datetime.now(UTC) if start is None else _aware_utc(start, "start")
        self._micros = 0  # exact monotonic reading; the float below is derived from it
        self._monotonic = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Seconds since the clock was made, moved only by :meth:`advance` and :meth:`set`."""
        return self._monotonic

    def now(self) -> datetime:
        """The simulated wall time in UTC."""
        return self._now

    def advance(self, seconds: float | int | str | Any) -> None:
        """Move both readings forward by ``seconds`` (``>= 0``)."""
        step = to_seconds(seconds, "seconds", allow_zero=True)
        with self._lock:
            try:
                delta = timedelta(seconds=step)
                moved = self._now + delta
            except OverflowError:
                # Past datetime's range: refuse without moving either reading.
                raise InvalidInputError(
                    "seconds", seconds, "moves the clock past the largest datetime"
                ) from None
            self._now = moved
            self._micros += delta // _MICROSECOND
            self._monotonic = self._micros / 1_000_000

    def set(self, dt: datetime) -> None:
        """Jump wall time to ``dt``; monotonic moves by the same amount but never backwards."""
        target = _aware_utc(dt, "dt")
        with self._lock:
            delta = target - self._now
            self._now = target
            if delta > _ZERO_DELTA:
                self._micros += delta // _MICROSECOND
                self._monotonic = self._micros / 1_000_000

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now.isoformat()}, monotonic={self._monotonic})"
