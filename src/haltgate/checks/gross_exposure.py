"""MaxGrossExposure: the account's gross exposure limit (SPEC §10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import InvalidTypeError
from ..orders import Order
from ..values import DECIMAL_CONTEXT, Number, to_positive
from .base import OrderCheck, fmt
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts

__all__ = ["MaxGrossExposure"]

_multiply = DECIMAL_CONTEXT.multiply
_add = DECIMAL_CONTEXT.add


class MaxGrossExposure(OrderCheck):
    """Refuses an order when the context's ``gross_exposure`` plus this order's notional
    (quantity * limit price, else reference price) would exceed the limit: ``max_exposure``
    (money) and/or ``max_fraction_of_equity`` * the context's ``equity`` (a positive
    multiple, so ``2`` allows 2x leverage); with both, the lower applies. Exactly the limit
    passes. No price, or a fraction without equity in the context, is refused (fail closed).
    Deny code ``max_gross_exposure``; reducing orders are exempt."""

    name = "max_gross_exposure"
    exempts_reducing = True
    uses_facts = True

    def __init__(
        self,
        max_exposure: Number | None = None,
        *,
        max_fraction_of_equity: Number | None = None,
    ) -> None:
        if max_exposure is None and max_fraction_of_equity is None:
            raise InvalidTypeError(
                "max_exposure", None, "give max_exposure and/or max_fraction_of_equity"
            )
        self.max_exposure = (
            None if max_exposure is None else to_positive(max_exposure, "max_exposure")
        )
        self.max_fraction_of_equity = (
            None
            if max_fraction_of_equity is None
            else to_positive(max_fraction_of_equity, "max_fraction_of_equity")
        )
        self._fraction_at_least_one = (
            self.max_fraction_of_equity is not None and self.max_fraction_of_equity >= 1
        )

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        assert facts is not None  # uses_facts: the manager always passes them
        notional = facts.notional
        if notional is None:
            return self.refuse(f"no price to value the order ({order.symbol})")
        total = _add(context.gross_exposure, notional)
        limit = self.max_exposure
        fraction = self.max_fraction_of_equity
        if limit is not None and total > limit:
            return self.refuse(self._reason(total, fmt(limit), context, notional))
        if fraction is not None:
            equity = context.equity
            if equity is None:
                return self.refuse(f"no equity in the context to apply {fmt(fraction)} * equity")
            # With a fraction of at least 1, a total within the equity is within
            # fraction * equity (the total is > 0, so the equity is too): no product needed.
            if self._fraction_at_least_one and total <= equity:
                return None
            allowed = _multiply(fraction, equity)
            if total > allowed:
                limit_text = f"{fmt(allowed)} = {fmt(fraction)} * equity {fmt(equity)}"
                return self.refuse(self._reason(total, limit_text, context, notional))
        return None

    @staticmethod
    def _reason(total: Any, limit: str, context: OrderContext, notional: Any) -> str:
        return (
            f"{fmt(total)} > {limit} (gross {fmt(context.gross_exposure)} + order {fmt(notional)})"
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_exposure": self.max_exposure,
            "max_fraction_of_equity": self.max_fraction_of_equity,
        }
