"""Admitting an order through the order windows, and logging refusals without flooding.

Both are parts of the manager's admission path (:meth:`CircuitBreakerManager.admit_order`)
kept apart from its registry, routing and status code. The windows are the order-rate
breakers' and those of the windowed order checks (duplicates, message and execution
throttles): one order takes a slot in all of them or in none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Protocol, TypeVar

from ..breakers.order_rate import OrderRateCircuitBreaker
from ..checks.windows import KeyedWindow
from ..errors import StoreUnavailableError
from ..events import BreakerEvent
from ..orders import Order
from ..windows import SlidingWindowCounter

__all__ = [
    "CheckSlot",
    "RefusalLog",
    "SharedWindows",
    "WindowsRefusal",
    "admit_to_windows",
    "slot_key",
]

logger = logging.getLogger("haltgate.manager")


CheckSlot = tuple[
    KeyedWindow,
    int,
    "Callable[[Order | None], Hashable] | None",
    "Mapping[Hashable, SlidingWindowCounter] | None",
    Hashable,
]
"""A windowed check as the admission uses it: its window, its limit, its key function
(``None`` when the key does not depend on the order: then the last item is the key), and,
for a window in this process's memory (:class:`~haltgate.checks.windows.LocalKeyedWindow`),
its counters by key (``None`` for any other window)."""


def slot_key(slot: CheckSlot, order: Order | None) -> Hashable:
    """The key ``order`` counts under in the window of ``slot``."""
    key_of = slot[2]
    return slot[4] if key_of is None else key_of(order)


WindowsRefusal = tuple[OrderRateCircuitBreaker | None, int, int]
"""What :func:`admit_to_windows` says: the refusing rate breaker (or ``None``), the index of
the refusing check window (``-1``: none) and the count that check's window held."""

_ADMITTED: WindowsRefusal = (None, -1, 0)
_Answer = TypeVar("_Answer", WindowsRefusal, WindowsRefusal | None)


class SharedWindows(Protocol):
    """A store that keeps order windows for every process and admits an order through
    all of them in one call (Redis: ``store/redis_windows.py``)."""

    def reserve_windows(
        self,
        checks: Sequence[tuple[object, Hashable, int]],
        rate: Sequence[tuple[object, int]],
    ) -> tuple[int, int] | None:
        """One slot in every window or in none: ``checks`` are (check window, key, limit),
        ``rate`` (order-rate window, limit). ``(index, count)`` of the first full window in
        ``[*checks, *rate]``, ``(-1, 0)`` when admitted everywhere (each rate window's next
        ``reserve`` then returns its token without I/O), ``None`` when it cannot (a window
        that is not the store's, a store down with ``fail_open``): then admit window by
        window. Raises StoreUnavailableError when the store cannot be reached."""
        ...


