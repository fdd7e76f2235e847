"""The one executor of breaker state changes: lock held → decide → persist → publish.

:class:`StateExecutor` is the part of :class:`~haltgate.BaseCircuitBreaker` that moves a
breaker between its layers (see :mod:`haltgate.breakers.base`). The durability policy lives
here and nowhere else:

* a **restrictive** change (a trip or a halt; nothing lifted) is applied in memory first
  and never undone: a store failure is logged and the store retries it (and refuses
  trading meanwhile);
* a **permissive** change (a reset or a self-clear; something lifted) is written first, as
  the explicit next snapshot, and applied only once the store has it. A re-baseline that
  came with it is undone from a memento when the store refuses.

Events are collected under the lock and published by the caller after releasing it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ..clock import Clock
from ..errors import StoreUnavailableError
from ..events import BreakerEvent, EventKind, ListenerSet
from .snapshot import LOCAL_ORIGIN, BreakerSink, TripInfo, build_snapshot, view_of
from .state import CircuitBreakerState, CircuitBreakerType

if TYPE_CHECKING:
    from .base import BaseCircuitBreaker

__all__ = ["StateExecutor"]

logger = logging.getLogger("haltgate.breakers")

NORMAL = CircuitBreakerState.NORMAL
RESETTING = CircuitBreakerState.RESETTING

_LOG_NAMES = {
    EventKind.TRIPPED: "circuit_breaker_tripped",
    EventKind.HALTED: "circuit_breaker_halted",
    EventKind.RESET: "circuit_breaker_reset",
    EventKind.WARNING: "circuit_breaker_warning",
    EventKind.ORDER_REFUSED: "order_refused",
}
_LOG_LEVELS = {
    EventKind.TRIPPED: logging.ERROR,
    EventKind.HALTED: logging.CRITICAL,
    EventKind.RESET: logging.WARNING,
    EventKind.WARNING: logging.WARNING,
    EventKind.ORDER_REFUSED: logging.WARNING,
}


class StateExecutor:
    """The layers of a breaker and the one way they change (a base of BaseCircuitBreaker)."""

    name: str
    breaker_type: CircuitBreakerType
    _clock: Clock
    _lock: threading.RLock
    _halt: TripInfo | None
    _condition: TripInfo | None
    _state: CircuitBreakerState
    _trip_info: TripInfo | None
    _since: datetime | None
    _last_change: str | None
    _last_by: str | None
    _sink: BreakerSink | None
    _listeners: ListenerSet
    _watchers: tuple[Callable[[BaseCircuitBreaker], None], ...]

    @property
    def _as_breaker(self) -> BaseCircuitBreaker:
        return cast("BaseCircuitBreaker", self)

    @property
    def _origin(self) -> str:
        sink = self._sink
        return LOCAL_ORIGIN if sink is None else sink.origin

    # Hooks of BaseCircuitBreaker that a change may run.
    def _on_reset(self) -> None:
        """Re-baseline on a reset (see BaseCircuitBreaker)."""

    def _export_data(self) -> dict[str, Any]:
        """Breaker-specific state to persist."""
        return {}

    def _memento(self) -> Any:
        """Everything :meth:`_on_reset` may change (see BaseCircuitBreaker)."""
        return None

    def _restore_memento(self, memento: Any) -> None:
        """Undo :meth:`_on_reset` (see BaseCircuitBreaker)."""

    def _execute_locked(
        self,
        kind: EventKind,
        halt: TripInfo | None,
        condition: TripInfo | None,
        change: str,
        reason: str | None,
        operator: str | None,
        events: list[BreakerEvent],
        details: dict[str, Any],
    ) -> bool:
        """Move to ``(halt, condition)``: the one place a state change is made durable.

        Restrictive (nothing lifted): applied in memory, then written; a store failure is
        logged and retried by the store, never undone. Permissive (something lifted): the
        explicit next snapshot is written first; the change is applied only once the store
        has it (returns False, changing nothing, when it does not)."""
        previous = self._state
        new_state = view_of(halt, condition)
        now = self._clock.now()
        permissive = (self._halt is not None and halt is None) or (
            self._condition is not None and condition is None
        )
        if permissive:
            added = [
                self._event(kind, previous, RESETTING, reason, details, operator, now),
                self._event(kind, RESETTING, new_state, reason, details, operator, now),
            ]
            snapshot = self._snapshot(halt, condition, now, change, operator)
            sink = self._sink
            if sink is not None:
                sink.save(self._as_breaker, added, snapshot)
            self._apply(halt, condition, now, change, operator)
            events.extend(added)
            return True
        self._apply(halt, condition, now, change, operator)
        added = [self._event(kind, previous, new_state, reason, details, operator, now)]
        events.extend(added)
        sink = self._sink
        if sink is not None:
            try:
                sink.save(
                    self._as_breaker,
                    added,
                    self._snapshot(halt, condition, now, change, operator),
                )
            except StoreUnavailableError:
                logger.critical(
                    "store_write_failed", extra={"breaker": self.name, "state": new_state.value}
                )
        return True

    def _lift_locked(
        self,
        *,
        lift_halt: bool,
        lift_condition: bool,
        cause: str,
        reason: str,
        details: dict[str, Any],
        operator: str | None,
        rebaseline: bool,
        events: list[BreakerEvent],
        raise_on_store: bool = True,
    ) -> bool:
        """Lift the halt and/or the trip through the executor (permissive: written first).
        ``rebaseline`` runs :meth:`_on_reset` into the written snapshot, undone if the store
        refuses. Raises StoreUnavailableError for an operator's reset; a self-clear the
        store refuses returns False."""
        was = self._halt if lift_halt else self._condition
        if was is not None:
            details = {**details, "cleared_reason": was.reason}
            if lift_condition and self._condition is not None:
                details["cleared_origin"] = self._condition.origin
        memento = self._memento() if rebaseline else None
        if rebaseline:
            self._on_reset()
        try:
            self._execute_locked(
                EventKind.RESET,
                None if lift_halt else self._halt,
                None if lift_condition else self._condition,
                cause,
                reason,
                operator,
                events,
                details,
            )
        except StoreUnavailableError:
            if rebaseline:
                self._restore_memento(memento)
            if raise_on_store and cause != "self_clear":
                raise
            return False
        return True

    def _apply(
        self,
        halt: TripInfo | None,
        condition: TripInfo | None,
        now: datetime,
        change: str | None = None,
        by: str | None = None,
    ) -> None:
        if change is not None:
            self._last_change = change
            self._last_by = by
        self._halt = halt
        self._condition = condition
        self._sync_view(now)

    def _sync_view(self, now: datetime | None) -> None:
        """Derive what lock-free readers see from the two layers, and tell the watchers."""
        halt, condition = self._halt, self._condition
        self._trip_info = halt or condition
        state = view_of(halt, condition)
        if state is not self._state and now is not None:
            self._since = now
        self._state = state
        for watcher in self._watchers:
            watcher(self._as_breaker)

    def _event(
        self,
        kind: EventKind,
        previous: CircuitBreakerState,
        state: CircuitBreakerState,
        reason: str | None,
        details: dict[str, Any],
        operator: str | None,
        now: datetime,
    ) -> BreakerEvent:
        return BreakerEvent(
            kind=kind,
            breaker_name=self.name,
            breaker_type=self.breaker_type,
            previous_state=previous,
            state=state,
            reason=reason,
            timestamp=now,
            details=details,
            operator=operator,
        )

    def _persist_soft(self) -> None:
        sink = self._sink
        if sink is not None:
            sink.save_soft(self._as_breaker)

    def _publish(self, events: list[BreakerEvent]) -> None:
        for event in events:
            if event.state is not RESETTING or event.kind is not EventKind.RESET:
                logger.log(
                    _LOG_LEVELS[event.kind],
                    _LOG_NAMES[event.kind],
                    extra={
                        "breaker": event.breaker_name,
                        "breaker_type": event.breaker_type.value,
                        "state": event.state.value,
                        "reason": event.reason,
                        "operator": event.operator,
                    },
                )
            self._listeners.emit(event)

    def _snapshot(
        self,
        halt: TripInfo | None,
        condition: TripInfo | None,
        since: datetime | None,
        change: str | None,
        by: str | None = None,
    ) -> dict[str, Any]:
        return build_snapshot(
            name=self.name,
            breaker_type=self.breaker_type.value,
            halt=halt,
            condition=condition,
            since=since,
            change=change,
            origin=self._origin,
            data=self._export_data(),
            by=by,
        )
