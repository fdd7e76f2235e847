"""The manager of the guide's dialect: :class:`CircuitBreakerManager` (see :mod:`.core`)."""

from .core import CircuitBreakerManager

__all__ = ["CircuitBreakerManager"]