def admit_to_windows(
    rate: Sequence[OrderRateCircuitBreaker],
    checks: Sequence[CheckSlot] = (),
    order: Order | None = None,
    checks_lock: threading.Lock | None = None,
    now: float = 0.0,
    shared: SharedWindows | None = None,
) -> WindowsRefusal:
    """Record one order in every window, or in none: the order-rate windows of ``rate``
    (sorted by name, so every caller takes the locks in one order) and the windows of the
    windowed checks (``checks``: each check's window, its limit and the function giving the
    order's key; all under ``checks_lock``, taken last, at the manager's monotonic
    ``now``). The check windows reserve first, then the rate windows; a refusal anywhere
    cancels every reservation made for this order in the same lock hold, so an order
    refused anywhere takes no slot in any window. Returns ``(refusing rate breaker or
    None, index of the refusing check or -1, that check's count)``.

    This is the one place where an order's windows are decided together. With a store
    that shares them (``shared``, Redis) every window is counted and recorded in one call
    to the store (one round trip, atomic across processes; see :func:`_admit_shared`).
    """
    if not checks:
        if not rate:
            return _ADMITTED
        if len(rate) == 1:
            return _ADMITTED if rate[0].try_record_order() else (rate[0], -1, 0)
    if shared is not None:
        admitted = _admit_shared(shared, rate, checks, order, checks_lock)
        if admitted is not None:
            return admitted
    events: list[BreakerEvent] = []
    failure: StoreUnavailableError | None = None
    refused: WindowsRefusal = _ADMITTED
    # No per-order lists on this path: the locks are taken in one order (rate breakers
    # sorted by name, then the check windows), and a rollback recomputes the keys.
    for breaker in rate:
        breaker._lock.acquire()
    if checks_lock is not None:
        checks_lock.acquire()
    taken = 0
    at = round(now * 1_000_000)  # the windows' whole microseconds, converted once
    try:
        for window, limit, key_of, counters, key in checks:
            if key_of is not None:
                key = key_of(order)
            # A key a local window already holds: reserve in its counter directly (what
            # window.reserve does for it, one call less per window); else ask the window.
            counter = None if counters is None else counters.get(key)
            if counter is not None:
                reserved = counter.reserve_at(at, limit)
            else:
                reserved = window.reserve(key, now, limit)
            if not reserved:
                refused = (None, taken, window.count(key, now))
                break
            taken += 1
        else:
            if len(rate) == 1:
                # _reserve_locked's one-breaker case, inlined (the usual setup).
                only = rate[0]
                try:
                    if only._reserve_locked(events) is None:
                        refused = (only, -1, 0)
                except StoreUnavailableError as exc:
                    refused, failure = (only, -1, 0), exc
            else:
                refused_by, failure = _reserve_locked(rate, events)
                if refused_by is not None:
                    refused = (refused_by, -1, 0)
        if taken and refused is not _ADMITTED:
            _cancel(checks, taken, order, now)
    except BaseException:
        # A check's key function (user code in a subclass) raised: the order is not
        # admitted, so the slots it already holds are given back before the locks are.
        _cancel(checks, taken, order, now)
        raise
    finally:
        if checks_lock is not None:
            checks_lock.release()
        for breaker in reversed(rate):
            breaker._lock.release()
    return _after_locks(rate, events, failure, refused)


def _after_locks(
    rate: Sequence[OrderRateCircuitBreaker],
    events: list[BreakerEvent],
    failure: StoreUnavailableError | None,
    refused: _Answer,
) -> _Answer:
    """What an admission does once every lock is released: publish the rate breakers'
    events (listeners are user code, never run under a lock), then raise what a breaker
    raised or answer."""
    if events:
        for breaker in rate:
            breaker._publish([e for e in events if e.breaker_name == breaker.name])
    if failure is not None:
        raise failure
    return refused


def _admit_shared(
    shared: SharedWindows,
    rate: Sequence[OrderRateCircuitBreaker],
    checks: Sequence[CheckSlot],
    order: Order | None,
    checks_lock: threading.Lock | None,
) -> WindowsRefusal | None:
    """:func:`admit_to_windows` with every window in ``shared``: the same steps, in one
    store call. Under the same locks: each rate breaker may clear a due trip, and a
    blocked one refuses the order without a round trip (before the check windows are
    asked, unlike the local path: a runaway loop against a tripped rate breaker costs
    Redis nothing, and an order that goes nowhere trips no execution throttle); the
    check windows' keys are
    worked out (a raising key function reserves nothing); then one call counts every
    window and records the order in all of them or none (nothing to give back); each rate
    breaker then takes its reservation's answer through its usual ``_reserve_locked``
    (which trips a full window and notifies on the last slot, as in memory). ``None``: the
    store cannot take them all in one call (take the window-by-window path)."""
    events: list[BreakerEvent] = []
    failure: StoreUnavailableError | None = None
    refused: WindowsRefusal | None = _ADMITTED
    locks: list[threading.RLock | threading.Lock] = [b._lock for b in rate]
    if checks:
        assert checks_lock is not None
        locks.append(checks_lock)
    for lock in locks:
        lock.acquire()
    try:
        for breaker in rate:
            if not breaker._admits_locked(events):
                refused = (breaker, -1, 0)
                break
        else:
            items = [(slot[0], slot_key(slot, order), slot[1]) for slot in checks]
            try:
                result = shared.reserve_windows(
                    items, [(b._rate, b.max_orders_per_minute) for b in rate]
                )
            except StoreUnavailableError as exc:
                failure, result = exc, (-1, 0)
            if result is None:
                refused = None  # the caller admits window by window
            elif failure is None:
                refused = _take_shared(rate, len(checks), *result, events)
    except BaseException:
        for breaker in rate:
            # A token no breaker took must not answer a later reserve().
            forget = getattr(breaker._rate, "forget_pending", None)
            if forget is not None:
                forget()
        raise
    finally:
        for lock in reversed(locks):
            lock.release()
    return _after_locks(rate, events, failure, refused)


