"""Admitting an order through the order windows, and logging refusals without flooding.

Both are parts of the manager's admission path (:meth:`CircuitBreakerManager.admit_order`)
kept apart from its registry, routing and status code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from ..breakers.order_rate import OrderRateCircuitBreaker
from ..errors import StoreUnavailableError
from ..events import BreakerEvent

__all__ = ["RefusalLog", "admit_to_windows"]

logger = logging.getLogger("haltgate.manager")


def admit_to_windows(
    rate: Sequence[OrderRateCircuitBreaker],
) -> OrderRateCircuitBreaker | None:
    """Record one order in every window of ``rate`` (sorted by name, so every caller takes
    the locks in one order), or in none; returns the breaker that refused it."""
    if len(rate) == 1:
        return None if rate[0].try_record_order() else rate[0]
    events: list[BreakerEvent] = []
    taken: list[tuple[OrderRateCircuitBreaker, object]] = []
    refused_by: OrderRateCircuitBreaker | None = None
    failure: StoreUnavailableError | None = None
    locks = [b._lock for b in rate]
    for lock in locks:
        lock.acquire()
    try:
        for breaker in rate:
            try:
                token = breaker._reserve_locked(events)
            except StoreUnavailableError as exc:
                failure, token = exc, None
            if token is None:
                refused_by = breaker
                break
            taken.append((breaker, token))
        if refused_by is not None:
            for breaker, token in taken:
                try:
                    breaker._cancel_locked(token)
                except StoreUnavailableError:
                    # The shared window keeps the slot until it ages out: safe side.
                    logger.warning("order_cancel_failed", extra={"breaker": breaker.name})
    finally:
        for lock in reversed(locks):
            lock.release()
    for breaker in rate:
        breaker._publish([e for e in events if e.breaker_name == breaker.name])
    if failure is not None:
        raise failure
    return refused_by


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
