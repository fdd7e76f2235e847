"""The order gate: nothing reaches the broker without the circuit breakers' consent.

Every order passes the manager's check and an atomic ``record_order`` (one slot in every
order-rate window, or none) before the broker sees it. A refused order is marked REJECTED
with the blocking reasons and an ``order_refused`` event goes to the manager's listeners;
an exception from the broker is recorded as an error with the error-rate breakers and
re-raised or reported, never swallowed.

:func:`guard` puts the same gate around any order-submission function, sync or async;
``manager.guard(fn)`` delegates here.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .checks.context import OrderContext
from .errors import InvalidTypeError
from .orders import Order, OrderRefusedError, OrderStatus

__all__ = ["Admitter", "OrderGate", "guard"]

logger = logging.getLogger("haltgate.engine.gate")


@runtime_checkable
class Admitter(Protocol):
    """What the gate needs of a manager (:class:`~haltgate.CircuitBreakerManager` is one).

    The gate is typed against this, not against the manager, so the manager can build its
    ``guard`` on the gate without the two modules importing each other."""

    def admit_order(
        self,
        *,
        order: Order | None = None,
        context: OrderContext | None = None,
        reduce_only: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Judge (pre-trade checks), admit and record one order, or return why it is
        refused."""
        ...

    def refuse_order(
        self,
        reason: str,
        *,
        blocking: list[str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Announce an order refused outside :meth:`admit_order`."""
        ...

    def record_error(self, error: Any = None, *, category: str | None = None) -> bool:
        """Record a broker error with the error-rate breakers."""
        ...


class OrderGate:
    """Admits orders for one manager (an :class:`Admitter`)."""

    def __init__(self, manager: Admitter) -> None:
        if not isinstance(manager, Admitter):
            raise InvalidTypeError(
                "manager", manager, "must be a CircuitBreakerManager (admit_order, ...)"
            )
        self.manager = manager

    def admit(
        self,
        order: Order | None = None,
        *,
        context: OrderContext | None = None,
        reduce_only: bool = False,
        refusals: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Check and record one order; returns ``[]`` when admitted, else the reasons.

        ``context`` (an :class:`~haltgate.OrderContext`) is what the manager's pre-trade
        checks judge the order against; a check's refusal reads ``"check_name: reason"``.

        ``refusals`` are the caller's own reasons to refuse (a paused engine, an order that
        would grow a position in reduce-only mode): they refuse without using an order slot.
        ``reduce_only`` admits a position-shrinking order despite tripped risk breakers
        (never despite a manual halt or a full order window). A refused ``order`` is marked
        REJECTED with the reasons; every refusal emits one ``order_refused`` event.
        """
        info: dict[str, Any] = dict(details or {})
        if order is not None:
            info.update(order.summary())
        if refusals:
            reasons = list(refusals)
            self.manager.refuse_order(
                "order refused: " + "; ".join(reasons), blocking=reasons, details=info
            )
        else:
            reasons = self.manager.admit_order(
                order=order, context=context, reduce_only=reduce_only, details=info
            )
        if reasons and order is not None:
            order.reject(reasons, by="gate")
        return reasons

    def failed(self, error: BaseException, order: Order | None = None) -> None:
        """Record a broker exception as an error (and mark ``order`` FAILED)."""
        if order is not None:
            order.status = OrderStatus.FAILED
            order.error = f"{type(error).__name__}: {error}"
        logger.error(
            "order_submit_failed",
            extra={
                "error": repr(error)[:500],
                "order_id": None if order is None else order.id,
            },
        )
        self.manager.record_error(error, category="broker")


def _find_order(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Order | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Order):
            return value
    return None


def guard(
    manager: Admitter,
    submit: Callable[..., Any],
    *,
    context: Callable[[Order], OrderContext] | None = None,
) -> Callable[..., Any]:
    """Wrap ``submit`` (a sync or async order-submission function) with the gate.

    Each call is admitted (the pre-trade checks, the manager's breakers, then every order
    window at once) before ``submit`` runs; the admission counts the submit for the
    message throttle. ``context`` is a function from the call's :class:`Order` argument to
    its :class:`~haltgate.OrderContext`; it runs before any window is touched, and if it
    raises or returns something else the order is refused (``order context failed``),
    never sent unjudged. A refused call raises :class:`~haltgate.engine.OrderRefusedError`
    with the blocking reasons (an :class:`Order` argument is marked REJECTED with
    ``"check_name: reason"`` for a check's refusal) and ``submit`` is not called.
    An exception from ``submit`` is recorded with ``manager.record_error`` and re-raised.
    """
    if not callable(submit):
        raise InvalidTypeError("submit", submit, "must be callable")
    if context is not None and not callable(context):
        raise InvalidTypeError(
            "context", context, "must be a function from an Order to its OrderContext"
        )
    gate = OrderGate(manager)
    where = {"function": getattr(submit, "__qualname__", "")}

    def context_of(order: Order | None) -> OrderContext | None:
        if context is None or order is None:
            return None
        try:
            built = context(order)
            if not isinstance(built, OrderContext):
                raise InvalidTypeError(
                    "context", built, "the context function must return an OrderContext"
                )
        except Exception as exc:
            # The user's function failed: the order is refused, not sent without its checks.
            logger.error(
                "order_context_failed", extra={"error": repr(exc)[:500], "order_id": order.id}
            )
            reason = f"order context failed: {type(exc).__name__}: {exc}"
            gate.admit(order, refusals=[reason], details=where)
            raise OrderRefusedError([reason], order) from exc
        return built

    def admit_or_raise(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Order | None:
        order = _find_order(args, kwargs)
        reasons = gate.admit(order, context=context_of(order), details=where)
        if reasons:
            raise OrderRefusedError(reasons, order)
        return order

    async def finish(result: Awaitable[Any], order: Order | None) -> Any:
        try:
            return await result
        except Exception as exc:
            gate.failed(exc, order)
            raise

    if inspect.iscoroutinefunction(submit):

        @functools.wraps(submit)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            order = admit_or_raise(args, kwargs)
            return await finish(submit(*args, **kwargs), order)

        guarded_async.__haltgate_gate__ = gate  # type: ignore[attr-defined]
        return guarded_async

    @functools.wraps(submit)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        order = admit_or_raise(args, kwargs)
        try:
            result = submit(*args, **kwargs)
        except Exception as exc:
            gate.failed(exc, order)
            raise
        if inspect.isawaitable(result):
            # A sync function handing back a coroutine (a partial of an async function):
            # the broker's failure surfaces when it is awaited, so record it there.
            return finish(result, order)
        return result

    guarded.__haltgate_gate__ = gate  # type: ignore[attr-defined]
    return guarded
