"""The breakers behind :class:`~haltgate.TradingCircuitBreakers`, built from its config.

The README's six types map onto the section-3 breakers; the rate limit is two order-rate
breakers (per minute and per hour) so that the manager's atomic ``record_order`` covers
both windows at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..breakers.base import BaseCircuitBreaker
from ..breakers.concentration import PositionConcentrationCircuitBreaker
from ..breakers.connection import ConnectionCircuitBreaker
from ..breakers.order_rate import OrderRateCircuitBreaker
from ..breakers.state import CircuitBreakerType
from ..breakers.threshold import ThresholdCircuitBreaker
from ..breakers.volatility import VolatilityCircuitBreaker
from ..clock import Clock
from ..events import BreakerEvent
from ..values import DECIMAL_CONTEXT, Number
from .config import TradingBreakerConfig

__all__ = [
    "CONCENTRATION",
    "CONNECTION",
    "DAILY_LOSS",
    "MAX_DRAWDOWN",
    "ORDERS_PER_HOUR",
    "ORDERS_PER_MINUTE",
    "VOLATILITY",
    "FacadeBreakers",
    "LatchingVolatilityCircuitBreaker",
    "build_breakers",
]

DAILY_LOSS = "daily_loss"
MAX_DRAWDOWN = "max_drawdown"
CONCENTRATION = "position_concentration"
VOLATILITY = "volatility"
ORDERS_PER_MINUTE = "orders_per_minute"
ORDERS_PER_HOUR = "orders_per_hour"
CONNECTION = "connection"


class LatchingVolatilityCircuitBreaker(VolatilityCircuitBreaker):
    """A volatility breaker that, without ``auto_clear``, stays tripped until reset."""

    def __init__(
        self,
        std_threshold: Number,
        lookback: int,
        cooldown_seconds: Number,
        *,
        auto_clear: bool,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(std_threshold, lookback, cooldown_seconds, name=name, clock=clock)
        self.auto_clear = auto_clear

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        if self.auto_clear:
            super()._refresh_locked(events)


@dataclass(frozen=True)
class FacadeBreakers:
    """The facade's breakers by role."""

    daily_loss: ThresholdCircuitBreaker
    max_drawdown: ThresholdCircuitBreaker
    concentration: PositionConcentrationCircuitBreaker
    volatility: LatchingVolatilityCircuitBreaker
    per_minute: OrderRateCircuitBreaker
    per_hour: OrderRateCircuitBreaker
    connection: ConnectionCircuitBreaker

    def all(self) -> tuple[BaseCircuitBreaker, ...]:
        """Every breaker, in the order of the README's table."""
        return (
            self.daily_loss,
            self.max_drawdown,
            self.concentration,
            self.volatility,
            self.per_minute,
            self.per_hour,
            self.connection,
        )


def build_breakers(config: TradingBreakerConfig) -> FacadeBreakers:
    """Make the breakers ``config`` describes (clockless: the manager hands them its clock)."""
    recovery = config.cooldown_seconds if config.auto_recovery else None
    return FacadeBreakers(
        daily_loss=ThresholdCircuitBreaker(
            CircuitBreakerType.DAILY_LOSS,
            config.daily_loss_limit_pct,
            warning=config.daily_loss_warning_pct,
            recovery_seconds=recovery,
            calendar=config.calendar,
            label="Daily P&L",
            name=DAILY_LOSS,
        ),
        max_drawdown=ThresholdCircuitBreaker(
            CircuitBreakerType.DRAWDOWN,
            config.max_drawdown_pct,
            warning=config.drawdown_warning_pct,
            recovery_seconds=None if config.require_manual_reset else recovery,
            label="Drawdown",
            name=MAX_DRAWDOWN,
        ),
        concentration=PositionConcentrationCircuitBreaker(
            DECIMAL_CONTEXT.divide(config.max_position_pct, 100), name=CONCENTRATION
        ),
        volatility=LatchingVolatilityCircuitBreaker(
            config.volatility_std_threshold,
            config.volatility_lookback_days,
            config.cooldown_seconds,
            auto_clear=config.auto_recovery,
            name=VOLATILITY,
        ),
        per_minute=OrderRateCircuitBreaker(
            config.max_orders_per_minute, window_seconds=60, name=ORDERS_PER_MINUTE
        ),
        per_hour=OrderRateCircuitBreaker(
            config.max_orders_per_hour, window_seconds=3600, name=ORDERS_PER_HOUR
        ),
        connection=ConnectionCircuitBreaker(
            config.connection_failure_threshold,
            config.connection_timeout_seconds,
            name=CONNECTION,
        ),
    )
