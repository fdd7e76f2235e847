"""Rows too sparse for a breaker: a replay over them cannot show what the breaker would do.

Two cases, both silent in the events (the breaker just never trips):

* a drawdown breaker whose look-back is not longer than the median spacing of the rows
  compares each row with a peak that holds about that row and the one before it, so a
  fall spread over several rows (a slow crash, seen in monthly rows) never counts;
* a daily-loss breaker measures the loss from the first row of each session, so a session
  with a single row can never trip it; when at least half of the sessions hold one row
  (daily closes against a daily calendar), the loss from one day to the next is never seen.

The check reads only the row times and the breakers' own look-back and calendar; sessions
are told apart by :class:`~haltgate.calendars.SessionTracker`, the one place that decides
that a new session began.
"""

from __future__ import annotations

import statistics
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from ..breakers import BaseCircuitBreaker, DailyLossCircuitBreaker, DrawdownCircuitBreaker
from ..calendars import SessionTracker, TradingCalendar
from ..errors import HaltgateError
from .rows import Chunk, Row

__all__ = ["SparseRows", "median_spacing", "record_times", "sparse_rows"]

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class SparseRows:
    """One breaker the rows are too sparse for, and why (``message`` is for a person)."""

    breaker: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The JSON form: ``{"breaker", "message"}``."""
        return {"breaker": self.breaker, "message": self.message}


def record_times(rows: Iterable[Row], times: array[float] | list[float]) -> Iterator[Row]:
    """Pass ``rows`` through unchanged, appending each row's time (epoch seconds) to
    ``times`` (so the check needs no second read of the file)."""
    append = times.append
    for row in rows:
        append(row[2])
        yield row


def record_chunk_times(
    chunks: Iterable[Chunk], times: array[float] | list[float]
) -> Iterator[Chunk]:
    """Pass ``chunks`` (:func:`~haltgate.replay.rows.read_chunks`) through unchanged,
    appending their rows' times to ``times``, as :func:`record_times` does for rows."""
    extend = times.extend
    for chunk in chunks:
        extend(chunk.times)
        yield chunk


def median_spacing(times: Sequence[float]) -> float | None:
    """The median gap between consecutive row times in seconds (``None`` under two rows)."""
    if len(times) < 2:
        return None
    return float(
        statistics.median(b - a for a, b in zip(times, islice(times, 1, None), strict=False))
    )


def _session_sizes(times: Sequence[float], calendar: TradingCalendar) -> Iterator[int]:
    """The number of rows in each session that has rows, in order.

    Times are sorted and a session's start never decreases with time, so the end of each
    session is found by galloping then bisecting: O(log n) calendar reads per session, one
    when a session holds a single row.
    """
    tracker = SessionTracker(calendar)
    size = len(times)

    def later(index: int) -> bool:
        return tracker.new_session(datetime.fromtimestamp(times[index], UTC)) is not None

    i = 0
    while i < size:
        tracker.session = calendar.session_start(datetime.fromtimestamp(times[i], UTC))
        inside, step, probe = i, 1, i + 1
        while probe < size and not later(probe):
            inside, step = probe, step * 2
            probe = inside + step
        outside = min(probe, size)
        while outside - inside > 1:  # inside: same session; outside: later (or the end)
            middle = (inside + outside) // 2
            if later(middle):
                outside = middle
            else:
                inside = middle
        yield outside - i
        i = outside


def _days(seconds: float) -> str:
    days = seconds / _DAY
    if days >= 1:
        return f"{days:,.1f} days"
    return f"{seconds / 3600:,.1f} h"


def _wide_median(times: Sequence[float], threshold: float) -> float | None:
    """The median spacing if it is at or above ``threshold``, else ``None``.

    A median at or above the threshold needs at least half of the gaps there; that count is
    one pass, so the sort for the median runs only when a warning is likely (sparse rows,
    which are few)."""
    gaps = len(times) - 1
    if gaps < 1:
        return None
    pairs = zip(times, islice(times, 1, None), strict=False)
    wide = sum(1 for a, b in pairs if b - a >= threshold)
    if 2 * wide < gaps:
        return None
    spacing = median_spacing(times)
    return spacing if spacing is not None and spacing >= threshold else None


def sparse_rows(times: Sequence[float], breakers: Iterable[BaseCircuitBreaker]) -> list[SparseRows]:
    """The breakers that ``times`` (sorted row times, epoch seconds) are too sparse for."""
    found: list[SparseRows] = []
    for breaker in breakers:
        if isinstance(breaker, DrawdownCircuitBreaker):
            spacing = _wide_median(times, float(breaker.lookback_days) * _DAY)
            if spacing is not None:
                found.append(
                    SparseRows(
                        breaker.name,
                        f"rows too sparse for {breaker.name}: the median spacing of the rows "
                        f"({_days(spacing)}) is at or above its look-back "
                        f"(lookback_days={breaker.lookback_days}), so its peak holds about "
                        "one row and a fall spread over several rows never trips it; use "
                        "denser rows or a longer lookback_days",
                    )
                )
        elif isinstance(breaker, DailyLossCircuitBreaker) and len(times):
            calendar = breaker.calendar
            describe = getattr(calendar, "describe", None)
            name = describe() if callable(describe) else repr(calendar)
            try:
                sizes = list(_session_sizes(times, calendar))
            except HaltgateError as exc:
                # A calendar that cannot place a row (outside what it knows): say so
                # rather than fail the replay over a warning.
                found.append(
                    SparseRows(breaker.name, f"sessions of {breaker.name} not checked: {exc}")
                )
                continue
            single = sum(1 for n in sizes if n == 1)
            if 2 * single >= len(sizes):
                found.append(
                    SparseRows(
                        breaker.name,
                        f"rows too sparse for {breaker.name}: {single:,} of {len(sizes):,} "
                        f"sessions (calendar {name}) hold a single row, and a loss is "
                        "measured from the first row of its session, so on those sessions "
                        "it cannot trip; use intraday rows",
                    )
                )
    return found
