"""The latched breaker of the repeated-execution throttle (MiFID II RTS 6 Art. 15(3)).

:class:`~haltgate.checks.ExecutionThrottle` trips it when more than its limit of orders for
one symbol and side fall in its window. It is a real breaker: its trip goes through the one
executor (durable, audited, published), shows in every status view, and blocks every order
(reducing ones too) until a *named* operator resets it. A reset drops the throttle's window
(the operator acknowledged the burst; the audit records who), here and, through the
adoption of the reset, in every other process.
"""

from __future__ import annotations

from collections.abc import Callable

from ..clock import Clock
from ..errors import InvalidTypeError
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import CircuitBreakerType

__all__ = ["ExecutionThrottleBreaker"]


class ExecutionThrottleBreaker(BaseCircuitBreaker):
    """Latched: trips when :class:`~haltgate.checks.ExecutionThrottle` refuses an order,
    clears only by :meth:`reset` with an ``operator``. Its type is ``custom`` (the §3 type
    list is fixed); its name is ``execution_throttle``."""

    contract = BreakerContract(reset_needs_operator=True, halts_all=True)

    def __init__(self, *, name: str = "execution_throttle", clock: Clock | None = None) -> None:
        super().__init__(CircuitBreakerType.CUSTOM, name=name, clock=clock)
        # Set by the check when it joins a manager: forgets its window on a reset.
        self.on_evidence_reset: Callable[[], None] | None = None

    def reset(self, operator: str | None = None, reason: str | None = None) -> None:
        """An operator's reset; ``operator`` is required (RTS 6: a named person re-enables
        trading)."""
        if operator is None:
            raise InvalidTypeError(
                "operator", operator, "the execution throttle is reset only by a named operator"
            )
        super().reset(operator=operator, reason=reason)

    def _on_reset(self) -> None:
        # Lock held. The window that tripped us starts empty: a reset that left it full
        # would re-trip on the next order of that symbol and side.
        hook = self.on_evidence_reset
        if hook is not None:
            hook()
