"""CircuitBreakerManager: asks every breaker, routes observations, gates orders.

With no observations, :meth:`CircuitBreakerManager.can_trade` is a pure state read: while
every breaker is NORMAL with room for another order, it answers from one flag that the
breakers clear whenever they change (no clock read, no lock, no I/O).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from .admission import RefusalLog, admit_to_windows
from .breakers.base import BaseCircuitBreaker
from .breakers.manual import ManualCircuitBreaker
from .breakers.order_rate import OrderRateCircuitBreaker
from .breakers.state import BLOCKING_STATES, CircuitBreakerState
from .clock import Clock, SystemClock
from .errors import (
    InvalidInputError,
    InvalidTypeError,
    StoreUnavailableError,
    UnknownBreakerError,
)
from .events import BreakerEvent, EventKind, Listener, ListenerSet
from .gate import guard
from .routing import ObservationRouter
from .values import to_text

__all__ = ["CircuitBreakerManager"]

logger = logging.getLogger("haltgate.manager")


def _checked_details(details: Any) -> Mapping[str, Any] | None:
    """Event details given by a caller: a mapping or None."""
    if details is not None and not isinstance(details, Mapping):
        raise InvalidTypeError("details", details, "must be a mapping (e.g. a dict) or None")
    return details


class CircuitBreakerManager:
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
        self._quiet_until = math.inf
        self._generation = 0
        # The same, for every breaker except the order windows: record_order() then goes
        # straight to the windows' own atomic check-and-record (a window that fills up
        # clears _quiet on every order, but not this).
        self._quiet_others = False
        self._others_generation = 0
        self._store = None
        # Manual breakers added because another process halted them (see _adopt_remote).
        self._adopted: set[str] = set()
        if store is not None:
            from .store import open_store

            self._store = open_store(store)
            # Fail-closed: the store tells us when it becomes unreachable or reachable
            # again, so the quiet fast path is dropped and can_trade() asks it.
            self._store.add_availability_watcher(self._store_changed)
            adopt = getattr(self._store, "add_remote_adopter", None)
            if adopt is not None:
                adopt(self._adopt_remote)
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

    # ------------------------------------------------------------------ breakers
    @property
    def store(self) -> Any:
        """The attached store, or ``None`` for in-memory state."""
        return self._store

    @property
    def clock(self) -> Clock:
        """The manager's clock."""
        return self._clock

    def add_breaker(self, breaker: BaseCircuitBreaker) -> None:
        """Add ``breaker``; a second breaker with the same name raises ``ValueError``."""
        if not isinstance(breaker, BaseCircuitBreaker):
            raise InvalidTypeError("breaker", breaker, "must be a BaseCircuitBreaker")
        with self._lock:
            if breaker.name in self._adopted:
                # The caller's own breaker replaces the stand-in; attach restores the halt.
                self.remove_breaker(breaker.name)
            if breaker.name in self._breakers:
                raise InvalidInputError(
                    "breaker", breaker.name, "a breaker with this name is already added"
                )
            if self._clock_explicit and not breaker._clock_explicit:
                breaker._set_clock(self._clock)
            if self._store is not None:
                self._store.attach(breaker)
            self._breakers[breaker.name] = breaker
            breaker._watchers = (*breaker._watchers, self._changed)
            breaker.add_listener(self._forward)
            self._rebuild()

    def _named(self, name: Any) -> BaseCircuitBreaker:
        """The breaker called ``name``; refuses a missing one naming the parameter."""
        key = to_text(name, "name")
        breaker = self._breakers.get(key)
        if breaker is None:
            raise UnknownBreakerError(
                "name", name, f"no breaker with this name (have {sorted(self._breakers)})"
            )
        return breaker

    def remove_breaker(self, name: str) -> BaseCircuitBreaker:
        """Remove and return the breaker called ``name`` (:class:`UnknownBreakerError`, a
        ``KeyError``, if absent)."""
        with self._lock:
            breaker = self._named(name)
            self._adopted.discard(breaker.name)
            del self._breakers[breaker.name]
            breaker._watchers = tuple(w for w in breaker._watchers if w != self._changed)
            breaker.remove_listener(self._forward)
            if self._store is not None:
                self._store.detach(breaker)
            self._rebuild()
            return breaker

    def get_breaker(self, name: str) -> BaseCircuitBreaker | None:
        """The breaker called ``name``, or ``None`` (a name that is not a string is refused
        with a typed error naming ``name``)."""
        return self._breakers.get(to_text(name, "name"))

    def get_all_breakers(self) -> list[BaseCircuitBreaker]:
        """Every breaker, in the order added."""
        return list(self._ordered)

    def __contains__(self, name: object) -> bool:
        return name in self._breakers

    def _rebuild(self) -> None:
        ordered = tuple(self._breakers.values())
        self._ordered = ordered
        self._router = ObservationRouter(ordered)
        # Sorted by name: every manager takes the windows' locks in the same order.
        self._rate_breakers = tuple(
            sorted(
                (
                    cast(OrderRateCircuitBreaker, b)
                    for b in ordered
                    if type(b).contract.admits_orders
                ),
                key=lambda b: b.name,
            )
        )
        self._error_breakers = tuple(b for b in ordered if type(b).contract.counts_errors)
        self._asked = tuple(b for b in ordered if type(b).contract.asked)
        self._timed = tuple(b for b in ordered if type(b).contract.trips_by_time)
        self._changed(None)

    def _store_changed(self) -> None:
        self._changed(None)

    def _adopt_remote(self, name: str, snapshot: Any) -> None:
        """Another process halted a manual breaker this manager does not have (an
        operator's kill switch): add it, restored from the store."""
        if snapshot.get("type") != "manual" or snapshot.get("state") == "NORMAL":
            return
        with self._lock:
            if name not in self._breakers:
                self.add_breaker(ManualCircuitBreaker(name=name))
                self._adopted.add(name)

    def _store_blocking(self) -> str | None:
        store = self._store
        return None if store is None else store.blocking_reason()

    def _changed(self, breaker: BaseCircuitBreaker | None) -> None:
        with self._flag_lock:
            self._generation += 1
            self._quiet = False
            if breaker is None or not type(breaker).contract.admits_orders:
                self._others_generation += 1
                self._quiet_others = False

    # ------------------------------------------------------------------ checks
    def can_trade(self, **observations: Any) -> bool:
        """Feed each breaker the observations its contract declares, then True only if no
        breaker is tripped, halted or full. Every breaker sees its observations even when
        another one already refuses. Without observations this is a pure state read
        (breakers whose ``can_trade`` is user code are still asked)."""
        if not observations and self._quiet:
            until = self._quiet_until
            if until == math.inf or self._clock.monotonic() < until:
                return True
        return self._evaluate(observations)

    def _evaluate(self, observations: dict[str, Any]) -> bool:
        generation = self._generation
        others_generation = self._others_generation
        routed = self._router.route(observations) if observations else []
        ok = others_ok = True
        may_be_quiet = not self._asked
        if self._store_blocking() is not None:
            ok = others_ok = may_be_quiet = False
        judged: set[str] = set()
        for breaker, given in routed:
            if not given:
                continue
            contract = type(breaker).contract
            if not contract.requires <= given.keys():
                continue
            judged.add(breaker.name)
            if not breaker.can_trade(**given):
                ok = False
                if not contract.admits_orders:
                    others_ok = False
        for breaker in self._ordered:
            if breaker.name in judged:
                continue
            contract = type(breaker).contract
            if contract.asked and not contract.requires:
                allowed = breaker.can_trade()
            else:
                allowed = not breaker._blocks()
            if not allowed:
                ok = False
                if not contract.admits_orders:
                    others_ok = False
        if may_be_quiet and others_ok:
            until = math.inf
            for breaker in self._timed:
                deadline = breaker.next_deadline()
                if deadline is not None and deadline < until:
                    until = deadline
            with self._flag_lock:
                if self._others_generation == others_generation:
                    self._quiet_until = until
                    self._quiet_others = True
                    if ok and self._generation == generation:
                        self._quiet = True
        return ok

    def accepts_observation(self, name: str) -> bool:
        """True if some breaker declares the observation ``name`` (so
        ``can_trade(**{name: value})`` would not be refused as unknown)."""
        return self._router.accepts(name)

    def any_tripped(self) -> bool:
        """True if any breaker is TRIPPED or MANUALLY_HALTED."""
        return any(b.is_tripped for b in self._ordered)

    def get_tripped(self) -> list[BaseCircuitBreaker]:
        """The breakers that are TRIPPED or MANUALLY_HALTED."""
        return [b for b in self._ordered if b.is_tripped]

    def get_trip_reasons(self) -> dict[str, str]:
        """``{name: reason}`` for every tripped or halted breaker."""
        reasons: dict[str, str] = {}
        for breaker in self._ordered:
            reason = breaker.get_trip_reason()
            if reason is not None:
                reasons[breaker.name] = reason
        return reasons

    def get_blocking_reasons(self) -> list[str]:
        """Why trading is refused now: ``"name: reason"`` per tripped breaker, and full
        order windows."""
        reasons = [f"{name}: {why}" for name, why in self.get_trip_reasons().items()]
        store_reason = self._store_blocking()
        if store_reason is not None:
            reasons.insert(0, store_reason)
        for breaker in self._rate_breakers:
            if not breaker.is_tripped and breaker._blocks():
                reasons.append(f"{breaker.name}: order window full")
        return reasons

    def get_status(self) -> dict[str, str]:
        """``{name: state value}``, e.g. ``{'drawdown': 'NORMAL', 'daily_loss': 'TRIPPED'}``."""
        return {b.name: b.state.value for b in self._ordered}

    def get_details(self) -> list[dict[str, Any]]:
        """Per breaker: name, type, state, reason, since and operator (for status views;
        the operator of the last change, so a reset shows who reset it)."""
        rows = []
        for breaker in self._ordered:
            state = breaker.state
            info = breaker._trip_info if state in BLOCKING_STATES else None
            rows.append(
                {
                    "name": breaker.name,
                    "type": breaker.breaker_type.value,
                    "state": state.value,
                    "reason": None if info is None else info.reason,
                    "since": breaker.since,
                    # After a reset no trip is left: the operator who reset it is shown.
                    "operator": breaker._last_by if info is None else info.operator,
                }
            )
        return rows

    # ------------------------------------------------------------------ orders and errors
    def record_order(self) -> bool:
        """Admit and record one order in every order-rate breaker, or refuse it.

        Atomic across the rate breakers: either every window records the order or none
        does. Refused too while any breaker blocks trading. A refusal emits an
        ``order_refused`` event.
        """
        return not self.admit_order()

    def admit_order(
        self, *, reduce_only: bool = False, details: Mapping[str, Any] | None = None
    ) -> list[str]:
        """Like :meth:`record_order`, but returns why the order was refused (empty list:
        admitted and recorded).

        ``reduce_only=True`` is for an order that only shrinks a position: trips of the risk
        breakers do not stop it, but a manual halt (the kill switch) and a full or tripped
        order window still do. ``details`` (e.g. the order's symbol and side) are added to
        the ``order_refused`` event.
        """
        # Strictly a bool: a truthy string such as "False" must not bypass the risk breakers.
        if type(reduce_only) is not bool:
            raise InvalidTypeError("reduce_only", reduce_only, "must be True or False")
        details = _checked_details(details)
        store_reason = self._store_blocking()
        if store_reason is not None:
            # Fail-closed: without the store no process can know about a kill switch.
            self._refuse(f"trading is blocked: {store_reason}", details, [store_reason])
            return [store_reason]
        if reduce_only:
            halted = [f"{b.name}: {b.get_trip_reason()}" for b in self._ordered if b.is_halted]
            if halted:
                self._refuse("trading is manually halted: " + "; ".join(halted), details, halted)
                return halted
        elif not self._others_quiet() and not self.can_trade():
            blocking = self.get_blocking_reasons() or ["trading is blocked"]
            self._refuse("trading is blocked: " + "; ".join(blocking), details, blocking)
            return blocking
        try:
            refused_by = self._admit_to_rate_windows()
        except StoreUnavailableError as exc:
            # A shared order window that cannot be reached admits nothing (fail-closed).
            reason = f"store: {exc}"
            self._refuse(f"trading is blocked: {exc}", details, [reason])
            return [reason]
        if refused_by is None:
            return []
        why = refused_by.get_trip_reason() or "order window full"
        self._refuse(
            f"order window of {refused_by.name} is full", details, [f"{refused_by.name}: {why}"]
        )
        return [f"{refused_by.name}: {why}"]

    def _others_quiet(self) -> bool:
        """Every breaker but the order windows is known to allow trading (fast path)."""
        if not self._quiet_others:
            return False
        until = self._quiet_until
        return until == math.inf or self._clock.monotonic() < until

    def _admit_to_rate_windows(self) -> OrderRateCircuitBreaker | None:
        """Record one order in every rate window, or none; returns the refusing breaker."""
        return admit_to_windows(self._rate_breakers)

    def try_record_order(self) -> bool:
        """Same as :meth:`record_order` (the atomic check-and-record)."""
        return self.record_order()

    def refuse_order(
        self,
        reason: str,
        *,
        blocking: list[str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Emit an ``order_refused`` event for an order refused outside :meth:`admit_order`
        (e.g. by an engine that is paused or only reduces positions)."""
        reason = to_text(reason, "reason")
        details = _checked_details(details)
        if blocking is not None and not (
            isinstance(blocking, list | tuple) and all(isinstance(b, str) for b in blocking)
        ):
            raise InvalidTypeError("blocking", blocking, "must be a list of strings")
        self._refuse(reason, details, blocking)

    def _refuse(
        self,
        reason: str,
        details: Mapping[str, Any] | None = None,
        blocking: list[str] | None = None,
    ) -> None:
        event = BreakerEvent(
            kind=EventKind.ORDER_REFUSED,
            breaker_name="manager",
            breaker_type=None,
            previous_state=None,
            state=None,
            reason=reason,
            timestamp=self._clock.now(),
            details={
                **(details or {}),
                "blocking": list(blocking) if blocking is not None else self.get_blocking_reasons(),
            },
        )
        self._log_refusal(reason)
        self._listeners.emit(event)

    def _log_refusal(self, reason: str) -> None:
        self._refusal_log.refused(reason, self._clock.monotonic())

    def record_error(self, error: Any = None, *, category: str | None = None) -> bool:
        """Record an error in every error-rate breaker; returns whether any counted it."""
        if category is not None:
            category = to_text(category, "category")
        counted = False
        for breaker in self._error_breakers:
            counted = bool(breaker.record_error(error, category=category)) or counted  # type: ignore[attr-defined]
        return counted

    # ------------------------------------------------------------------ operator actions
    def reset(self, name: str, operator: str | None = None, reason: str | None = None) -> None:
        """Reset the breaker called ``name`` (:class:`UnknownBreakerError`, a ``KeyError``,
        if absent)."""
        self._named(name).reset(operator=operator, reason=reason)

    def reset_all(self, operator: str | None = None, reason: str | None = None) -> None:
        """Reset every tripped or halted breaker (use with caution)."""
        if operator is not None:
            operator = to_text(operator, "operator")
        if reason is not None:
            reason = to_text(reason, "reason")
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

    def _forward(self, event: BreakerEvent) -> None:
        self._listeners.emit(event)

    # ------------------------------------------------------------------ integration
    def guard(self, submit: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap an order-submission function (sync or async) with the gate: see
        :mod:`haltgate.gate`."""
        return guard(self, submit)

    def close(self) -> None:
        """Close the attached store (stop its background threads)."""
        if self._store is not None:
            self._store.close()

    def __repr__(self) -> str:
        return f"<CircuitBreakerManager {self.get_status()}>"
