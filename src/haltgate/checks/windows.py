"""Where a windowed check counts: one half-open sliding window per key (SPEC §2).

:class:`LocalKeyedWindow` keeps a :class:`~haltgate.windows.SlidingWindowCounter` per key
(symbol and side for the execution throttle; symbol, side, quantity and price for
duplicates; one key for the message throttle) on the manager's monotonic clock. It is not
thread-safe: the manager holds its check-window lock around every call, together with the
order-rate breakers' locks during an admission (``manager/windows.py``).

:class:`KeyedWindow` is the seam for a shared backend: a store (Redis) may give a check a
window of its own that counts in the same atomic script as the order-rate windows.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Protocol

from ..windows import SlidingWindowCounter

__all__ = ["KeyedWindow", "LocalKeyedWindow"]

_SWEEP_MIN = 64


class KeyedWindow(Protocol):
    """Events counted per key in a sliding window (called with the manager's check-window
    lock held; ``now`` is the manager's monotonic time, read once per admission; a shared
    window may count on its own clock instead)."""

    def reserve(self, key: Hashable, now: float, limit: int) -> bool:
        """Record one event under ``key`` if fewer than ``limit`` are counted; False
        (nothing recorded) when full."""
        ...

    def cancel(self, key: Hashable, now: float) -> None:
        """Undo the event :meth:`reserve` recorded under ``key`` at ``now`` in the same lock
        hold (another window refused the order)."""
        ...

    def count(self, key: Hashable, now: float) -> int:
        """Events under ``key`` in the window now."""
        ...

    def add(self, key: Hashable, now: float) -> int:
        """Record one event under ``key`` unconditionally; returns the new count."""
        ...

    def clear(self) -> None:
        """Forget every event (an operator reset of the execution throttle)."""
        ...


class LocalKeyedWindow:
    """A :class:`KeyedWindow` in this process's memory: one
    :class:`~haltgate.windows.SlidingWindowCounter` (the project's half-open window) per
    key.

    Memory stays bounded by the keys seen within one window: keys whose window emptied are
    dropped in a sweep whenever the number of keys doubled since the last one. A single-key
    window (the message throttle, counting cancels without limit) compacts its entries
    above ``compact_above`` like an order-rate window."""

    __slots__ = ("_compact_above", "_counters", "_sweep_at", "window_seconds")

    def __init__(self, window_seconds: float, *, compact_above: int | None = None) -> None:
        self.window_seconds = float(window_seconds)
        self._compact_above = compact_above
        self._counters: dict[Hashable, SlidingWindowCounter] = {}
        self._sweep_at = _SWEEP_MIN

    def _counter(self, key: Hashable, now: float) -> SlidingWindowCounter:
        counters = self._counters
        counter = counters.get(key)
        if counter is None:
            if len(counters) >= self._sweep_at:
                self._sweep(now)
            counter = counters[key] = SlidingWindowCounter(
                self.window_seconds, compact_above=self._compact_above
            )
        return counter

    def reserve(self, key: Hashable, now: float, limit: int) -> bool:
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counter(key, now)
        return counter.try_add(now, limit)

    @property
    def counters(self) -> Mapping[Hashable, SlidingWindowCounter]:
        """The counter of each key, read-only: the manager's admission reserves in a key's
        existing counter directly (``counters[key].reserve_at(at, limit)`` is what
        :meth:`reserve` does for a key already held, with ``now`` converted once per
        order for every window) and calls :meth:`reserve` for a new key."""
        return self._counters

    def cancel(self, key: Hashable, now: float) -> None:
        counter = self._counters.get(key)
        if counter is not None:
            counter.remove_latest(now)

    def count(self, key: Hashable, now: float) -> int:
        counter = self._counters.get(key)
        return 0 if counter is None else counter.count(now)

    def add(self, key: Hashable, now: float) -> int:
        return self._counter(key, now).add(now)

    def _sweep(self, now: float) -> None:
        counters = self._counters
        for key in [k for k, c in counters.items() if c.count(now) == 0]:
            del counters[key]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(counters))

    def clear(self) -> None:
        self._counters.clear()
        self._sweep_at = _SWEEP_MIN

    def __len__(self) -> int:
        """Keys held (for tests of the memory bound)."""
        return len(self._counters)
