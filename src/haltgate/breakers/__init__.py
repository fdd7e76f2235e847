"""The trading breakers: one file per breaker over :class:`BaseCircuitBreaker`."""

from .base import BaseCircuitBreaker, BreakerSink, TripInfo
from .concentration import PositionConcentrationCircuitBreaker
from .connection import ConnectionCircuitBreaker
from .daily_loss import DailyLossCircuitBreaker
from .drawdown import DrawdownCircuitBreaker
from .error_rate import ErrorRateCircuitBreaker
from .manual import ManualCircuitBreaker
from .order_rate import LocalRateWindow, OrderRateCircuitBreaker, RateWindow
from .state import BLOCKING_STATES, CircuitBreakerState, CircuitBreakerType
from .volatility import VolatilityCircuitBreaker

__all__ = [
    "BLOCKING_STATES",
    "BaseCircuitBreaker",
    "BreakerSink",
    "CircuitBreakerState",
    "CircuitBreakerType",
    "ConnectionCircuitBreaker",
    "DailyLossCircuitBreaker",
    "DrawdownCircuitBreaker",
    "ErrorRateCircuitBreaker",
    "LocalRateWindow",
    "ManualCircuitBreaker",
    "OrderRateCircuitBreaker",
    "PositionConcentrationCircuitBreaker",
    "RateWindow",
    "TripInfo",
    "VolatilityCircuitBreaker",
]
