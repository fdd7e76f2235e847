"""MaxPosition: the position limit per symbol, counting the working orders (SPEC §10)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..orders import Order
from ..values import DECIMAL_CONTEXT, Number, to_positive
from .base import OrderCheck, fmt, per_symbol_limits
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts

__all__ = ["MaxPosition"]

_multiply = DECIMAL_CONTEXT.multiply
_KEYS = ("max_quantity", "max_notional")


def _symbol_limits(value: Any, name: str) -> tuple[Decimal | None, Decimal | None]:
    """One ``per_symbol`` entry: a mapping with ``max_quantity`` and/or ``max_notional``."""
    if not isinstance(value, Mapping):
        raise InvalidTypeError(
            name, value, "must be a mapping with max_quantity and/or max_notional"
        )
    unknown = sorted(str(k) for k in value if k not in _KEYS)
    if unknown:
        raise InvalidInputError(name, value, f"unknown limits {unknown} (have {list(_KEYS)})")
    if not value:
        raise InvalidInputError(name, value, "must give max_quantity and/or max_notional")
    quantity = value.get("max_quantity")
    notional = value.get("max_notional")
    return (
        None if "max_quantity" not in value else to_positive(quantity, f"{name}.max_quantity"),
        None if "max_notional" not in value else to_positive(notional, f"{name}.max_notional"),
    )


class MaxPosition(OrderCheck):
    """Refuses an order when the position after it and the working orders on its side
    (:func:`~haltgate.checks.exposure.position_after`) would exceed ``max_quantity`` in
    size, or ``max_notional`` in value at the order's price (limit, else reference; no
    price: refused). Exactly the limit passes. ``per_symbol`` maps a symbol to a mapping
    ``{"max_quantity": ..., "max_notional": ...}`` whose limits replace the defaults for
    that symbol (a limit left out keeps the default). Deny code ``max_position``; reducing
    orders are exempt (a flip or a growth is judged)."""

    name = "max_position"
    exempts_reducing = True
    uses_facts = True

    def __init__(
        self,
        max_quantity: Number | None = None,
        *,
        max_notional: Number | None = None,
        per_symbol: Any = None,
    ) -> None:
        if max_quantity is None and max_notional is None and not per_symbol:
            raise InvalidTypeError(
                "max_quantity", None, "give max_quantity, max_notional or per_symbol limits"
            )
        self.max_quantity = (
            None if max_quantity is None else to_positive(max_quantity, "max_quantity")
        )
        self.max_notional = (
            None if max_notional is None else to_positive(max_notional, "max_notional")
        )
        entries = per_symbol_limits(per_symbol, convert=_symbol_limits)
        self.per_symbol: dict[str, tuple[Decimal | None, Decimal | None]] = {
            symbol: (
                self.max_quantity if quantity is None else quantity,
                self.max_notional if notional is None else notional,
            )
            for symbol, (quantity, notional) in entries.items()
        }
        self._default = (self.max_quantity, self.max_notional)

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        assert facts is not None  # uses_facts: the manager always passes them
        per_symbol = self.per_symbol
        max_quantity, max_notional = (
            per_symbol.get(order.symbol, self._default) if per_symbol else self._default
        )
        after = facts.after
        size = after.copy_abs()
        if max_quantity is not None and size > max_quantity:
            return self.refuse(
                f"{fmt(size)} > {fmt(max_quantity)} "
                f"({order.symbol} position {fmt(context.position)} -> {fmt(after)})"
            )
        if max_notional is not None:
            price = facts.price
            if price is None:
                return self.refuse(f"no price to value the position ({order.symbol})")
            value = _multiply(size, price)
            if value > max_notional:
                return self.refuse(
                    f"{fmt(value)} > {fmt(max_notional)} ({order.symbol} position "
                    f"{fmt(context.position)} -> {fmt(after)} @ {fmt(price)})"
                )
        return None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_quantity": self.max_quantity,
            "max_notional": self.max_notional,
            "per_symbol": {
                s: {"max_quantity": q, "max_notional": n} for s, (q, n) in self.per_symbol.items()
            },
        }
