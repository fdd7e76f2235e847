"""The states and types of the trading breakers."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BLOCKING_STATES", "CircuitBreakerState", "CircuitBreakerType"]


class CircuitBreakerState(StrEnum):
    """State of a trading breaker. ``RESETTING`` is only seen in passing, during a reset."""

    NORMAL = "NORMAL"
    TRIPPED = "TRIPPED"
    MANUALLY_HALTED = "MANUALLY_HALTED"
    RESETTING = "RESETTING"


class CircuitBreakerType(StrEnum):
    """What a breaker watches."""

    DRAWDOWN = "drawdown"
    DAILY_LOSS = "daily_loss"
    ORDER_RATE = "order_rate"
    ERROR_RATE = "error_rate"
    MANUAL = "manual"
    POSITION_CONCENTRATION = "position_concentration"
    VOLATILITY = "volatility"
    CONNECTION = "connection"
    CUSTOM = "custom"


BLOCKING_STATES = frozenset({CircuitBreakerState.TRIPPED, CircuitBreakerState.MANUALLY_HALTED})
