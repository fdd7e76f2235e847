"""The states of the call breaker and the kinds of circuit it can protect."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CircuitState", "CircuitType"]


class CircuitState(StrEnum):
    """Where a call breaker is in its cycle.

    ``CLOSED`` admits every call; ``OPEN`` refuses every call until its timeout passes;
    ``HALF_OPEN`` admits a few probe calls to decide between ``CLOSED`` and ``OPEN``;
    ``FORCED_OPEN`` refuses every call until an operator calls ``force_close()`` or
    ``reset()``.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"


class CircuitType(StrEnum):
    """What a call breaker protects (a label carried by its events and callbacks)."""

    TRADING_LOSS = "trading_loss"
    TRADING_POSITION = "trading_position"
    CONNECTION_FAILURE = "connection_failure"
    PERFORMANCE_LATENCY = "performance_latency"
    RATE_LIMIT = "rate_limit"
    MARKET_VOLATILITY = "market_volatility"
