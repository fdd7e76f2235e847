"""CircuitBreaker: the ways to run a call through the state machine.

``await breaker.call(fn, ...)`` (sync or async ``fn``), ``breaker.call_sync(fn, ...)``, the
breaker as a decorator, and ``with breaker:`` / ``async with breaker:``. Plus the operator
actions, callbacks, listeners and status of the README's ``CircuitBreaker``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import CoroutineType, TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from ..errors import InvalidTypeError
from ..events import Listener
from ..values import to_text
from .machine import (
    CLOSED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    CallStateMachine,
    StateCallback,
    _Transition,
)
from .state import CircuitState

__all__ = ["CircuitBreaker"]

P = ParamSpec("P")
R = TypeVar("R")

# Admissions of `with breaker:` blocks in progress, innermost last: (breaker, epoch, start).
# A ContextVar keeps them apart per thread and per asyncio task.
_ENTERED: ContextVar[tuple[tuple[CallStateMachine, int, float], ...]] = ContextVar(
    "haltgate_callbreaker_entered", default=()
)

# Per result type: can it be awaited? (``inspect.isawaitable`` is slow on the hot path.)
_AWAITABLE_TYPES: dict[type, bool] = {CoroutineType: True}


def _must_await(result: Any) -> bool:
    kind = type(result)
    known = _AWAITABLE_TYPES.get(kind)
    if known is None:
        if inspect.isgenerator(result):
            # Generator-based coroutines are awaitable per instance, not per type.
            return inspect.isawaitable(result)
        known = _AWAITABLE_TYPES[kind] = hasattr(kind, "__await__")
    return known


def _uncallable(fn: Any) -> InvalidTypeError:
    """The refusal of a non-callable ``fn`` (raised before anything is admitted or counted)."""
    return InvalidTypeError("fn", fn, "must be callable")


def _operator_text(value: str | None, name: str) -> str | None:
    return None if value is None else to_text(value, name)


class CircuitBreaker(CallStateMachine):
    """A CLOSED / OPEN / HALF_OPEN breaker around calls to a broker or exchange API.

    ``CircuitBreaker(name, circuit_type=CircuitType.CONNECTION_FAILURE, config=None, *,
    clock=None)``. Refused calls raise :class:`~haltgate.CircuitOpenException` with
    ``name``, ``state`` and ``retry_after``. No lock is held while a protected function
    runs. Safe to share between threads and asyncio tasks.
    """

    __slots__ = ()

    # ------------------------------------------------------------------ calling
    async def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` through the breaker; awaits the result if needed.

        ``fn`` may be a coroutine function or a plain function (a plain function runs in
        the event loop's thread, as it would without the breaker).
        """
        epoch = self._epoch
        if self._closed_fast:
            try:
                result = fn(*args, **kwargs)
                if type(result) is CoroutineType or _must_await(result):
                    result = await result
            except BaseException as exc:
                # Checked only here to keep the success path free of it: calling a
                # non-callable runs nothing, so refusing now equals refusing up front.
                if not callable(fn):
                    raise _uncallable(fn) from None
                self._finish_exception(epoch, 0.0, exc)
                raise
            self._closed_success(epoch)
            return result
        if not callable(fn):
            raise _uncallable(fn)
        epoch, start = self._admit()
        try:
            result = fn(*args, **kwargs)
            if _must_await(result):
                result = await result
        except BaseException as exc:
            self._finish_exception(epoch, start, exc)
            raise
        self._finish_result(epoch, start, result)
        return result

    def call_sync(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the synchronous ``fn(*args, **kwargs)`` through the breaker."""
        epoch = self._epoch
        if self._closed_fast:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                # See call(): the refusal of a non-callable is deferred to this branch.
                if not callable(fn):
                    raise _uncallable(fn) from None
                self._finish_exception(epoch, 0.0, exc)
                raise
            self._closed_success(epoch)
            return result
        if not callable(fn):
            raise _uncallable(fn)
        epoch, start = self._admit()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._finish_exception(epoch, start, exc)
            raise
        self._finish_result(epoch, start, result)
        return result

    @overload
    def __call__(
        self, fn: Callable[P, Awaitable[R]]
    ) -> Callable[P, Awaitable[R]]: ...  # pragma: no cover

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...  # pragma: no cover

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so every call goes through the breaker."""
        if not callable(fn):
            raise _uncallable(fn)
        if inspect.iscoroutinefunction(fn):
            call = self.call

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await call(fn, *args, **kwargs)

            return async_wrapper
        call_sync = self.call_sync

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return call_sync(fn, *args, **kwargs)

        return wrapper

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> CircuitBreaker:
        """Check permission (raises :class:`~haltgate.CircuitOpenException` when refused)."""
        epoch, start = self._admit()
        _ENTERED.set((*_ENTERED.get(), (self, epoch, start)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Record the block's outcome; never swallows its exception."""
        entered = _ENTERED.get()
        for index in range(len(entered) - 1, -1, -1):
            if entered[index][0] is self:
                _, epoch, start = entered[index]
                _ENTERED.set(entered[:index] + entered[index + 1 :])
                break
        else:  # pragma: no cover - __exit__ without __enter__
            return
        if exc is None:
            # A block has no return value for failure_result to judge.
            self._finish_result(epoch, start, None, check=False)
        else:
            self._finish_exception(epoch, start, exc)

    async def __aenter__(self) -> CircuitBreaker:
        """``async with breaker:`` — same as ``with``."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Record the block's outcome; never swallows its exception."""
        self.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ operator actions
    def force_open(self, *, operator: str | None = None, reason: str | None = None) -> None:
        """Refuse every call until :meth:`force_close` or :meth:`reset` (FORCED_OPEN)."""
        operator = _operator_text(operator, "operator")
        why = _operator_text(reason, "reason") or "forced open"
        out: list[_Transition] = []
        with self._lock:
            if self._state is not FORCED_OPEN:
                self._opened_at = self.clock.now()
                self._enter_locked(FORCED_OPEN, why, {}, operator, out)
        self._publish(out)

    def force_close(self, *, operator: str | None = None, reason: str | None = None) -> None:
        """Close the circuit now, with a fresh failure count, window and open timeout."""
        operator = _operator_text(operator, "operator")
        why = _operator_text(reason, "reason") or "forced closed"
        out: list[_Transition] = []
        with self._lock:
            if self._state is not CLOSED:
                self._enter_locked(CLOSED, why, {}, operator, out)
        self._publish(out)

    def reset(self, *, operator: str | None = None, reason: str | None = None) -> None:
        """Back to the initial state: CLOSED, nothing counted, lifetime totals cleared."""
        operator = _operator_text(operator, "operator")
        why = _operator_text(reason, "reason") or "reset"
        out: list[_Transition] = []
        with self._lock:
            if self._state is not CLOSED:
                self._enter_locked(CLOSED, why, {}, operator, out)
            else:
                # Calls still running count against nothing new.
                self._epoch += 1
                self._consecutive = 0
                self._window.clear()
                self._open_timeout = self.config.open_timeout_seconds
            self._totals = [0, 0, 0, 0, 0]
            self._successes = 0
        self._publish(out)

    # ------------------------------------------------------------------ callbacks
    def register_trip_callback(self, callback: StateCallback) -> None:
        """Call ``callback(name, circuit_type)`` (sync or async) whenever the circuit opens.

        That is CLOSED → OPEN, a re-open from HALF_OPEN, and :meth:`force_open`. A failing
        callback is logged (``listener_failed``) and never breaks the call or other callbacks.
        """
        if not callable(callback):
            raise InvalidTypeError("callback", callback, "must be callable")
        with self._lock:
            self._trip_callbacks = (*self._trip_callbacks, callback)

    def register_recovery_callback(self, callback: StateCallback) -> None:
        """Call ``callback(name, circuit_type)`` (sync or async) whenever the circuit closes
        again (after successful probes, :meth:`force_close` or :meth:`reset`)."""
        if not callable(callback):
            raise InvalidTypeError("callback", callback, "must be callable")
        with self._lock:
            self._recovery_callbacks = (*self._recovery_callbacks, callback)

    def add_listener(self, callback: Listener) -> None:
        """Receive :class:`~haltgate.BreakerEvent` s: ``tripped`` (→ OPEN), ``halted``
        (→ FORCED_OPEN) and ``reset`` (→ CLOSED)."""
        self._add_listener(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop delivering events to ``callback``."""
        self._listeners.remove(callback)

    # ------------------------------------------------------------------ reading
    def _refreshed_state(self) -> CircuitState:
        state = self._state
        if state is OPEN or state is HALF_OPEN:
            out: list[_Transition] = []
            with self._lock:
                self._refresh_locked(self._monotonic(), out)
                state = self._state
            if out:
                self._publish(out)
        return state

    @property
    def state(self) -> CircuitState:
        """The current state (an OPEN circuit whose timeout passed reads HALF_OPEN)."""
        return self._refreshed_state()

    @property
    def is_open(self) -> bool:
        """True when calls are refused: OPEN or FORCED_OPEN."""
        state = self._refreshed_state()
        return state is OPEN or state is FORCED_OPEN

    @property
    def is_closed(self) -> bool:
        """True when CLOSED."""
        return self._refreshed_state() is CLOSED

    @property
    def is_half_open(self) -> bool:
        """True when HALF_OPEN (probing)."""
        return self._refreshed_state() is HALF_OPEN

    @property
    def is_forced_open(self) -> bool:
        """True when FORCED_OPEN."""
        return self._state is FORCED_OPEN

    def get_status(self) -> dict[str, Any]:
        """A JSON-friendly snapshot of state, counts, timeouts and configuration."""
        self._refreshed_state()
        with self._lock:
            now = self._monotonic()
            calls, failures = self._window.counts(now)
            failed, ignored, rejected, stale = self._totals[1:]
            successes = self._successes
            state = self._state
            return {
                "name": self.name,
                "circuit_type": self.circuit_type.value,
                "state": state.value,
                "failure_count": self._consecutive,
                "window_calls": calls,
                "window_failures": failures,
                "failure_rate": (failures / calls) if calls else 0.0,
                "open_timeout_seconds": self._open_timeout,
                "retry_after": (self._retry_after_locked(now) if state is not CLOSED else None),
                "opened_at": None if self._opened_at is None else self._opened_at.isoformat(),
                "half_open_in_flight": len(self._probes),
                "half_open_successes": self._probe_successes,
                "total_successes": successes,
                "total_failures": failed,
                "total_ignored": ignored,
                "total_rejected": rejected,
                "total_stale": stale,
                "config": self.config.to_dict(),
            }

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, {self.circuit_type!s}, state={self._state!s})"
