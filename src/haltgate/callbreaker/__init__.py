"""The call breaker: CLOSED / OPEN / HALF_OPEN protection for broker and exchange API calls.

See ``docs/call-breaker.md``. Public names: :class:`CircuitBreaker`,
:class:`CircuitBreakerConfig`, :class:`CircuitState`, :class:`CircuitType`.
"""

from __future__ import annotations

from .breaker import CircuitBreaker
from .config import CircuitBreakerConfig
from .state import CircuitState, CircuitType

__all__ = ["CircuitBreaker", "CircuitBreakerConfig", "CircuitState", "CircuitType"]
