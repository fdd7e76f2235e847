"""Order-rate breaker: an admission limit of N orders in any sliding window."""

from __future__ import annotations

import math
from typing import Any, Protocol

from ..clock import Clock
from ..errors import InvalidTypeError
from ..events import BreakerEvent
from ..values import Number, to_count, to_seconds
from ..windows import SlidingWindowCounter
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import BLOCKING_STATES, CircuitBreakerType

__all__ = ["LocalRateWindow", "OrderRateCircuitBreaker", "RateWindow"]


class RateWindow(Protocol):
    """Where an order-rate breaker counts orders: in this process, or shared (Redis).

    Called with the breaker's lock held. ``reserve`` is an atomic check-and-record that
    returns a token (or ``None`` when full); ``cancel`` undoes a reservation.
    """

    def count(self) -> int:
        """Orders in the window now (a shared window may answer from its last reading)."""
        ...

    def record(self) -> int:
        """Record one order unconditionally; returns the new count."""
        ...

    def reserve(self, limit: int) -> object | None:
        """Record one order if fewer than ``limit`` are counted; a token, or ``None``."""
        ...

    def cancel(self, token: object) -> None:
        """Undo a reservation."""
        ...

    def frees_at(self, limit: int) -> float | None:
        """Monotonic time when one more order will fit, ``None`` if one fits now."""
        ...


# How much earlier than computed a deadline is reported: float seconds against the window's
# whole microseconds may differ in the last bit, and asking early is always exact.
_EARLY = 0.001

_RATE_WINDOW_METHODS = ("count", "record", "reserve", "cancel", "frees_at")


class LocalRateWindow:
    """A :class:`RateWindow` in this process's memory, on the breaker's clock."""

    __slots__ = ("_clock", "_counter")

    def __init__(self, window_seconds: float, clock: Clock, compact_above: int) -> None:
        self._counter = SlidingWindowCounter(window_seconds, compact_above=compact_above)
        self._clock = clock

    def count(self) -> int:
        return self._counter.count(self._clock.monotonic())

    def record(self) -> int:
        return self._counter.add(self._clock.monotonic())

    def reserve(self, limit: int) -> object | None:
        now = self._clock.monotonic()
        # try_add's conversion inlined (one call less on the order hot path).
        return now if self._counter.reserve_at(round(now * 1_000_000), limit) else None

    def cancel(self, token: object) -> None:
        if isinstance(token, float):
            self._counter.remove_latest(token)

    def frees_at(self, limit: int) -> float | None:
        return self._counter.frees_at(limit, self._clock.monotonic())

    def upper_bound(self) -> int:
        """Never below :meth:`count` now or later (no expiry work)."""
        return self._counter.upper_bound()

    def __len__(self) -> int:
        return len(self._counter)


