"""The base of every trading breaker: one state machine, one lock, one event path.

Subclasses decide *when* to trip; this class owns *how*: state changes happen under the
breaker's lock, become durable through the attached store (if any) before the call returns,
and are published to listeners after the lock is released.

Restrictive changes (trip, halt) are applied in memory first and never undone, even when
the store fails. Permissive changes (reset, self-clearing) are written to the store first
and rolled back if that fails, so a breaker is never less restrictive than its store says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol

from ..clock import Clock, SystemClock
from ..errors import InvalidTypeError, StoreUnavailableError
from ..events import BreakerEvent, EventKind, Listener, ListenerSet
from ..values import to_text
from .state import BLOCKING_STATES, CircuitBreakerState, CircuitBreakerType

__all__ = ["BaseCircuitBreaker", "BreakerSink", "TripInfo"]

logger = logging.getLogger("haltgate.breakers")

NORMAL = CircuitBreakerState.NORMAL
TRIPPED = CircuitBreakerState.TRIPPED
HALTED = CircuitBreakerState.MANUALLY_HALTED
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


class BreakerSink(Protocol):
    """Where a breaker makes its state durable (implemented by the stores)."""

    def save(self, breaker: BaseCircuitBreaker, events: list[BreakerEvent]) -> None:
        """Write the breaker's snapshot and audit ``events`` atomically, or raise
        :class:`~haltgate.StoreUnavailableError`."""
        ...

    def save_soft(self, breaker: BaseCircuitBreaker) -> None:
        """Write non-audited progress (peak window, baseline); never raises."""
        ...


class TripInfo:
    """Why a breaker is tripped or halted: reason, details, operator, when."""

    __slots__ = ("at", "details", "operator", "reason")

    def __init__(
        self, reason: str, details: dict[str, Any], operator: str | None, at: datetime
    ) -> None:
        self.reason = reason
        self.details = details
        self.operator = operator
        self.at = at


class BaseCircuitBreaker:
    """Extension point for trading breakers.

    A subclass decides in its own ``can_trade(...)`` and calls :meth:`_trip`. ``_trip`` is
    idempotent while tripped (the first reason is kept) and never overrides a manual halt.
    Every breaker can be halted by hand (:meth:`trigger_halt`) and reset (:meth:`reset`).
    Safe to use from many threads and from asyncio.
    """

    #: State may change with time alone while NORMAL (e.g. a heartbeat timeout).
    _time_sensitive: ClassVar[bool] = False
    #: Refresh whatever the state (e.g. sessions that roll by wall time).
    _refresh_always: bool = False
    #: Set per class: the class has time-driven logic in ``_refresh_locked``.
    _has_refresh: ClassVar[bool] = False
    #: ``can_trade()`` of this class is a pure state read when given no observations.
    _pure_state_read: ClassVar[bool] = False
    #: How ``can_trade`` validates each observation keyword (``converter(value, name)``),
    #: so the manager can refuse a bad observation before any breaker sees the others.
    _observations: ClassVar[Mapping[str, Callable[[Any, str], Any]]] = {}
    #: Whether clearing by itself also runs :meth:`_on_reset` (the re-baseline of a reset by
    #: hand). False where that would forget what is still measured, e.g. the errors still in
    #: an error-rate window (the next error could then never trip it again).
    _rebaseline_on_self_clear: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._has_refresh = cls._refresh_locked is not BaseCircuitBreaker._refresh_locked

    def __init__(
        self,
        breaker_type: CircuitBreakerType | str = CircuitBreakerType.CUSTOM,
        *,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        try:
            self.breaker_type = CircuitBreakerType(breaker_type)
        except ValueError:
            raise InvalidTypeError(
                "breaker_type", breaker_type, "must be a CircuitBreakerType"
            ) from None
        self.name: str = self.breaker_type.value if name is None else to_text(name, "name")
        if clock is not None and not (hasattr(clock, "monotonic") and hasattr(clock, "now")):
            raise InvalidTypeError("clock", clock, "must have monotonic() and now()")
        self._clock_explicit = clock is not None
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.RLock()
        self._state = NORMAL
        self._trip_info: TripInfo | None = None
        self._since: datetime | None = None
        self._listeners = ListenerSet()
        self._watchers: tuple[Callable[[BaseCircuitBreaker], None], ...] = ()
        self._sink: BreakerSink | None = None
        # A self-clearing trip restored from a store is held until this monotonic time.
        self._hold_until = 0.0
        # Set while a reset is being written to the store (see _reset_locked).
        self._pending_reset: datetime | None = None
        self._tripped_mono = 0.0

    def _set_clock(self, clock: Clock) -> None:
        """Adopt ``clock`` (the manager's, when this breaker was made without one)."""
        self._clock = clock

    # ------------------------------------------------------------------ reading
    @property
    def clock(self) -> Clock:
        """The clock this breaker reads."""
        return self._clock

    @property
    def state(self) -> CircuitBreakerState:
        """The current state (self-clearing breakers re-check their condition first)."""
        self._refresh()
        return self._state

    @property
    def is_tripped(self) -> bool:
        """True when TRIPPED or MANUALLY_HALTED."""
        self._refresh()
        return self._state in BLOCKING_STATES

    @property
    def since(self) -> datetime | None:
        """When the current state began (UTC), or ``None`` if it never changed."""
        return self._since

    def can_trade(self) -> bool:
        """True unless tripped or halted. Subclasses take observations here."""
        return not self.is_tripped

    def get_trip_reason(self) -> str | None:
        """Why the breaker is tripped or halted, or ``None`` when it is not."""
        self._refresh()
        info = self._trip_info
        return info.reason if info is not None and self._state in BLOCKING_STATES else None

    def get_trip_details(self) -> dict[str, Any]:
        """Threshold, observed value, time and operator of the current trip or halt.

        Empty when the breaker is not tripped."""
        self._refresh()
        with self._lock:
            info = self._trip_info
            if info is None or self._state not in BLOCKING_STATES:
                return {}
            details = dict(info.details)
            details.setdefault("reason", info.reason)
            details["tripped_at"] = info.at
            details["operator"] = info.operator
            details["state"] = self._state.value
            return details

    def _blocks(self) -> bool:
        """Would this breaker refuse an order right now (without new observations)?"""
        return self.is_tripped

    # ------------------------------------------------------------------ operator actions
    def trigger_halt(self, reason: str, operator: str) -> None:
        """Halt trading by hand (→ MANUALLY_HALTED) until :meth:`reset`."""
        reason = to_text(reason, "reason")
        operator = to_text(operator, "operator")
        events: list[BreakerEvent] = []
        with self._lock:
            self._refresh_locked(events)
            if self._state == HALTED:
                self._publish(events)
                return
            previous = self._trip_info.reason if self._trip_info is not None else None
            details: dict[str, Any] = {}
            if self._state == TRIPPED and previous:
                details["previous_reason"] = previous
            self._set(HALTED, EventKind.HALTED, reason, details, operator, events)
            self._persist(events, permissive=False)
        self._publish(events)

    def reset(self, operator: str | None = None, reason: str | None = None) -> None:
        """Return to NORMAL (listeners see → RESETTING → NORMAL).

        A reset of a NORMAL breaker does nothing. Raises
        :class:`~haltgate.StoreUnavailableError` (and changes nothing) when the attached
        store cannot record it.
        """
        if operator is not None:
            operator = to_text(operator, "operator")
        if reason is not None:
            reason = to_text(reason, "reason")
        events: list[BreakerEvent] = []
        with self._lock:
            self._refresh_locked(events)
            if self._state == NORMAL:
                self._publish(events)
                return
            why = reason or "manual reset"
            self._reset_locked(why, {"cause": "manual"}, operator, events, raise_on_store=True)
        self._publish(events)

    # ------------------------------------------------------------------ listeners
    def add_listener(self, callback: Listener) -> None:
        """Receive this breaker's :class:`~haltgate.BreakerEvent` s (sync or async)."""
        self._listeners.add(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop delivering events to ``callback``."""
        self._listeners.remove(callback)

    # ------------------------------------------------------------------ for subclasses
    def _trip(self, reason: str, details: Mapping[str, Any] | None = None) -> bool:
        """Trip (NORMAL → TRIPPED). Returns False, changing nothing, when already tripped
        or halted: the first reason is kept and a manual halt is never overridden."""
        events: list[BreakerEvent] = []
        with self._lock:
            tripped = self._trip_locked(reason, details, events)
        self._publish(events)
        return tripped

    def _trip_locked(
        self, reason: str, details: Mapping[str, Any] | None, events: list[BreakerEvent]
    ) -> bool:
        """:meth:`_trip` for code that already holds the lock; publish ``events`` after."""
        if self._state != NORMAL:
            return False
        self._set(TRIPPED, EventKind.TRIPPED, str(reason), dict(details or {}), None, events)
        self._tripped_mono = self._clock.monotonic()
        self._persist(events, permissive=False)
        return True

    def _clear_locked(
        self, cause: str, details: Mapping[str, Any] | None, events: list[BreakerEvent]
    ) -> bool:
        """Self-clear a trip (TRIPPED → RESETTING → NORMAL) with the lock held; manual halts
        stay. Returns whether it cleared (a store that cannot record it keeps the trip)."""
        if self._state != TRIPPED or self._clock.monotonic() < self._hold_until:
            return False
        info = dict(details or {})
        info.setdefault("cause", "condition_cleared")
        return self._reset_locked(
            cause,
            info,
            None,
            events,
            raise_on_store=False,
            rebaseline=type(self)._rebaseline_on_self_clear,
        )

    def _warn(self, reason: str, details: Mapping[str, Any] | None = None) -> None:
        """Publish a warning event (no state change)."""
        self._emit_only(EventKind.WARNING, reason, details)

    def _refused(self, reason: str, details: Mapping[str, Any] | None = None) -> None:
        """Publish an ``order_refused`` event (no state change)."""
        self._emit_only(EventKind.ORDER_REFUSED, reason, details)

    def _emit_only(self, kind: EventKind, reason: str, details: Mapping[str, Any] | None) -> None:
        state = self._state
        event = BreakerEvent(
            kind=kind,
            breaker_name=self.name,
            breaker_type=self.breaker_type,
            previous_state=state,
            state=state,
            reason=reason,
            timestamp=self._clock.now(),
            details=dict(details or {}),
        )
        sink = self._sink
        if sink is not None and kind is EventKind.WARNING:
            try:
                sink.save(self, [event])
            except StoreUnavailableError:
                logger.error("audit_write_failed", extra={"breaker": self.name})
        self._publish([event])

    def _refresh(self) -> None:
        """Re-check time-driven conditions (self-clearing, session roll, timeouts)."""
        if self._has_refresh and (
            self._refresh_always or self._time_sensitive or self._state is not NORMAL
        ):
            self._refresh_now()

    def _refresh_now(self) -> None:
        # Never wait for the lock: a thread holding it is changing this breaker right now
        # (perhaps writing to the store). What time alone would change (a self-clear, a
        # session roll, a heartbeat timeout) waits for the next read after that thread is
        # done; trips caused by a call happen under the lock in that call anyway.
        if not self._lock.acquire(blocking=False):
            return
        events: list[BreakerEvent] = []
        try:
            self._refresh_locked(events)
        finally:
            self._lock.release()
        if events:
            self._publish(events)

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        """Subclasses override to clear or trip by time (lock held; append to ``events``)."""

    def _on_reset(self) -> None:
        """Subclasses override to re-baseline on a reset (by hand, from another process, and
        on self-clearing unless ``_rebaseline_on_self_clear`` is False); lock held."""

    def _export_data(self) -> dict[str, Any]:
        """Breaker-specific state to persist (peak window, baseline...)."""
        return {}

    def _import_data(self, data: Mapping[str, Any]) -> None:
        """Restore what :meth:`_export_data` wrote."""

    def _restore_hold_seconds(self) -> float:
        """How long a restored self-clearing trip is held before it may clear."""
        return 0.0

    # ------------------------------------------------------------------ machinery
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

    def _set(
        self,
        state: CircuitBreakerState,
        kind: EventKind,
        reason: str | None,
        details: dict[str, Any],
        operator: str | None,
        events: list[BreakerEvent],
    ) -> None:
        previous = self._state
        now = self._clock.now()
        self._state = state
        self._since = now
        if state in BLOCKING_STATES:
            self._trip_info = TripInfo(reason or "", details, operator, now)
        elif state is NORMAL:
            self._trip_info = None
        events.append(self._event(kind, previous, state, reason, details, operator, now))
        for watcher in self._watchers:
            watcher(self)

    def _reset_locked(
        self,
        reason: str,
        details: dict[str, Any],
        operator: str | None,
        events: list[BreakerEvent],
        *,
        raise_on_store: bool,
        rebaseline: bool = True,
    ) -> bool:
        # Readers that take no lock (can_trade, the manager's fast path) must never see a
        # reset the store may still refuse: ``_state`` keeps the blocking state until the
        # store has the reset; meanwhile export_state() reports the pending NORMAL.
        snapshot = self.export_state()
        previous = self._state
        was = self._trip_info
        if was is not None:
            details = {**details, "cleared_reason": was.reason}
        now = self._clock.now()
        added = [
            self._event(EventKind.RESET, previous, RESETTING, reason, details, operator, now),
            self._event(EventKind.RESET, RESETTING, NORMAL, reason, details, operator, now),
        ]
        if rebaseline:
            self._on_reset()
        self._pending_reset = now
        try:
            self._persist(added, permissive=True)
        except StoreUnavailableError:
            self._pending_reset = None
            self._import_data(snapshot.get("data") or {})
            if raise_on_store:
                raise
            return False
        self._pending_reset = None
        self._state = NORMAL
        self._since = now
        self._trip_info = None
        events.extend(added)
        for watcher in self._watchers:
            watcher(self)
        return True

    def _persist(self, events: list[BreakerEvent], *, permissive: bool) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            sink.save(self, events)
        except StoreUnavailableError:
            if permissive:
                raise
            logger.critical(
                "store_write_failed",
                extra={"breaker": self.name, "state": self._state.value},
            )

    def _persist_soft(self) -> None:
        sink = self._sink
        if sink is not None:
            sink.save_soft(self)

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

    # ------------------------------------------------------------------ persistence
    def export_state(self) -> dict[str, Any]:
        """A JSON-friendly snapshot: state, trip info and breaker-specific data."""
        with self._lock:
            pending = self._pending_reset
            info = None if pending is not None else self._trip_info
            since = pending if pending is not None else self._since
            return {
                "name": self.name,
                "type": self.breaker_type.value,
                "state": NORMAL.value if pending is not None else self._state.value,
                "since": since.isoformat() if since else None,
                "trip": None
                if info is None
                else {
                    "reason": info.reason,
                    "details": dict(info.details),
                    "operator": info.operator,
                    "at": info.at.isoformat(),
                },
                "data": self._export_data(),
            }

    def import_state(
        self,
        snapshot: Mapping[str, Any],
        *,
        publish: bool = False,
        guard: Callable[[], bool] | None = None,
    ) -> None:
        """Adopt a snapshot (a restart, or another process's change).

        With ``publish`` the change is announced to listeners as events (and not written
        back to the store); otherwise it is applied silently. ``guard`` is called with the
        breaker's lock held; if it returns False nothing is applied (a store uses it to
        drop another process's change that this process has since overwritten).
        """
        events: list[BreakerEvent] = []
        with self._lock:
            if guard is not None and not guard():
                return
            new_state = CircuitBreakerState(snapshot.get("state", "NORMAL"))
            trip = snapshot.get("trip")
            data = snapshot.get("data")
            if data:
                self._import_data(data)
            if new_state is RESETTING:
                new_state = NORMAL
            if new_state == self._state and (
                new_state is NORMAL
                or (trip and self._trip_info and trip["reason"] == self._trip_info.reason)
            ):
                return
            previous = self._state
            if publish:
                reason = trip["reason"] if trip else "changed by another process"
                operator = trip.get("operator") if trip else None
                details = dict(trip.get("details", {})) if trip else {}
                details["remote"] = True
                kind = {
                    TRIPPED: EventKind.TRIPPED,
                    HALTED: EventKind.HALTED,
                    NORMAL: EventKind.RESET,
                }[new_state]
                if new_state is NORMAL and previous in BLOCKING_STATES:
                    self._set(RESETTING, kind, reason, details, operator, events)
                    # The other process re-baselined its copy; do the same with what this
                    # process observed last (a fresh allowance from the latest value).
                    self._on_reset()
                self._set(new_state, kind, reason, details, operator, events)
            else:
                self._state = new_state
                for watcher in self._watchers:
                    watcher(self)
            if trip and new_state in BLOCKING_STATES:
                self._trip_info = TripInfo(
                    trip["reason"],
                    dict(trip.get("details", {})),
                    trip.get("operator"),
                    datetime.fromisoformat(trip["at"]),
                )
                if new_state is TRIPPED:
                    self._hold_until = self._clock.monotonic() + self._restore_hold_seconds()
            since = snapshot.get("since")
            if since and not publish:
                self._since = datetime.fromisoformat(since)
        self._publish(events)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} state={self._state.value}>"
