"""Shared pieces of the engine tests: a ManualClock-driven manager, bars, a recording listener."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from haltgate import BreakerEvent, CircuitBreakerManager, ManualClock

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def minute_bars(
    prices: Iterable[Any], *, symbol: str = "XYZ", start: datetime = START, step: int = 60
) -> list[dict[str, Any]]:
    """One bar per ``step`` seconds at the given closes."""
    return [
        {
            "timestamp": start + timedelta(seconds=i * step),
            "symbol": symbol,
            "close": Decimal(str(p)),
        }
        for i, p in enumerate(prices)
    ]


def manager(*breakers: Any, start: datetime = START) -> tuple[CircuitBreakerManager, ManualClock]:
    clock = ManualClock(start)
    mgr = CircuitBreakerManager(clock=clock)
    for breaker in breakers:
        mgr.add_breaker(breaker)
    return mgr, clock


class Recorder:
    """A listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list[BreakerEvent] = []

    def __call__(self, event: BreakerEvent) -> None:
        self.events.append(event)

    def kinds(self, kind: str) -> list[BreakerEvent]:
        return [e for e in self.events if e.kind == kind]
