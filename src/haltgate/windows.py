"""Sliding windows over monotonic time, shared by every rate-like breaker.

Windows are half-open: an event at time ``t`` is counted while
``now - window_seconds < t <= now`` (exactly, to the microsecond). Memory stays bounded
however many events arrive: events at the same instant share one entry, and once a window
holds more events than ``compact_above`` nearby entries are merged onto the later time,
which can only keep an event counted a little longer (never shorter).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["RollingMax", "SlidingWindowCounter"]


def _micros(seconds: float) -> int:
    """Monotonic seconds as whole microseconds, so that window boundaries compare exactly
    (``10.005 + 20.0`` is ``30.005000000000003`` in floats)."""
    return round(seconds * 1_000_000)


class SlidingWindowCounter:
    """Counts events in the last ``window_seconds`` of monotonic time. Not thread-safe:
    the owning breaker holds its lock around every call.

    Times are given in float seconds and kept as whole microseconds, so the half-open
    boundary is exact to the microsecond whatever the float rounding.
    """

    __slots__ = (
        "_count",
        "_entries",
        "_resolution",
        "_window",
        "compact_above",
        "window_seconds",
    )

    def __init__(self, window_seconds: float, *, compact_above: int | None = None) -> None:
        self.window_seconds = float(window_seconds)
        # At least one microsecond: a shorter window could not count anything.
        self._window = max(1, _micros(self.window_seconds))
        self.compact_above = compact_above
        # 4096 entries per window at most once compaction is active.
        self._resolution = max(1, self._window // 4096)
        self._entries: deque[list[Any]] = deque()  # [t in microseconds, n, tag]
        self._count = 0

    def _expire(self, now: int) -> None:
        window = self._window
        entries = self._entries
        while entries and entries[0][0] + window <= now:
            self._count -= entries.popleft()[1]

    def count(self, now: float) -> int:
        """Events counted at ``now``."""
        # _micros inlined on the order hot path (one call less per order).
        self._expire(round(now * 1_000_000))
        return self._count

    def upper_bound(self) -> int:
        """Events recorded and not yet expired by a read: never below :meth:`count` at any
        later time, and free (no expiry work) — for skipping a check that cannot pass."""
        return self._count

    def add(self, now: float, n: int = 1, tag: Hashable = None) -> int:
        """Record ``n`` events at ``now``; returns the new count."""
        at = round(now * 1_000_000)  # _micros, inlined on the hot path
        self._expire(at)
        return self._append(at, n, tag)

    def _append(self, at: int, n: int, tag: Hashable) -> int:
        """:meth:`add` at ``at`` microseconds, the window already expired at ``at``."""
        entries = self._entries
        if entries:
            last = entries[-1]
            if last[2] == tag and (
                last[0] == at
                or (
                    self.compact_above is not None
                    and self._count >= self.compact_above
                    # Same grid cell only: merging whenever the previous (already moved)
                    # entry is near would chain a steady stream into one entry that never
                    # expires. Within a cell an event stays counted < resolution longer.
                    and at // self._resolution == last[0] // self._resolution
                )
            ):
                last[0] = max(last[0], at)
                last[1] += n
                self._count += n
                return self._count
        entries.append([at, n, tag])
        self._count += n
        return self._count

    def try_add(self, now: float, limit: int) -> bool:
        """Record one event only if fewer than ``limit`` are counted; atomic under the caller's
        lock."""
        return self.reserve_at(round(now * 1_000_000), limit)  # _micros, inlined

    def reserve_at(self, at: int, limit: int) -> bool:
        """:meth:`try_add` at ``at`` whole microseconds (``round(now * 1_000_000)``), for a
        caller that converted ``now`` once for several windows (the manager's admission)."""
        # One conversion and one expiry for both the check and the record (count() then
        # add() at the same instant did each twice; the result is the same).
        # _expire inlined: this runs for every admitted order in every window. An entry
        # at t has expired when t + window <= at, i.e. t <= at - window (whole numbers:
        # the same test, one subtraction per call instead of an addition per entry).
        entries = self._entries
        count = self._count
        if entries:
            horizon = at - self._window
            while entries[0][0] <= horizon:
                count -= entries.popleft()[1]
                if not entries:
                    break
            self._count = count
        if count >= limit:
            return False
        if entries and (entries[-1][0] == at or self.compact_above is not None):
            self._append(at, 1, None)  # may merge with the last entry
        else:
            # What _append does when nothing can merge (inlined for the same reason).
            entries.append([at, 1, None])
            self._count = count + 1
        return True

    def remove_latest(self, at: float) -> bool:
        """Undo one event recorded at ``at`` (a reservation rolled back)."""
        when = _micros(at)
        for entry in reversed(self._entries):
            if entry[0] == when:
                entry[1] -= 1
                self._count -= 1
                if entry[1] == 0:
                    self._entries.remove(entry)
                return True
        return False

    def frees_at(self, limit: int, now: float) -> float | None:
        """The monotonic time at which the count falls below ``limit`` if nothing is added,
        or ``None`` when it is already below."""
        self._expire(_micros(now))
        excess = self._count - limit + 1
        if excess <= 0:
            return None
        for t, n, _tag in self._entries:
            excess -= n
            if excess <= 0:
                return (int(t) + self._window) / 1_000_000
        return now  # pragma: no cover - counts are consistent

    def tags(self, now: float) -> dict[str, int]:
        """Counts per tag within the window."""
        self._expire(_micros(now))
        counter: Counter[str] = Counter()
        for _t, n, tag in self._entries:
            counter[str(tag)] += n
        return dict(counter)

    def clear(self) -> None:
        """Forget every event."""
        self._entries.clear()
        self._count = 0

    def __len__(self) -> int:
        return len(self._entries)


class RollingMax:
    """The highest value seen within a look-back of wall-clock seconds, in bounded memory.

    Values are kept as per-bucket maxima (``bucket_seconds`` wide) in a monotonic deque,
    so memory is bounded by the number of buckets in the look-back whatever the number of
    observations. A bucket counts while any part of it is inside the look-back, so the peak
    can only be remembered slightly longer, never forgotten early.
    """

    __slots__ = ("_buckets", "bucket_seconds", "lookback_seconds")

    def __init__(self, lookback_seconds: float, bucket_seconds: float = 60.0) -> None:
        self.lookback_seconds = float(lookback_seconds)
        self.bucket_seconds = float(bucket_seconds)
        self._buckets: deque[tuple[int, Decimal]] = deque()  # (bucket index, max), max falling

    def _expire(self, now: float) -> None:
        horizon = now - self.lookback_seconds
        size = self.bucket_seconds
        buckets = self._buckets
        while buckets and (buckets[0][0] + 1) * size <= horizon:
            buckets.popleft()

    def add(self, now: float, value: Decimal) -> Decimal:
        """Observe ``value`` at wall time ``now`` (epoch seconds); returns the peak."""
        self._expire(now)
        key = int(now // self.bucket_seconds)
        buckets = self._buckets
        if buckets and buckets[-1][0] >= key:
            # Same bucket (or a clock that stepped back): fold into the newest bucket.
            key = buckets[-1][0]
            value = max(value, buckets.pop()[1])
        while buckets and buckets[-1][1] <= value:
            buckets.pop()
        buckets.append((key, value))
        return buckets[0][1]

    def add_until(
        self,
        times: Sequence[float],
        values: Sequence[Decimal],
        start: int,
        stop: int,
        line_of: Callable[[Decimal], Decimal | None] | None,
    ) -> tuple[int, Decimal | None, bool]:
        """:meth:`add` each of ``values[start:stop]`` at ``times[...]`` in turn, stopping
        before the first row whose value is below ``line_of(peak)``, ``peak`` being what
        :meth:`add` would return for that row (the higher of :meth:`peak` just before it
        and its value). ``line_of`` ``None`` never stops; ``line_of(peak)`` ``None`` means
        no line at that peak.

        Returns ``(index of the first row not added, peak of the last row added or None,
        whether any added row was above the peak before it)``. The buckets end exactly as
        one :meth:`add` per row leaves them: the same expiry expression, the same fold into
        the newest bucket, the same pops, only without re-reading what cannot have changed
        (a row below its bucket's maximum leaves the buckets as they are)."""
        buckets = self._buckets
        size = self.bucket_seconds
        lookback = self.lookback_seconds
        inf = math.inf
        if buckets:
            front_key, front = buckets[0]
            front_edge = (front_key + 1) * size
            last_key, last_max = buckets[-1]
        else:
            front, front_edge, last_key, last_max = None, inf, None, None
        line_peak: Decimal | None = None
        line: Decimal | None = None
        last_peak: Decimal | None = None
        rose = False
        judged = line_of is not None
        for i in range(start, stop):
            ts = times[i]
            if front_edge <= ts - lookback:
                self._expire(ts)
                if buckets:
                    front_key, front = buckets[0]
                    front_edge = (front_key + 1) * size
                else:
                    front, front_edge, last_key, last_max = None, inf, None, None
            value = values[i]
            if front is None or value > front:
                peak = value
                rising = True
            else:
                peak = front
                rising = False
            if judged:
                if peak is not line_peak:
                    line = line_of(peak)  # type: ignore[misc]
                    line_peak = peak
                if line is not None and value < line:
                    return i, last_peak, rose
            last_peak = peak
            if rising:
                rose = True
            key = int(ts // size)
            if last_key is not None and last_key >= key:
                if value <= last_max:  # type: ignore[operator]
                    continue  # folded into the newest bucket, whose maximum stays
                key = last_key
                buckets.pop()
            while buckets and buckets[-1][1] <= value:
                buckets.pop()
            buckets.append((key, value))
            last_key, last_max = key, value
            if len(buckets) == 1:  # everything older was popped: a new front
                front, front_edge = value, (key + 1) * size
        return stop, last_peak, rose

    def peak(self, now: float) -> Decimal | None:
        """The highest value within the look-back at ``now``, or ``None``."""
        self._expire(now)
        return self._buckets[0][1] if self._buckets else None

    def restart(self, now: float, value: Decimal) -> None:
        """Forget the history; ``value`` becomes the only observation."""
        self._buckets.clear()
        self.add(now, value)

    def export(self) -> list[list[Any]]:
        """The buckets as JSON-friendly ``[index, "max"]`` pairs."""
        return [[k, str(v)] for k, v in self._buckets]

    def load(self, buckets: Iterable[Iterable[Any]]) -> None:
        """Replace the buckets with exported ones."""
        self._buckets.clear()
        for key, value in buckets:
            self._buckets.append((int(key), Decimal(value)))

    def __len__(self) -> int:
        return len(self._buckets)
