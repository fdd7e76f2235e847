"""MaxOrderQuantity: the fat-finger size limit (SPEC §10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..orders import Order
from ..values import Number, to_positive
from .base import OrderCheck, fmt, per_symbol_limits
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts

__all__ = ["MaxOrderQuantity"]


class MaxOrderQuantity(OrderCheck):
    """Refuses an order whose quantity is above ``max_quantity`` (strictly: exactly the
    limit passes). ``per_symbol`` maps a symbol to its own limit. Deny code
    ``max_order_quantity``; reducing orders are exempt."""

    name = "max_order_quantity"
    exempts_reducing = True

    def __init__(self, max_quantity: Number, *, per_symbol: Any = None) -> None:
        self.max_quantity = to_positive(max_quantity, "max_quantity")
        self.per_symbol = per_symbol_limits(per_symbol)

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        per_symbol = self.per_symbol
        limit = per_symbol.get(order.symbol, self.max_quantity) if per_symbol else self.max_quantity
        if order.quantity > limit:
            return self.refuse(f"{fmt(order.quantity)} > {fmt(limit)} ({order.symbol})")
        return None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_quantity": self.max_quantity,
            "per_symbol": dict(self.per_symbol),
        }
