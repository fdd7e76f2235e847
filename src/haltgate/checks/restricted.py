"""RestrictedSymbols: the restricted list (SPEC §10)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..errors import InvalidTypeError
from ..orders import Order
from ..values import to_text
from .base import OrderCheck
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts

__all__ = ["RestrictedSymbols"]


class RestrictedSymbols(OrderCheck):
    """Refuses every order in a symbol on the list (exact, case-sensitive match, as
    :class:`~haltgate.engine.Order` keeps symbols). Deny code ``restricted_symbol``.
    Not exempt for reducing orders (SPEC §10 names the six checks that are)."""

    name = "restricted_symbol"

    def __init__(self, symbols: Iterable[str]) -> None:
        if isinstance(symbols, str | bytes) or not isinstance(symbols, Iterable):
            raise InvalidTypeError("symbols", symbols, "must be a collection of symbols")
        self.symbols = frozenset(to_text(s, "symbols") for s in symbols)

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        if order.symbol in self.symbols:
            return self.refuse(f"{order.symbol} is on the restricted list")
        return None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "symbols": sorted(self.symbols)}
