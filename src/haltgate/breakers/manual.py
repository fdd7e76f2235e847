"""Manual breaker: the operator's emergency stop."""

from __future__ import annotations

from ..clock import Clock
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import CircuitBreakerType

__all__ = ["ManualCircuitBreaker"]


class ManualCircuitBreaker(BaseCircuitBreaker):
    """Starts NORMAL; :meth:`trigger_halt` (reason and operator required) halts trading
    until :meth:`reset`."""

    contract = BreakerContract()

    def __init__(self, *, name: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(CircuitBreakerType.MANUAL, name=name, clock=clock)
