"""Breaker events and the listener fan-out shared by every breaker, the manager and the facade.

Listeners may be plain callables or coroutine functions. A listener that raises is logged
(event ``listener_failed``) and never breaks trading or the other listeners. Coroutines are
scheduled on the running event loop when there is one in the calling thread, otherwise on a
private background loop, so a synchronous trading thread never blocks on them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["BreakerEvent", "EventKind", "Listener", "ListenerSet"]

logger = logging.getLogger("haltgate.events")


class EventKind(StrEnum):
    """What happened to a breaker."""

    TRIPPED = "tripped"
    RESET = "reset"
    HALTED = "halted"
    WARNING = "warning"
    ORDER_REFUSED = "order_refused"


def _freeze(details: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(details or {}))


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """One thing that happened to one breaker. Immutable.

    ``previous_state`` and ``state`` are :class:`~haltgate.CircuitBreakerState` values (or
    the call breaker's states); ``timestamp`` is timezone-aware UTC.
    """

    kind: EventKind
    breaker_name: str
    breaker_type: Any
    previous_state: Any
    state: Any
    reason: str | None
    timestamp: datetime
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    operator: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.details, MappingProxyType):
            object.__setattr__(self, "details", _freeze(self.details))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (enum values as strings, time as ISO-8601)."""
        return {
            "kind": str(self.kind),
            "breaker": self.breaker_name,
            "breaker_type": getattr(self.breaker_type, "value", self.breaker_type),
            "previous_state": getattr(self.previous_state, "value", self.previous_state),
            "state": getattr(self.state, "value", self.state),
            "reason": self.reason,
            "details": dict(self.details),
            "operator": self.operator,
            "timestamp": self.timestamp.isoformat(),
        }


Listener = Callable[[BreakerEvent], Any]


class _BackgroundLoop:
    """One daemon thread running an event loop for coroutine listeners called from sync code."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="haltgate-listeners", daemon=True
                )
                thread.start()
                cls._loop = loop
            return cls._loop


_pending: set[asyncio.Task[Any]] = set()


def _log_failure(callback: Any, exc: BaseException, what: str) -> None:
    logger.error(
        "listener_failed",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"listener": repr(callback), "event_kind": what},
    )


def call_isolated(callback: Callable[..., Any], *args: Any, what: str = "") -> None:
    """Call ``callback(*args)``; schedule it if it returns an awaitable; log any failure."""
    try:
        result = callback(*args)
    except Exception as exc:
        _log_failure(callback, exc, what)
        return
    if not inspect.isawaitable(result):
        return

    async def guarded() -> None:
        try:
            await result
        except Exception as exc:
            _log_failure(callback, exc, what)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run_coroutine_threadsafe(guarded(), _BackgroundLoop.get())
        return
    task = loop.create_task(guarded())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


class ListenerSet:
    """An ordered set of listeners; :meth:`emit` calls each one in isolation."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()

    def add(self, callback: Listener) -> None:
        """Add ``callback`` (sync or async); adding it twice has no effect."""
        if not callable(callback):
            from .errors import InvalidTypeError

            raise InvalidTypeError("callback", callback, "must be callable")
        if callback not in self._listeners:
            self._listeners = (*self._listeners, callback)

    def remove(self, callback: Listener) -> None:
        """Remove ``callback`` if present."""
        self._listeners = tuple(cb for cb in self._listeners if cb != callback)

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def emit(self, event: BreakerEvent) -> None:
        """Deliver ``event`` to every listener; failures are logged, never raised."""
        for callback in self._listeners:
            call_isolated(callback, event, what=str(event.kind))
