"""ExecutionThrottle: repeated orders for one symbol and side (MiFID II RTS 6 Art. 15(3)).

The check counts admitted orders per (symbol, side) in its window. The order that would
make more than ``max_orders`` is refused with ``execution_throttle`` and trips the latched
breaker ``execution_throttle``
(:class:`~haltgate.breakers.execution_throttle.ExecutionThrottleBreaker`), which the
manager registers when the check is added: from then on every order is refused until a
named operator resets it (and the reset empties the window).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..breakers.base import BaseCircuitBreaker
from ..breakers.execution_throttle import ExecutionThrottleBreaker
from ..orders import Order, OrderSide
from ..values import Number
from .base import OrderCheck, window_spec
from .context import OrderDecision

__all__ = ["ExecutionThrottle"]

_BUY = OrderSide.BUY


class ExecutionThrottle(OrderCheck):
    """At most ``max_orders`` admitted orders for one symbol and side in any
    ``window_seconds``; the next one is refused and trips the latched breaker
    ``execution_throttle`` (see the module docstring). Deny code ``execution_throttle``."""

    name = "execution_throttle"

    def __init__(self, max_orders: int, window_seconds: Number) -> None:
        self.window = window_spec(self.name, max_orders, "max_orders", window_seconds)
        self.max_orders = self.window.limit
        self.window_seconds = self.window.window_seconds
        self.breaker = ExecutionThrottleBreaker(name=self.name)
        self.breaker.on_evidence_reset = self.clear_window

    def window_key(self, order: Order | None) -> Hashable:
        assert order is not None
        return (order.symbol, order.side is _BUY)  # a bool hashes faster than the enum

    def window_refusal(self, order: Order | None, count: int) -> OrderDecision:
        assert order is not None
        return self.refuse(
            f"{count + 1} > {self.max_orders} orders for {order.symbol} {order.side.value} "
            f"in {self.window_seconds:g}s"
        )

    def window_refused(self, decision: OrderDecision, order: Order | None) -> None:
        assert order is not None
        # The breaker's reason is the check's: status reads "execution_throttle: 4 > 3 ...".
        self.breaker._trip(
            str(decision.reason),
            {
                "threshold": self.max_orders,
                "observed": self.max_orders + 1,
                "window_seconds": self.window_seconds,
                "symbol": order.symbol,
                "side": order.side.value,
                "code": "execution_throttle",
            },
        )

    def companion_breaker(self) -> BaseCircuitBreaker | None:
        return self.breaker

    def adopt_companion(self, breaker: BaseCircuitBreaker) -> None:
        assert isinstance(breaker, ExecutionThrottleBreaker)
        self.breaker = breaker
        breaker.on_evidence_reset = self.clear_window

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_orders": self.max_orders,
            "window_seconds": self.window_seconds,
        }
