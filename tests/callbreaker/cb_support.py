"""Helpers shared by the call-breaker tests."""

from __future__ import annotations

from typing import Any

import pytest

from haltgate import CircuitBreaker, CircuitBreakerConfig, CircuitType, ManualClock


class Boom(Exception):
    """The protected function's failure in these tests."""


def make(clock: ManualClock | None = None, **settings: Any) -> CircuitBreaker:
    """A breaker on a ManualClock (a fresh one unless given) with ``settings``."""
    return CircuitBreaker(
        "api",
        CircuitType.CONNECTION_FAILURE,
        CircuitBreakerConfig(**settings),
        clock=clock if clock is not None else ManualClock(),
    )


def boom() -> None:
    """Always fails."""
    raise Boom("broker unreachable")


def ok() -> str:
    """Always succeeds."""
    return "ok"


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    """Run ``times`` failing calls through ``breaker`` (each must reach the function)."""
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call_sync(boom)


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    """Run ``times`` successful calls through ``breaker``."""
    for _ in range(times):
        assert breaker.call_sync(ok) == "ok"