class OrderRateCircuitBreaker(BaseCircuitBreaker):
    """Admits at most ``max_orders_per_minute`` orders in any ``window_seconds`` window.

    :meth:`can_trade` is True while one more order fits; on a full window it returns False
    and trips. :meth:`record_order` records a sent order (tripping if that goes over the
    limit); :meth:`try_record_order` is the atomic check-and-record. The trip clears by
    itself once orders age out (and ``cooldown_seconds`` after the trip have passed).
    """

    contract = BreakerContract(admits_orders=True, clears_by_time=True)

    def __init__(
        self,
        max_orders_per_minute: int,
        window_seconds: Number = 60,
        *,
        cooldown_seconds: Number = 0,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        limit = to_count(max_orders_per_minute, "max_orders_per_minute")
        window = to_seconds(window_seconds, "window_seconds")
        cooldown = to_seconds(cooldown_seconds, "cooldown_seconds", allow_zero=True)
        super().__init__(CircuitBreakerType.ORDER_RATE, name=name, clock=clock)
        self.max_orders_per_minute = limit
        self.window_seconds = window
        self.cooldown_seconds = cooldown
        self._rate: RateWindow = LocalRateWindow(window, self._clock, compact_above=limit)

    def use_window(self, window: RateWindow) -> None:
        """Count orders in ``window`` (e.g. one shared by many processes) from now on."""
        missing = [m for m in _RATE_WINDOW_METHODS if not callable(getattr(window, m, None))]
        if missing:
            raise InvalidTypeError("window", window, f"must be a RateWindow (lacks {missing})")
        with self._lock:
            self._rate = window

    def _set_clock(self, clock: Clock) -> None:
        self._clock = clock
        if isinstance(self._rate, LocalRateWindow):
            self._rate = LocalRateWindow(self.window_seconds, clock, self.max_orders_per_minute)

    # -------------------------------------------------------------- reading
    def get_order_count(self) -> int:
        """Orders within the window now."""
        with self._lock:
            return self._rate.count()

    def can_trade(self) -> bool:
        """True while one more order fits; a full window returns False and trips."""
        events: list[BreakerEvent] = []
        with self._lock:
            self._refresh_locked(events)
            if self._state in BLOCKING_STATES:
                ok = False
            elif self._rate.count() >= self.max_orders_per_minute:
                self._trip_full_locked(events)
                ok = False
            else:
                ok = True
        if events:
            self._publish(events)
        return ok

    def _blocks(self) -> bool:
        # Pure: a full window refuses at once; recording the trip is the refresh step's.
        if self.is_tripped:
            return True
        with self._lock:
            full = self._rate.count() >= self.max_orders_per_minute
        if full:
            self._schedule_refresh()
        return full

    def unchanged_by_time_until(self) -> float:
        """See :meth:`BaseCircuitBreaker.unchanged_by_time_until`. NORMAL with room in the
        window: time alone never trips it (orders only age out); a full window trips at the
        next read; a trip of its own clears once the cooldown has passed and the window has
        room (a little early, never late). A shared window, a halt or a trip from elsewhere:
        any read may change it."""
        if type(self).contract.asked:
            return -math.inf
        with self._lock:
            rate = self._rate
            if not isinstance(rate, LocalRateWindow) or self._halt is not None:
                return -math.inf
            condition = self._condition
            if condition is None:
                limit = self.max_orders_per_minute
                # The free bound first (no expiry work): orders only age out, so time
                # alone never fills a window with room; a full one trips at the next read.
                if rate.upper_bound() < limit or rate.count() < limit:
                    return math.inf
                return -math.inf
            if condition.restored or condition.origin != self._origin:
                return -math.inf
            frees = rate.frees_at(self.max_orders_per_minute)
            until = self._tripped_mono + self.cooldown_seconds
            if frees is not None and frees > until:
                until = frees
            return until - _EARLY

    # -------------------------------------------------------------- recording
    def record_order(self) -> bool:
        """Record an order that was sent; returns whether it was within the limit."""
        events: list[BreakerEvent] = []
        with self._lock:
            self._clear_if_due_locked(events)
            count = self._rate.record()
            within = count <= self.max_orders_per_minute
            if not within:
                self._trip_locked(
                    f"Order rate exceeded: {count} orders in the last "
                    f"{self.window_seconds:g}s (max {self.max_orders_per_minute})",
                    self._details(count),
                    events,
                )
            elif count == self.max_orders_per_minute:
                self._notify_full()
        if events:
            self._publish(events)
        return within

    def try_record_order(self) -> bool:
        """Atomically admit and record one order, or refuse it (tripping when full)."""
        events: list[BreakerEvent] = []
        with self._lock:
            admitted = self._reserve_locked(events) is not None
        if events:
            self._publish(events)
        return admitted

    def _reserve_locked(self, events: list[BreakerEvent]) -> object | None:
        self._clear_if_due_locked(events)
        if self._state in BLOCKING_STATES:
            return None
        token = self._rate.reserve(self.max_orders_per_minute)
        if token is None:
            self._trip_full_locked(events)
            return None
        if self._rate.count() >= self.max_orders_per_minute:
            self._notify_full()
        return token

    def _admits_locked(self, events: list[BreakerEvent]) -> bool:
        """The steps of :meth:`_reserve_locked` before its window (a due trip cleared;
        False while blocked), for an admission that reserves every window in one store
        call first (``manager/windows.py``) and then calls :meth:`_reserve_locked`."""
        self._clear_if_due_locked(events)
        return self._state not in BLOCKING_STATES

    def _cancel_locked(self, token: object) -> None:
        self._rate.cancel(token)
        self._notify_full()

    # -------------------------------------------------------------- state
    def _details(self, count: int) -> dict[str, Any]:
        return {
            "threshold": self.max_orders_per_minute,
            "observed": count,
            "window_seconds": self.window_seconds,
        }

    def _trip_full_locked(self, events: list[BreakerEvent]) -> None:
        count = self._rate.count()
        self._trip_locked(
            f"Order rate limit reached: {count} orders in the last {self.window_seconds:g}s "
            f"(max {self.max_orders_per_minute})",
            self._details(count),
            events,
        )

    def _notify_full(self) -> None:
        for watcher in self._watchers:
            watcher(self)

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        # The refresh step: a full window trips (reads already report it), a trip whose
        # orders aged out clears.
        if self._condition is None:
            if self._rate.count() >= self.max_orders_per_minute:
                self._trip_full_locked(events)
            return
        self._clear_if_due_locked(events)

    def _clear_if_due_locked(self, events: list[BreakerEvent]) -> None:
        if self._condition is None:
            return
        if self._clock.monotonic() - self._tripped_mono < self.cooldown_seconds:
            return
        count = self._rate.count()
        if count < self.max_orders_per_minute:
            self._clear_locked(
                "orders aged out of the window",
                {"cause": "orders_aged_out", "observed": count},
                events,
            )

    def _restore_hold_seconds(self) -> float:
        return max(self.window_seconds, self.cooldown_seconds)
