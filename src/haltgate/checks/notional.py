"""MaxOrderNotional: the fat-finger value limit (SPEC §10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..orders import Order
from ..values import Number, to_positive
from .base import OrderCheck, fmt, per_symbol_limits
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts

__all__ = ["MaxOrderNotional"]


class MaxOrderNotional(OrderCheck):
    """Refuses an order whose quantity * price is above ``max_notional`` (exactly the
    limit passes). The price is the limit price, else the context's reference price; an
    order with neither cannot be valued and is refused (fail closed). ``per_symbol`` maps a
    symbol to its own limit. Deny code ``max_order_notional``; reducing orders are exempt."""

    name = "max_order_notional"
    exempts_reducing = True
    uses_facts = True

    def __init__(self, max_notional: Number, *, per_symbol: Any = None) -> None:
        self.max_notional = to_positive(max_notional, "max_notional")
        self.per_symbol = per_symbol_limits(per_symbol)

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        assert facts is not None  # uses_facts: the manager always passes them
        notional, price = facts.notional, facts.price
        if notional is None or price is None:  # both or neither
            return self.refuse(f"no price to value the order ({order.symbol})")
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
