"""The base of every trading breaker: one state model, one executor, one event path.

A breaker's state has two layers (SPEC §3):

* its **condition**: the breaker's own trip (drawdown too deep, window full...), with the
  process it came from;
* a **manual halt** on top, which never replaces the condition: while halted the breaker
  keeps judging, a breach is recorded (event, audit entry), and lifting the halt leaves that
  trip in place.

``state`` is MANUALLY_HALTED while halted, else TRIPPED while the condition holds, else
NORMAL.

Every state change goes through one executor (:mod:`haltgate.breakers.executor`): lock
held → the change is decided → made durable → published after the lock is released, with
the durability policy in that one place. The stored form is :mod:`~haltgate.breakers.snapshot`;
what a breaker declares to the manager is :mod:`~haltgate.breakers.contract`; how another
process's change is adopted is :mod:`~haltgate.breakers.adoption`. This module holds what
a subclass builds on: reads, operator actions, ``_trip``/``_clear_locked`` and the hooks.

Reads (``state``, ``is_tripped``, ``get_trip_reason()``, ``get_trip_details()``) are pure:
they never write. A time-driven trip that is due (a heartbeat timeout) is reported by every
read at once, computed without the lock; recording it, and every time-driven clear, is the
job of the refresh step (:meth:`BaseCircuitBreaker.refresh`), which runs in every call that
changes the breaker and is scheduled by reads through the attached store (its background
thread for SQLite and Redis; inline for the in-memory store, which does no I/O).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from .. import codec
from ..clock import Clock, SystemClock
from ..errors import InvalidTypeError, StoreUnavailableError
from ..events import BreakerEvent, EventKind, Listener, ListenerSet
from ..values import to_text
from .adoption import plan_adoption
from .contract import BreakerContract, derive_contract
from .executor import StateExecutor
from .snapshot import LOCAL_ORIGIN, BreakerSink, TripInfo, changed_by, layers_of
from .state import BLOCKING_STATES, CircuitBreakerState, CircuitBreakerType

__all__ = ["LOCAL_ORIGIN", "BaseCircuitBreaker", "BreakerSink", "TripInfo"]

logger = logging.getLogger("haltgate.breakers")

NORMAL = CircuitBreakerState.NORMAL
TRIPPED = CircuitBreakerState.TRIPPED
HALTED = CircuitBreakerState.MANUALLY_HALTED
RESETTING = CircuitBreakerState.RESETTING


class BaseCircuitBreaker(StateExecutor):
    """Extension point for trading breakers.

    A subclass decides in its own ``can_trade(...)`` and calls :meth:`_trip`. ``_trip`` is
    idempotent while tripped (the first reason is kept) and never overrides a manual halt.
    Every breaker can be halted by hand (:meth:`trigger_halt`) and reset (:meth:`reset`).
    Safe to use from many threads and from asyncio.

    What the manager needs to know of a breaker is its :attr:`contract`
    (:class:`~haltgate.breakers.contract.BreakerContract`). A subclass that overrides
    ``can_trade`` is asked on every manager check; one whose ``can_trade`` takes
    ``**kwargs`` names what it observes in ``observes = ("returns", ...)``.
    """

    #: What this class observes and does (see :mod:`haltgate.breakers.contract`).
    contract: ClassVar[BreakerContract] = BreakerContract()
    #: Whether clearing by itself also runs :meth:`_on_reset` (the re-baseline of a reset by
    #: hand). False where that would forget what is still measured, e.g. the errors still in
    #: an error-rate window (the next error could then never trip it again).
    _rebaseline_on_self_clear: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "contract" not in cls.__dict__ and "can_trade" in cls.__dict__:
            cls.contract = derive_contract(cls, cls.contract)
        elif (
            "contract" not in cls.__dict__
            and cls.contract.batch
            and "feed_batch" not in cls.__dict__
            and not cls.__module__.startswith("haltgate.")
        ):
            # A user's subclass may decide differently (its own update(), check or limit)
            # from the batch path it inherits: it is fed row by row unless it brings its
            # own feed_batch.
            cls.contract = replace(cls.contract, batch=False)

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
        # The two layers, and the view of them that lock-free readers use.
        self._halt: TripInfo | None = None
        self._condition: TripInfo | None = None
        self._state = NORMAL
        self._trip_info: TripInfo | None = None
        self._since: datetime | None = None
        self._listeners = ListenerSet()
        self._watchers: tuple[Callable[[BaseCircuitBreaker], None], ...] = ()
        self._sink: BreakerSink | None = None
        # A trip restored from a store at start-up (its evidence was not kept) is held
        # until this monotonic time before this process may clear it by itself.
        self._hold_until = 0.0
        self._tripped_mono = 0.0
        # What the last state change was ("trip", "halt", "reset", "self_clear").
        self._last_change: str | None = None
        # Who made it (an operator's halt or reset; None for the breaker's own change):
        # status shows it after a reset, when no trip is left to name anyone.
        self._last_by: str | None = None

    def _set_clock(self, clock: Clock) -> None:
        """Adopt ``clock`` (the manager's, when this breaker was made without one)."""
        self._clock = clock

    # ------------------------------------------------------------------ reading (pure)
    @property
    def clock(self) -> Clock:
        """The clock this breaker reads."""
        return self._clock

    @property
    def has_own_clock(self) -> bool:
        """True when the breaker was made with a clock of its own (a manager does not give
        it the manager's; replay refuses it, since replay sets the time)."""
        return self._clock_explicit

    @property
    def state(self) -> CircuitBreakerState:
        """The current state; a due time-driven trip reads as TRIPPED at once."""
        state = self._state
        if state is NORMAL:
            if self._pending_trip() is None:
                return NORMAL
            self._schedule_refresh()
            # Due but perhaps not recorded yet (the refresh step may run elsewhere).
            return TRIPPED if self._state is NORMAL else self._state
        if state is TRIPPED and type(self).contract.clears_by_time:
            self._schedule_refresh()
            return self._state
        return state

    @property
    def is_tripped(self) -> bool:
        """True when TRIPPED or MANUALLY_HALTED."""
        return self.state in BLOCKING_STATES

    @property
    def is_halted(self) -> bool:
        """True while a manual halt is in force (whatever the breaker's own condition)."""
        return self._halt is not None

    @property
    def since(self) -> datetime | None:
        """When the current state began (UTC), or ``None`` if it never changed."""
        return self._since

    def can_trade(self) -> bool:
        """True unless tripped or halted. Subclasses take observations here."""
        return not self.is_tripped

    def get_trip_reason(self) -> str | None:
        """Why the breaker is tripped or halted, or ``None`` when it is not."""
        _ = self.state  # the same view as ``state`` (schedules a due refresh step)
        info = self._blocking_info()
        return None if info is None else info.reason

    def get_trip_details(self) -> dict[str, Any]:
        """Threshold, observed value, time and operator of the current trip or halt
        (empty when the breaker is not tripped). While halted, the breaker's own trip
        underneath is under ``"condition"``."""
        _ = self.state  # the same view as ``state`` (schedules a due refresh step)
        with self._lock:
            info = self._blocking_info()
            if info is None:
                return {}
            details = dict(info.details)
            details.setdefault("reason", info.reason)
            details["tripped_at"] = info.at
            details["operator"] = info.operator
            details["state"] = HALTED.value if self._halt is not None else TRIPPED.value
            condition = self._condition
            if self._halt is not None and condition is not None:
                details["condition"] = {**condition.details, "reason": condition.reason}
            return details

    def _blocking_info(self) -> TripInfo | None:
        """The halt, else the trip, else a due time-driven trip (not yet recorded)."""
        info = self._halt or self._condition
        if info is not None:
            return info
        pending = self._pending_trip()
        if pending is None:
            return None
        reason, details = pending
        return TripInfo(reason, details, None, self._clock.now(), self._origin)

    def _blocks(self) -> bool:
        """Would this breaker refuse an order right now (without new observations)?"""
        return self.is_tripped

    def next_deadline(self) -> float | None:
        """Monotonic time at which time alone may trip this breaker (``None``: never).
        Breakers whose contract says ``trips_by_time`` override this."""
        return None

    def unchanged_by_time_until(self) -> float:
        """A monotonic time before which time alone (no observation, order or error) cannot
        change this breaker: no trip, no clear, nothing a read would record. ``math.inf``:
        time alone never changes it; ``-math.inf``: it may change at any read.

        For batch callers (replay) that skip reads which cannot matter. The default is exact
        for breakers whose contract says time neither trips nor clears them, and
        ``-math.inf`` (ask on every read) for every other one; breakers that know their
        deadlines override it, erring early, never late."""
        contract = type(self).contract
        if contract.asked or contract.trips_by_time or contract.clears_by_time:
            return -math.inf
        return math.inf

    def feed_batch(
        self, times: Sequence[float], values: Sequence[Decimal], start: int, stop: int
    ) -> int:
        """Observe ``values[start:stop]`` at wall times ``times`` (epoch seconds, not
        decreasing, none before the clock's time) exactly as ``can_trade(
        current_portfolio_value=v)`` at each would, and return the index of the first row
        not consumed: the first one that would change the state (a trip, a clear, a new
        session) or that this breaker cannot judge in a batch. The caller sets the clock to
        that row's time, calls ``can_trade`` for it, and feeds on from the next row.

        Consumed rows leave the breaker as row by row would, with no event. Breakers whose
        contract declares ``batch`` implement it; this default consumes nothing (row by
        row)."""
        return start

    def _pending_trip(self) -> tuple[str, dict[str, Any]] | None:
        """A time-driven trip that is due now but not recorded: ``(reason, details)``.
        Pure (no lock, no change); breakers that trip by time override it, and their
        refresh step records exactly what this returns."""
        return None

    # ------------------------------------------------------------------ operator actions
    def trigger_halt(self, reason: str, operator: str) -> None:
        """Halt trading by hand (→ MANUALLY_HALTED) until :meth:`reset`."""
        reason = to_text(reason, "reason")
        operator = to_text(operator, "operator")
        events: list[BreakerEvent] = []
        with self._lock:
            self._refresh_locked(events)
            if self._halt is None:
                details: dict[str, Any] = {}
                if self._condition is not None:
                    details["previous_reason"] = self._condition.reason
                halt = TripInfo(reason, details, operator, self._clock.now(), self._origin)
                self._execute_locked(
                    EventKind.HALTED,
                    halt,
                    self._condition,
                    "halt",
                    reason,
                    operator,
                    events,
                    halt.details,
                )
        self._publish(events)

    def reset(self, operator: str | None = None, reason: str | None = None) -> None:
        """An operator's reset: lift a manual halt, or else clear the breaker's trip
        (listeners see → RESETTING → NORMAL).

        A halt is lifted alone: a trip recorded underneath stays (a latched breaker then
        needs its own reset). A reset of a NORMAL breaker does nothing. Raises
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
            halted = self._halt is not None
            if halted or self._condition is not None:
                # The halt alone when there is one; else the trip, with a fresh baseline.
                self._lift_locked(
                    lift_halt=halted,
                    lift_condition=not halted,
                    cause="reset",
                    reason=reason or "manual reset",
                    details={"cause": "manual"},
                    operator=operator,
                    rebaseline=not halted,
                    events=events,
                )
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
        """Trip. Returns False, changing nothing, when already tripped: the first reason is
        kept. While halted the trip is recorded underneath the halt."""
        events: list[BreakerEvent] = []
        with self._lock:
            tripped = self._trip_locked(reason, details, events)
        self._publish(events)
        return tripped

    def _trip_locked(
        self, reason: str, details: Mapping[str, Any] | None, events: list[BreakerEvent]
    ) -> bool:
        """:meth:`_trip` for code that already holds the lock; publish ``events`` after."""
        if self._condition is not None:
            return False
        condition = TripInfo(
            str(reason), dict(details or {}), None, self._clock.now(), self._origin
        )
        self._tripped_mono = self._clock.monotonic()
        self._execute_locked(
            EventKind.TRIPPED,
            self._halt,
            condition,
            "trip",
            condition.reason,
            None,
            events,
            condition.details,
        )
        return True

    @property
    def _clears_own_condition(self) -> bool:
        """This process may clear the current trip by itself (once its evidence says so):
        the trip is its own, or was restored at start-up. A trip imported from another live
        process is that process's to clear."""
        condition = self._condition
        return condition is not None and (condition.restored or condition.origin == self._origin)

    def _clear_locked(
        self, cause: str, details: Mapping[str, Any] | None, events: list[BreakerEvent]
    ) -> bool:
        """Self-clear this process's own trip (lock held); a manual halt stays. Returns
        whether it cleared: a trip imported from another process is that process's to
        clear, a restored trip is held for a while, and a store that cannot record the
        clear keeps the trip (the next refresh retries)."""
        condition = self._condition
        if condition is None:
            return False
        if condition.restored:
            if self._clock.monotonic() < self._hold_until:
                return False
        elif condition.origin != self._origin:
            return False
        info = dict(details or {})
        info.setdefault("cause", "condition_cleared")
        return self._lift_locked(
            lift_halt=False,
            lift_condition=True,
            cause="self_clear",
            reason=cause,
            details=info,
            operator=None,
            rebaseline=type(self)._rebaseline_on_self_clear,
            events=events,
        )

    def _warn(self, reason: str, details: Mapping[str, Any] | None = None) -> None:
        """Publish a warning event (no state change)."""
        self._emit_only(EventKind.WARNING, reason, details)

    def _refused(self, reason: str, details: Mapping[str, Any] | None = None) -> None:
        """Publish an ``order_refused`` event (no state change)."""
        self._emit_only(EventKind.ORDER_REFUSED, reason, details)

    def _emit_only(self, kind: EventKind, reason: str, details: Mapping[str, Any] | None) -> None:
        state = self._state
        event = self._event(
            kind, state, state, reason, dict(details or {}), None, self._clock.now()
        )
        sink = self._sink
        if sink is not None and kind is EventKind.WARNING:
            try:
                sink.save(self, [event])
            except StoreUnavailableError:
                logger.error("audit_write_failed", extra={"breaker": self.name})
        self._publish([event])

    # ------------------------------------------------------------------ refresh step
    def refresh(self) -> None:
        """The refresh step: record what time alone changed (a due trip, a window that
        emptied, a cooldown that ended, a new session). Waits for the breaker's lock."""
        events: list[BreakerEvent] = []
        with self._lock:
            self._refresh_locked(events)
        if events:
            self._publish(events)

    def _schedule_refresh(self) -> None:
        sink = self._sink
        if sink is None:
            self._refresh_now()
        else:
            sink.request_refresh(self)

    def _refresh(self) -> None:
        """Run the refresh step now if the lock is free (for code paths that change the
        breaker anyway, e.g. a new observation)."""
        self._refresh_now()

    def _refresh_now(self) -> None:
        # Never wait for the lock: a thread holding it is changing this breaker right now
        # and runs the refresh step itself. Reads meanwhile still report a due trip.
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
        """Subclasses override to clear or trip by time (lock held; append to ``events``).
        The default records a due :meth:`_pending_trip`."""
        if self._condition is None:
            pending = self._pending_trip()
            if pending is not None:
                self._trip_locked(pending[0], pending[1], events)

    def _on_reset(self) -> None:
        """Subclasses override to re-baseline on a reset (by hand, from another process, and
        on self-clearing unless ``_rebaseline_on_self_clear`` is False); lock held."""

    def _export_data(self) -> dict[str, Any]:
        """Breaker-specific state to persist (peak window, baseline...)."""
        return {}

    def _import_data(self, data: Mapping[str, Any]) -> None:
        """Restore what :meth:`_export_data` wrote."""

    def _memento(self) -> Any:
        """Everything :meth:`_on_reset` may change, to undo it when the store refuses the
        reset. The default is the exported data; breakers whose evidence is not exported
        (an error window) override this and :meth:`_restore_memento`."""
        return self._export_data()

    def _restore_memento(self, memento: Any) -> None:
        """Undo :meth:`_on_reset` with what :meth:`_memento` returned."""
        self._import_data(memento)

    def _restore_hold_seconds(self) -> float:
        """How long a restored self-clearing trip is held before it may clear."""
        return 0.0

    # ------------------------------------------------------------------ persistence
    def export_state(self) -> dict[str, Any]:
        """A JSON snapshot: state, trip info, breaker-specific data (see :mod:`haltgate.codec`)."""
        with self._lock:
            return self._snapshot(
                self._halt, self._condition, self._since, self._last_change, self._last_by
            )

    def import_state(self, snapshot: Mapping[str, Any]) -> None:
        """Restore a snapshot read back at start-up (silently: no events, no writes).

        A restored trip is held for :meth:`_restore_hold_seconds` before this process may
        clear it by itself (its evidence was not persisted)."""
        with self._lock:
            data = snapshot.get("data")
            if data:
                self._import_data(codec.decode(data))
            halt, condition = layers_of(snapshot, restored=True)
            if condition is not None:
                self._hold_until = self._clock.monotonic() + self._restore_hold_seconds()
                self._tripped_mono = self._clock.monotonic()
            self._halt, self._condition = halt, condition
            self._last_by = changed_by(snapshot)
            since = snapshot.get("since")
            self._sync_view(None)
            self._since = datetime.fromisoformat(since) if since else None

    def adopt_remote(
        self, snapshot: Mapping[str, Any], *, guard: Callable[[], bool] | None = None
    ) -> bool:
        """Adopt another process's change (the one adoption path, see
        :mod:`haltgate.breakers.adoption`); announced to listeners, never written back.

        ``guard`` is called with the lock held; if it returns False nothing is applied (the
        store drops a change older than this process's own). Returns whether anything
        changed."""
        events: list[BreakerEvent] = []
        with self._lock:
            if guard is not None and not guard():
                return False
            remote_halt, remote_condition = layers_of(snapshot, restored=False)
            condition = self._condition
            plan = plan_adoption(
                halted=self._halt is not None,
                condition_origin=None if condition is None else condition.origin,
                remote=snapshot,
                remote_halt=remote_halt,
                remote_condition=remote_condition,
            )
            if plan.empty:
                return False
            previous = self._state
            now = self._clock.now()
            halt = self._halt
            if plan.adopt_halt:
                halt = remote_halt
            elif plan.lift_halt:
                halt = None
            if plan.adopt_condition:
                condition = remote_condition
                self._tripped_mono = self._clock.monotonic()
            elif plan.lift_condition:
                condition = None
            if plan.drop_evidence:
                self._on_reset()
            self._apply(halt, condition, now)
            self._last_by = changed_by(snapshot)
            shown = remote_halt or remote_condition
            reason = shown.reason if shown is not None else "changed by another process"
            operator = shown.operator if shown is not None else None
            details = dict(shown.details) if shown is not None else {}
            details["remote"] = True
            details["change"] = snapshot.get("change")
            if plan.lift_halt or plan.lift_condition:
                kind = EventKind.RESET
                reason = "reset by another process" if shown is None else reason
                events.append(self._event(kind, previous, RESETTING, reason, details, None, now))
                events.append(
                    self._event(kind, RESETTING, self._state, reason, details, operator, now)
                )
            else:
                kind = EventKind.HALTED if plan.adopt_halt else EventKind.TRIPPED
                events.append(
                    self._event(kind, previous, self._state, reason, details, operator, now)
                )
        self._publish(events)
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} state={self._state.value}>"
