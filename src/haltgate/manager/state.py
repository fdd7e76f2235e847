"""The manager's shared fields, declared once for its parts (registry, status, admission)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..breakers.base import BaseCircuitBreaker
from ..breakers.order_rate import OrderRateCircuitBreaker
from ..clock import Clock
from ..events import BreakerEvent, ListenerSet
from .routing import ObservationRouter
from .windows import RefusalLog

__all__ = ["NEVER", "ManagerState"]

NEVER = float("inf")
"""``_quiet_until`` when no breaker can trip by time: compared by identity on the fast path
(no clock read at all)."""


class ManagerState:
    """The fields every part of the manager shares (set by CircuitBreakerManager.__init__)."""

    _clock: Clock
    _clock_explicit: bool
    _lock: threading.RLock
    _flag_lock: threading.Lock
    _breakers: dict[str, BaseCircuitBreaker]
    _ordered: tuple[BaseCircuitBreaker, ...]
    _router: ObservationRouter
    _rate_breakers: tuple[OrderRateCircuitBreaker, ...]
    _error_breakers: tuple[BaseCircuitBreaker, ...]
    _asked: tuple[BaseCircuitBreaker, ...]
    _timed: tuple[BaseCircuitBreaker, ...]
    _listeners: ListenerSet
    _quiet: bool
    _quiet_until: float
    _monotonic: Callable[[], float]
    _generation: int
    _quiet_others: bool
    _others_generation: int
    _store: Any
    # The store when it admits an order through every shared window in one call (Redis).
    _shared_windows: Any
    _adopted: set[str]
    _refusal_log: RefusalLog

    def _store_blocking(self) -> str | None:
        """Why the store refuses trading (fail-closed), or ``None``."""
        store = self._store
        return None if store is None else store.blocking_reason()

    def _forward(self, event: BreakerEvent) -> None:
        """Hand a breaker's event to the manager's listeners."""
        self._listeners.emit(event)
