"""The manager's registry: which breakers it has, and what their contracts make of them."""

from __future__ import annotations

from typing import Any, cast

from ..breakers.base import BaseCircuitBreaker
from ..breakers.manual import ManualCircuitBreaker
from ..breakers.order_rate import OrderRateCircuitBreaker
from ..clock import Clock
from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    UnknownBreakerError,
)
from ..values import to_text
from .routing import ObservationRouter
from .state import ManagerState

__all__ = ["BreakerRegistry"]


class BreakerRegistry(ManagerState):
    """Adding, finding and removing breakers; the fast-path flags they clear."""

    # ------------------------------------------------------------------ breakers
    @property
    def store(self) -> Any:
        """The attached store, or ``None`` for in-memory state."""
        return self._store

    @property
    def clock(self) -> Clock:
        """The manager's clock."""
        return self._clock

    @property
    def clock_given(self) -> bool:
        """Whether this manager runs on a clock it was given (``clock=``, or one an engine
        shared with it) rather than on the default system clock. An engine keeps a given
        clock; otherwise historical bars drive it (``LiveTradingEngine._run_clock``)."""
        return self._clock_explicit

    def _share_clock(self, clock: Clock) -> None:
        """Run on ``clock`` from now on and hand it to every breaker (present or added later)
        that has no clock of its own; a breaker given its own clock keeps it. The engine's
        hook for its bar clock (the engine decides when; see ``LiveTradingEngine``)."""
        with self._lock:
            self._clock = clock
            self._clock_explicit = True
            self._monotonic = clock.monotonic
            for breaker in self._ordered:
                if not breaker._clock_explicit:
                    breaker._set_clock(clock)
            # Deadlines of the fast path were read on the old clock: ask again.
            self._changed(None)

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

    def _changed(self, breaker: BaseCircuitBreaker | None) -> None:
        with self._flag_lock:
            self._generation += 1
            self._quiet = False
            if breaker is None or not type(breaker).contract.admits_orders:
                self._others_generation += 1
                self._quiet_others = False
