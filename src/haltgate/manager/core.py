"""CircuitBreakerManager: asks every breaker, routes observations, gates orders.

The manager is split by job: :mod:`.registry` (which breakers, what their contracts make
of them), :mod:`.routing` (observations to breakers), :mod:`.admission` and
:mod:`.windows` (orders through breakers and order windows), :mod:`.status` (pure reads).
This module joins them and holds the checks and the operator actions.

With no observations, :meth:`CircuitBreakerManager.can_trade` is a pure state read: while
every breaker is NORMAL with room for another order, it answers from one flag that the
breakers clear whenever they change, until the earliest time-driven deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..breakers.base import BaseCircuitBreaker
from ..breakers.manual import ManualCircuitBreaker
from ..breakers.order_rate import OrderRateCircuitBreaker
from ..breakers.state import CircuitBreakerState
from ..checks.context import OrderContext
from ..clock import Clock, SystemClock
from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    StoreUnavailableError,
)
from ..events import Listener, ListenerSet
from ..gate import guard
from ..orders import Order
from ..values import to_text
from .admission import OrderAdmission
from .registry import BreakerRegistry
from .routing import ObservationRouter
from .state import NEVER
from .windows import RefusalLog

__all__ = ["CircuitBreakerManager"]


class CircuitBreakerManager(BreakerRegistry, OrderAdmission):
    """Manages many breakers as one system (the guide's "coordinator").

    ``store`` (a store object or URL such as ``"sqlite:///haltgate.db"``) makes trips,
    halts and resets durable and shares them with other processes; the default keeps
    state in memory. ``clock`` is handed to every breaker added without a clock of its own.
    """

    def __init__(
        self,
        *,
        breakers: Iterable[BaseCircuitBreaker] = (),
        store: Any = None,
        clock: Clock | None = None,
    ) -> None:
        if clock is not None and not (hasattr(clock, "monotonic") and hasattr(clock, "now")):
            raise InvalidTypeError("clock", clock, "must have monotonic() and now()")
        try:
            initial = list(breakers)
        except TypeError:
            raise InvalidTypeError(
                "breakers", breakers, "must be an iterable of breakers"
            ) from None
        # Refuse a bad list before adding any: adding adopts clocks and attaches watchers.
        names: set[str] = set()
        for breaker in initial:
            if not isinstance(breaker, BaseCircuitBreaker):
                raise InvalidTypeError("breakers", breaker, "must be BaseCircuitBreaker objects")
            if breaker.name in names:
                raise InvalidInputError("breakers", breaker.name, "two breakers have this name")
            names.add(breaker.name)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._clock_explicit = clock is not None
        self._lock = threading.RLock()
        self._flag_lock = threading.Lock()
        self._breakers: dict[str, BaseCircuitBreaker] = {}
        self._ordered: tuple[BaseCircuitBreaker, ...] = ()
        # Replaced as a whole when breakers change, so a reader racing add/remove_breaker
        # always sees one consistent routing.
        self._router = ObservationRouter(())
        self._refusal_log = RefusalLog()
        self._init_checks()
        # From the contracts: order windows, error counters, breakers asked on every check.
        self._rate_breakers: tuple[OrderRateCircuitBreaker, ...] = ()
        self._error_breakers: tuple[BaseCircuitBreaker, ...] = ()
        self._asked: tuple[BaseCircuitBreaker, ...] = ()
        self._timed: tuple[BaseCircuitBreaker, ...] = ()
        self._listeners = ListenerSet()
        # Fast path: True only while every breaker is known to allow trading and nothing can
        # change that without a breaker notifying us (see _changed) before _quiet_until
        # (the earliest time at which time alone could trip a breaker; inf: never).
        self._quiet = False
        self._quiet_until = NEVER
        self._monotonic = self._clock.monotonic
        self._generation = 0
        # The same, for every breaker except the order windows: record_order() then goes
        # straight to the windows' own atomic check-and-record (a window that fills up
        # clears _quiet on every order, but not this).
        self._quiet_others = False
        self._others_generation = 0
        self._store = None
        self._shared_windows = None
        # Manual breakers added because another process halted them (see _adopt_remote).
        self._adopted: set[str] = set()
        if store is not None:
            from ..store import open_store

            self._store = open_store(store)
            if callable(getattr(self._store, "reserve_windows", None)):
                # Every shared window of an order in one call (manager/windows.py).
                self._shared_windows = self._store
            # Fail-closed: the store tells us when it becomes unreachable or reachable
            # again, so the quiet fast path is dropped and can_trade() asks it.
            self._store.add_availability_watcher(self._store_changed)
            adopt = getattr(self._store, "add_remote_adopter", None)
            if adopt is not None:
                adopt(self._adopt_remote)
            # The refusal counts go into this process's registry entry (SPEC §10: `haltgate
            # status` and `haltgate serve` read them there), written off the trading thread.
            registration = getattr(self._store, "registration", None)
            if registration is not None:
                registration.add_refusal_source(self._published_refusals)
                self._refusal_mark = registration.refused
        for breaker in initial:
            self.add_breaker(breaker)
        if self._store is not None and "manual" not in self._breakers:
            # A kill switch thrown before this process started still stops it.
            try:
                snapshot = self._store.load_snapshot("manual")
            except StoreUnavailableError:
                snapshot = None  # the store's watcher resyncs when it is back
            if snapshot is not None and snapshot.get("type") == "manual":
                self._adopt_remote("manual", snapshot)

    # ------------------------------------------------------------------ operator actions
    def reset(self, name: str, operator: str | None = None, reason: str | None = None) -> None:
        """Reset the breaker called ``name`` (:class:`UnknownBreakerError`, a ``KeyError``,
        if absent)."""
        self._named(name).reset(operator=operator, reason=reason)

    def reset_all(self, operator: str | None = None, reason: str | None = None) -> None:
        """Reset every tripped or halted breaker (use with caution). Without an
        ``operator`` nothing is reset while a breaker that only a named operator may reset
        (the execution throttle) is tripped."""
        if operator is not None:
            operator = to_text(operator, "operator")
        if reason is not None:
            reason = to_text(reason, "reason")
        if operator is None:
            needs = [
                b.name
                for b in self._ordered
                if type(b).contract.reset_needs_operator
                and b.state is not CircuitBreakerState.NORMAL
            ]
            if needs:
                raise InvalidTypeError(
                    "operator", None, f"{needs} may be reset only by a named operator"
                )
        for breaker in self._ordered:
            if breaker.state is not CircuitBreakerState.NORMAL:
                breaker.reset(operator=operator, reason=reason)

    def halt_all(self, reason: str, operator: str) -> BaseCircuitBreaker:
        """The global kill switch: halt the manual breaker named ``manual`` (added if there
        is none). Returns it."""
        reason = to_text(reason, "reason")
        operator = to_text(operator, "operator")
        with self._lock:
            breaker = self._breakers.get("manual")
            if breaker is None:
                breaker = ManualCircuitBreaker(name="manual")
                self.add_breaker(breaker)
        breaker.trigger_halt(reason=reason, operator=operator)
        return breaker

    # ------------------------------------------------------------------ events
    def add_listener(self, callback: Listener) -> None:
        """Receive every breaker's events, and the manager's ``order_refused`` events."""
        self._listeners.add(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop delivering events to ``callback``."""
        self._listeners.remove(callback)

    # ------------------------------------------------------------------ integration
    def guard(
        self,
        submit: Callable[..., Any],
        *,
        context: Callable[[Order], OrderContext] | None = None,
    ) -> Callable[..., Any]:
        """Wrap an order-submission function (sync or async) with the gate: see
        :mod:`haltgate.gate`. ``context`` maps the submitted :class:`~haltgate.engine.Order`
        to its :class:`~haltgate.OrderContext` for the pre-trade checks."""
        return guard(self, submit, context=context)

    def close(self) -> None:
        """Close the attached store (stop its background threads)."""
        if self._store is not None:
            self._store.close()

    def __repr__(self) -> str:
        return f"<CircuitBreakerManager {self.get_status()}>"