def _take_shared(
    rate: Sequence[OrderRateCircuitBreaker],
    checks: int,
    index: int,
    count: int,
    events: list[BreakerEvent],
) -> WindowsRefusal:
    """What the store's one call said (``index`` of the first full window among the
    ``checks`` check windows and then the rate windows, -1: admitted), taken by each rate
    breaker through its usual ``_reserve_locked`` (locks held): the answer is pending in
    its window, so no I/O; a full rate window trips its breaker, as in memory."""
    if index >= checks:
        breaker = rate[index - checks]
        breaker._reserve_locked(events)  # its window answers "full": the breaker trips
        return (breaker, -1, 0)
    if index >= 0:
        return (None, index, count)
    refused = _ADMITTED
    for breaker in rate:
        # None cannot happen under the locks; if it did, the slots taken stay until they
        # age out (the safe side).
        if breaker._reserve_locked(events) is None:  # pragma: no cover
            refused = (breaker, -1, 0)
    return refused


def _cancel(checks: Sequence[CheckSlot], taken: int, order: Order | None, now: float) -> None:
    """Give back the slots the first ``taken`` check windows reserved for ``order``."""
    for slot in checks[:taken]:
        slot[0].cancel(slot_key(slot, order), now)


def _reserve_locked(
    rate: Sequence[OrderRateCircuitBreaker], events: list[BreakerEvent]
) -> tuple[OrderRateCircuitBreaker | None, StoreUnavailableError | None]:
    """One slot in every rate window (their locks held), or none: the refusing breaker and
    a store failure that refused it."""
    if len(rate) == 1:
        only = rate[0]
        try:
            return (None if only._reserve_locked(events) is not None else only), None
        except StoreUnavailableError as exc:
            return only, exc
    taken: list[tuple[OrderRateCircuitBreaker, object]] = []
    for breaker in rate:
        try:
            token = breaker._reserve_locked(events)
        except StoreUnavailableError as exc:
            failure: StoreUnavailableError | None = exc
            token = None
        else:
            failure = None
        if token is None:
            for taken_breaker, taken_token in taken:
                try:
                    taken_breaker._cancel_locked(taken_token)
                except StoreUnavailableError:
                    # The shared window keeps the slot until it ages out: safe side.
                    logger.warning("order_cancel_failed", extra={"breaker": taken_breaker.name})
            return breaker, failure
        taken.append((breaker, token))
    return None, None


class RefusalLog:
    """Logs ``order_refused``: the first refusal at once, then at most one line a second
    carrying how many were refused meanwhile (a runaway loop is refused thousands of times
    a second; listeners still receive every event)."""

    __slots__ = ("_lock", "_logged_at", "_unlogged")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logged_at = float("-inf")
        self._unlogged = 0

    def refused(self, reason: str, now: float) -> None:
        """One refusal at monotonic time ``now``."""
        with self._lock:
            if now - self._logged_at < 1.0:
                self._unlogged += 1
                return
            suppressed = self._unlogged
            self._unlogged = 0
            self._logged_at = now
        logger.warning(
            "order_refused", extra={"reason": reason, "refused_since_last_log": suppressed}
        )
