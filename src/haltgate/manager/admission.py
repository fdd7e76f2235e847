"""The manager's admission path: one order through the breakers and every order window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..checks.context import OrderContext, OrderDecision, checked_context
from ..errors import (
    InvalidTypeError,
    StoreUnavailableError,
)
from ..events import BreakerEvent, EventKind
from ..orders import Order
from ..values import to_text
from .checks import TradingChecks
from .pretrade import NO_CHECKS, OrderChecks, checked_order
from .state import NEVER
from .windows import admit_to_windows

__all__ = ["OrderAdmission"]


def _checked_details(details: Any) -> Mapping[str, Any] | None:
    """Event details given by a caller: a mapping or None."""
    if details is not None and not isinstance(details, Mapping):
        raise InvalidTypeError("details", details, "must be a mapping (e.g. a dict) or None")
    return details


class OrderAdmission(TradingChecks, OrderChecks):
    """``record_order``/``admit_order`` (the checks, the breakers, the windows), refusals
    and errors."""

    # ------------------------------------------------------------------ orders and errors
    def record_order(self) -> bool:
        """Admit and record one order in every order-rate breaker, or refuse it.

        Atomic across the rate breakers: either every window records the order or none
        does. Refused too while any breaker blocks trading. A refusal emits an
        ``order_refused`` event.
        """
        return not self.admit_order()

    def admit_order(
        self,
        *,
        order: Order | None = None,
        context: OrderContext | None = None,
        reduce_only: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Like :meth:`record_order`, but returns why the order was refused (empty list:
        admitted and recorded).

        With ``order`` (and its ``context``, an :class:`~haltgate.OrderContext`; ``None``
        is a flat account with no price) the pre-trade checks judge it first (SPEC §10),
        then the breakers, then every order window at once (the order-rate windows and the
        checks' duplicate and throttle windows): an order refused anywhere uses no slot in
        any window. A check's refusal reads ``"check_name: reason"`` and its
        ``order_refused`` event carries the deny code in ``details["code"]``. When a check
        judges orders, an admission without ``order`` is refused with a typed error (the
        order cannot be judged; it is never let through unjudged).

        ``reduce_only=True`` is for an order that only shrinks a position: trips of the risk
        breakers do not stop it, but a manual halt (the kill switch), a breaker whose trip
        halts everything (the execution throttle) and a full or tripped order window still
        do. ``details`` (e.g. the order's symbol and side) are added to the
        ``order_refused`` event.
        """
        # Strictly a bool: a truthy string such as "False" must not bypass the risk breakers.
        if type(reduce_only) is not bool:
            raise InvalidTypeError("reduce_only", reduce_only, "must be True or False")
        details = _checked_details(details)
        plan = self._check_plan
        if order is not None or context is not None or plan is not NO_CHECKS:
            # The common types are recognised inline (no call); anything else is refused.
            if type(order) is not Order:
                order = checked_order(order)
            if type(context) is not OrderContext:
                context = checked_context(context)
            if order is None and plan.needs_order:
                raise InvalidTypeError(
                    "order", None, "order checks are configured: admit_order needs the order"
                )
        store_reason = self._store_blocking()
        if store_reason is not None:
            # Fail-closed: without the store no process can know about a kill switch.
            self._refuse(f"trading is blocked: {store_reason}", details, [store_reason], order)
            return [store_reason]
        if order is not None and plan.judged:
            assert context is not None
            now = self._clock.now() if plan.needs_time else None
            decision = plan.judge(order, context, now)
            if decision is not None:
                return self._refuse_by_check(decision, details, order)
        if reduce_only:
            halted = [
                f"{b.name}: {b.get_trip_reason()}"
                for b in self._ordered
                if b.is_halted or (type(b).contract.halts_all and b.is_tripped)
            ]
            if halted:
                self._refuse(
                    "trading is manually halted: " + "; ".join(halted), details, halted, order
                )
                return halted
        elif not self._others_quiet() and not self.can_trade():
            blocking = self.get_blocking_reasons() or ["trading is blocked"]
            self._refuse("trading is blocked: " + "; ".join(blocking), details, blocking, order)
            return blocking
        windowed = plan.windowed
        try:
            if windowed:
                refused_by, index, count = admit_to_windows(
                    self._rate_breakers,
                    plan.slots,
                    order,
                    self._checks_lock,
                    self._monotonic(),
                    self._shared_windows,
                )
            else:
                refused_by, index, count = admit_to_windows(
                    self._rate_breakers, shared=self._shared_windows
                )
        except StoreUnavailableError as exc:
            # A shared order window that cannot be reached admits nothing (fail-closed).
            reason = f"store: {exc}"
            self._refuse(f"trading is blocked: {exc}", details, [reason], order)
            return [reason]
        if index >= 0:
            check = windowed[index]
            decision = check.window_refusal(order, count)
            check.window_refused(decision, order)
            return self._refuse_by_check(decision, details, order)
        if refused_by is None:
            return []
        why = refused_by.get_trip_reason() or "order window full"
        self._refuse(
            f"order window of {refused_by.name} is full",
            details,
            [f"{refused_by.name}: {why}"],
            order,
        )
        return [f"{refused_by.name}: {why}"]

    def _refuse_by_check(
        self,
        decision: OrderDecision,
        details: Mapping[str, Any] | None,
        order: Order | None,
    ) -> list[str]:
        """Count, announce and return a check's refusal (``"check_name: reason"``)."""
        code = decision.code
        assert code is not None
        self._count_refusal(code)
        refusal = f"{decision.check}: {decision.reason}"
        info = {**(details or {}), "code": code, "check": decision.check}
        self._refuse(f"order refused: {refusal}", info, [refusal], order)
        return [refusal]

    def _others_quiet(self) -> bool:
        """Every breaker but the order windows is known to allow trading (fast path)."""
        if not self._quiet_others:
            return False
        until = self._quiet_until
        return until is NEVER or self._monotonic() < until

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
        order: Order | None = None,
    ) -> None:
        if order is not None:
            details = {**order.summary(), **(details or {})}
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
