"""The manager's admission path: one order through the breakers and every order window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..breakers.order_rate import OrderRateCircuitBreaker
from ..errors import (
    InvalidTypeError,
    StoreUnavailableError,
)
from ..events import BreakerEvent, EventKind
from ..values import to_text
from .checks import TradingChecks
from .state import NEVER
from .windows import admit_to_windows

__all__ = ["OrderAdmission"]


def _checked_details(details: Any) -> Mapping[str, Any] | None:
    """Event details given by a caller: a mapping or None."""
    if details is not None and not isinstance(details, Mapping):
        raise InvalidTypeError("details", details, "must be a mapping (e.g. a dict) or None")
    return details


class OrderAdmission(TradingChecks):
    """``record_order``/``admit_order``, refusals and errors."""

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
        return until is NEVER or self._monotonic() < until

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
