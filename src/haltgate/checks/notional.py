"""MaxOrderNotional: the fat-finger value limit (SPEC §10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..orders import Order
from ..values import DECIMAL_CONTEXT, Number, to_positive
from .base import OrderCheck, fmt, per_symbol_limits
from .context import OrderContext, OrderDecision

__all__ = ["MaxOrderNotional"]

_multiply = DECIMAL_CONTEXT.multiply


class MaxOrderNotional(OrderCheck):
    """Refuses an order whose quantity * price is above ``max_notional`` (exactly the
    limit passes). The price is the limit price, else the context's reference price; an
    order with neither cannot be valued and is refused (fail closed). ``per_symbol`` maps a
    symbol to its own limit. Deny code ``max_order_notional``; reducing orders are exempt."""

    name = "max_order_notional"
    exempts_reducing = True

    def __init__(self, max_notional: Number, *, per_symbol: Any = None) -> None:
        self.max_notional = to_positive(max_notional, "max_notional")
        self.per_symbol = per_symbol_limits(per_symbol)

    def _judge(
        self, order: Order, context: OrderContext, now: datetime | None
    ) -> OrderDecision | None:
        price = order.limit_price
        if price is None:
            price = context.reference_price
        if price is None:
            return self.refuse(f"no price to value the order ({order.symbol})")
        notional = _multiply(order.quantity, price)
        per_symbol = self.per_symbol
        limit = per_symbol.get(order.symbol, self.max_notional) if per_symbol else self.max_notional
        if notional > limit:
            return self.refuse(
                f"{fmt(notional)} > {fmt(limit)} "
                f"({order.symbol} {fmt(order.quantity)} @ {fmt(price)})"
            )
        return None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_notional": self.max_notional,
            "per_symbol": dict(self.per_symbol),
        }
