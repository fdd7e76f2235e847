"""What an order check knows besides the order (:class:`OrderContext`) and what it says
(:class:`OrderDecision`). Both are immutable and validated like every input (SPEC §2):
amounts become exact Decimals, prices must be > 0, times must be timezone-aware."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..orders import Order
from ..values import Number, to_decimal, to_non_negative, to_positive, to_text

__all__ = ["ALLOWED", "EMPTY_CONTEXT", "OrderContext", "OrderDecision", "checked_context"]

_ZERO = Decimal(0)


def _aware(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidTypeError(name, value, "must be a timezone-aware datetime or None")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(name, value, "must be timezone-aware (e.g. UTC)")
    return value


@dataclass(frozen=True, slots=True, init=False)
class OrderContext:
    """What the checks need to know about the account when judging one order.

    * ``position``: the signed position in the order's symbol (long > 0, short < 0);
    * ``reference_price``: the market price to compare with (> 0), and ``price_time``,
      when it was observed (aware); a price without a time is never taken as fresh;
    * ``equity``: the account's value (for ``MaxGrossExposure(max_fraction_of_equity=)``);
    * ``open_orders``: the account's working orders (:class:`~haltgate.engine.Order`, any
      symbol); the unfilled part of those in the order's symbol and on its side counts
      towards the position (the order itself is never counted twice);
    * ``gross_exposure``: the account's gross exposure in money (>= 0), without this order.

    The engine builds it from its broker and data portal; ``manager.guard(submit,
    context=fn)`` takes a function from the order to its context.
    """

    position: Decimal
    reference_price: Decimal | None
    price_time: datetime | None
    equity: Decimal | None
    open_orders: tuple[Order, ...]
    gross_exposure: Decimal

    def __init__(
        self,
        position: Number = 0,
        reference_price: Number | None = None,
        price_time: datetime | None = None,
        equity: Number | None = None,
        open_orders: Iterable[Order] = (),
        gross_exposure: Number = 0,
    ) -> None:
        # Every value converted before any is set: a refused context is never half built.
        pos = to_decimal(position, "position")
        ref = None if reference_price is None else to_positive(reference_price, "reference_price")
        when = _aware(price_time, "price_time")
        eq = None if equity is None else to_decimal(equity, "equity")
        if isinstance(open_orders, str | bytes | Order) or not isinstance(open_orders, Iterable):
            raise InvalidTypeError("open_orders", open_orders, "must be a sequence of Orders")
        working = tuple(open_orders)
        for item in working:
            if not isinstance(item, Order):
                raise InvalidTypeError("open_orders", item, "must be a sequence of Orders")
        gross = to_non_negative(gross_exposure, "gross_exposure")
        set_ = object.__setattr__
        set_(self, "position", pos)
        set_(self, "reference_price", ref)
        set_(self, "price_time", when)
        set_(self, "equity", eq)
        set_(self, "open_orders", working)
        set_(self, "gross_exposure", gross)


EMPTY_CONTEXT = OrderContext()
"""The context of an order given without one: flat, no price, no working orders."""


def checked_context(context: Any) -> OrderContext:
    """``context`` if it is an :class:`OrderContext`, :data:`EMPTY_CONTEXT` for ``None``;
    anything else is refused naming ``context``."""
    if context is None:
        return EMPTY_CONTEXT
    if type(context) is OrderContext or isinstance(context, OrderContext):
        return context
    raise InvalidTypeError("context", context, "must be an OrderContext or None")


@dataclass(frozen=True, slots=True, init=False)
class OrderDecision:
    """The verdict on one order: ``allowed``, or refused by the check named ``check`` with
    the deny ``code`` (SPEC §10's table) and a ``reason`` that names the limit and the
    observed value (e.g. ``"150000 > 1000 (SPY)"``). A refused order is REJECTED with
    ``f"{check}: {reason}"``."""

    allowed: bool
    code: str | None
    check: str | None
    reason: str | None

    def __init__(
        self,
        allowed: bool,
        code: str | None = None,
        check: str | None = None,
        reason: str | None = None,
    ) -> None:
        if type(allowed) is not bool:
            raise InvalidTypeError("allowed", allowed, "must be True or False")
        if allowed:
            for name, value in (("code", code), ("check", check), ("reason", reason)):
                if value is not None:
                    raise InvalidInputError(name, value, "an allowed decision has none")
        else:
            code = to_text(code, "code")
            check = to_text(check, "check")
            reason = to_text(reason, "reason")
        set_ = object.__setattr__
        set_(self, "allowed", allowed)
        set_(self, "code", code)
        set_(self, "check", check)
        set_(self, "reason", reason)

    @property
    def refusal(self) -> str | None:
        """``"check_name: reason"`` for a refusal (what the order's ``reject_reasons``
        hold), ``None`` when allowed."""
        return None if self.allowed else f"{self.check}: {self.reason}"

    def __bool__(self) -> bool:
        return self.allowed


ALLOWED = OrderDecision(True)
"""The one allowed decision (no allocation per order)."""
