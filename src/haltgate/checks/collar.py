"""PriceCollar: a limit too far through the market, or no fresh market price (SPEC §10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..orders import Order, OrderSide
from ..values import DECIMAL_CONTEXT, Number, to_fraction, to_seconds
from .base import OrderCheck, fmt
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts

__all__ = ["PriceCollar"]

_ONE = Decimal(1)
_BUY = OrderSide.BUY
_multiply = DECIMAL_CONTEXT.multiply


class PriceCollar(OrderCheck):
    """Refuses a buy whose limit is above ``reference * (1 + max_deviation)`` or a sell
    whose limit is below ``reference * (1 - max_deviation)`` (exactly at the bound
    passes): deny code ``price_collar``. Any order (market orders too) is refused with
    ``stale_reference_price`` when the context has no reference price, a price without a
    time, or one older than ``max_price_age_seconds`` (exactly that age passes), or a price
    time further ahead of the clock than that age (a clock is wrong: its age is unknown; a
    small skew passes). Reducing orders are exempt from both."""

    name = "price_collar"
    exempts_reducing = True
    needs_time = True

    def __init__(self, max_deviation: Number, *, max_price_age_seconds: Number = 5) -> None:
        self.max_deviation = to_fraction(max_deviation, "max_deviation")
        self.max_price_age_seconds = to_seconds(max_price_age_seconds, "max_price_age_seconds")
        self._max_age = timedelta(seconds=self.max_price_age_seconds)
        self._max_ahead = -self._max_age
        self._up = DECIMAL_CONTEXT.add(_ONE, self.max_deviation)
        self._down = DECIMAL_CONTEXT.subtract(_ONE, self.max_deviation)

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        reference = context.reference_price
        if reference is None:
            return self.refuse(f"no reference price ({order.symbol})", "stale_reference_price")
        when = context.price_time
        if when is None:
            return self.refuse(
                f"reference price {fmt(reference)} has no time ({order.symbol})",
                "stale_reference_price",
            )
        if now is None:  # judged outside a manager: the system's wall time
            now = datetime.now(UTC)
        age = now - when
        if age > self._max_age:
            return self.refuse(
                f"reference price is {age.total_seconds():g}s old > "
                f"{self.max_price_age_seconds:g}s ({order.symbol})",
                "stale_reference_price",
            )
        if age < self._max_ahead:
            # The price claims to come from the future by more than the allowed age: one of
            # the clocks is wrong (a wall clock stepped back), so its age is unknown.
            return self.refuse(
                f"reference price time is {-age.total_seconds():g}s ahead of the clock > "
                f"{self.max_price_age_seconds:g}s ({order.symbol})",
                "stale_reference_price",
            )
        limit = order.limit_price
        if limit is None:
            return None
        if order.side is _BUY:
            bound = _multiply(reference, self._up)
            if limit > bound:
                return self.refuse(
                    f"BUY limit {fmt(limit)} > {fmt(bound)} = reference {fmt(reference)} "
                    f"* (1 + {fmt(self.max_deviation)}) ({order.symbol})"
                )
        else:
            bound = _multiply(reference, self._down)
            if limit < bound:
                return self.refuse(
                    f"SELL limit {fmt(limit)} < {fmt(bound)} = reference {fmt(reference)} "
                    f"* (1 - {fmt(self.max_deviation)}) ({order.symbol})"
                )
        return None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_deviation": self.max_deviation,
            "max_price_age_seconds": self.max_price_age_seconds,
        }
