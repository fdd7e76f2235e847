"""DuplicateOrder: the same order twice within a window (SPEC §10)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..orders import Order, OrderSide
from ..values import Number, to_seconds
from .base import OrderCheck, WindowSpec, fmt
from .context import OrderDecision

__all__ = ["DuplicateOrder"]

_BUY = OrderSide.BUY


class DuplicateOrder(OrderCheck):
    """Refuses an order when one with the same symbol, side, quantity and price (limit
    price; market orders share "no price") was *admitted* within the last
    ``window_seconds`` (half-open: one admitted exactly ``window_seconds`` ago no longer
    counts). A refused order is not remembered. Deny code ``duplicate_order``."""

    name = "duplicate_order"

    def __init__(self, window_seconds: Number) -> None:
        self.window_seconds = to_seconds(window_seconds, "window_seconds")
        self.window = WindowSpec(self.name, 1, self.window_seconds)

    def window_key(self, order: Order | None) -> Hashable:
        assert order is not None
        # Decimal("100") and Decimal("100.0") are equal and hash alike: one key. The side
        # as a bool: hashing an enum member runs Python code (Enum.__hash__), on every order.
        return (order.symbol, order.side is _BUY, order.quantity, order.limit_price)

    def window_refusal(self, order: Order | None, count: int) -> OrderDecision:
        assert order is not None
        price = "market" if order.limit_price is None else fmt(order.limit_price)
        return self.refuse(
            f"{order.symbol} {order.side.value} {fmt(order.quantity)} @ {price} "
            f"already admitted within {self.window_seconds:g}s"
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "window_seconds": self.window_seconds}
