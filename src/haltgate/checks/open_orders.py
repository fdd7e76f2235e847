"""MaxOpenOrders: a cap on working orders (SPEC §10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..orders import Order
from ..values import to_count
from .base import OrderCheck
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts

__all__ = ["MaxOpenOrders"]


class MaxOpenOrders(OrderCheck):
    """Refuses an order while the context lists ``max_open`` or more working orders (the
    order would make one more than the limit; ``max_open - 1`` working orders pass). Counts
    every order in ``context.open_orders`` (any symbol) except the order itself. Deny code
    ``max_open_orders``; reducing orders are exempt."""

    name = "max_open_orders"
    exempts_reducing = True

    def __init__(self, max_open: int) -> None:
        self.max_open = to_count(max_open, "max_open")

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        working = context.open_orders
        count = len(working)
        if count >= self.max_open:
            if any(other is order for other in working):
                count -= 1
                if count < self.max_open:
                    return None
            return self.refuse(f"{count} >= {self.max_open} working orders")
        return None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "max_open": self.max_open}
