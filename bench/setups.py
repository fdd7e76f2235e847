"""The guide's recommended minimum setup, built the way the guide writes it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from haltgate import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)

#: Orders per minute of the recommended setup.
RECOMMENDED_RATE = 10


def recommended_manager(
    *,
    max_orders_per_minute: int = RECOMMENDED_RATE,
    window_seconds: float = 60,
    clock: Any = None,
    store: Any = None,
) -> CircuitBreakerManager:
    """Drawdown 10 %, daily loss 5000, order rate (10 per 60 s unless told), manual."""
    manager = CircuitBreakerManager(clock=clock, store=store)
    manager.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")))
    manager.add_breaker(DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")))
    manager.add_breaker(
        OrderRateCircuitBreaker(
            max_orders_per_minute=max_orders_per_minute, window_seconds=window_seconds
        )
    )
    manager.add_breaker(ManualCircuitBreaker())
    return manager
