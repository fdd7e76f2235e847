"""The call breaker's outcome window: calls and failures finished in the last N seconds.

Built on the shared :class:`~haltgate.windows.SlidingWindowCounter` (one for calls, one for
failures). To keep the success path cheap, outcomes that finish within ``resolution``
seconds of the first one of a group are tallied together and enter the counters as one
entry stamped with the group's latest time. An outcome can therefore stay counted up to
``resolution`` seconds longer than the window (never shorter); outcomes at the same instant
(a :class:`~haltgate.ManualClock` that does not move) are counted exactly. Memory stays
bounded: at most ``window / resolution`` entries per counter.

Not thread-safe: the owning breaker holds its lock around every call.
"""

from __future__ import annotations

from ..windows import SlidingWindowCounter

__all__ = ["OutcomeWindow"]

#: Groups per window: 60 s windows group outcomes over at most ~15 ms.
GROUPS_PER_WINDOW = 4096


class OutcomeWindow:
    """Counts finished calls and failures over the last ``window_seconds``."""

    __slots__ = (
        "_calls",
        "_failures",
        "group_calls",
        "group_failures",
        "group_first",
        "group_last",
        "last_stamp",
        "resolution",
    )

    def __init__(self, window_seconds: float) -> None:
        self._calls = SlidingWindowCounter(window_seconds)
        self._failures = SlidingWindowCounter(window_seconds)
        self.resolution = float(window_seconds) / GROUPS_PER_WINDOW
        # The open group (read and written inline by the breaker's success path).
        self.group_first = float("-inf")
        self.group_last = float("-inf")
        self.group_calls = 0
        self.group_failures = 0
        # Threads read the clock before taking the lock, so groups can close slightly out
        # of order; stamping with the running maximum keeps the counters sorted.
        self.last_stamp = float("-inf")

    def start_group(self, now: float, calls: int, failures: int) -> None:
        """Close the open group into the counters and open a new one at ``now``."""
        if self.group_calls:
            last = max(self.group_last, self.last_stamp)
            self.last_stamp = last
            self._calls.add(last, self.group_calls)
            if self.group_failures:
                self._failures.add(last, self.group_failures)
        self.group_first = now
        self.group_last = now
        self.group_calls = calls
        self.group_failures = failures

    def record(self, now: float, failed: bool) -> None:
        """Count one finished call (a failure when ``failed``) at ``now``."""
        if now - self.group_first <= self.resolution:
            if now > self.group_last:
                self.group_last = now
            self.group_calls += 1
            if failed:
                self.group_failures += 1
        else:
            self.start_group(now, 1, 1 if failed else 0)

    def calls_upper_bound(self) -> int:
        """At least the number of calls :meth:`counts` can report now or later (no expiry
        work): lets the breaker skip the rate check while too few calls were made."""
        return self._calls.upper_bound() + self.group_calls

    def counts(self, now: float) -> tuple[int, int]:
        """``(calls, failures)`` finished within the window at ``now``."""
        calls = self._calls.count(now)
        failures = self._failures.count(now)
        if self.group_calls and now - self._calls.window_seconds < self.group_last:
            calls += self.group_calls
            failures += self.group_failures
        return calls, failures

    def clear(self) -> None:
        """Forget every outcome."""
        self._calls.clear()
        self._failures.clear()
        self.group_first = float("-inf")
        self.group_last = float("-inf")
        self.group_calls = 0
        self.group_failures = 0
        self.last_stamp = float("-inf")
