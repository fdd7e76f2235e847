"""Shared pieces of the order-check tests: a ManualClock-driven manager, orders, contexts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from haltgate import BreakerEvent, CircuitBreakerManager, ManualClock, Order, OrderContext
from haltgate.checks import OrderCheck

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def manager(
    *checks: OrderCheck, breakers: Any = (), store: Any = None
) -> tuple[CircuitBreakerManager, ManualClock]:
    clock = ManualClock(START)
    mgr = CircuitBreakerManager(clock=clock, breakers=breakers, store=store)
    for check in checks:
        mgr.add_check(check)
    return mgr, clock


def buy(qty: Any, symbol: str = "SPY", price: Any = None) -> Order:
    return Order.make(symbol, Decimal(str(qty)), limit_price=price)


def sell(qty: Any, symbol: str = "SPY", price: Any = None) -> Order:
    return Order.make(symbol, -Decimal(str(qty)), limit_price=price)


def priced(clock: ManualClock, price: Any = 100, **kw: Any) -> OrderContext:
    """A context with a fresh reference price."""
    return OrderContext(reference_price=price, price_time=clock.now(), **kw)


class Recorder:
    """A listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list[BreakerEvent] = []

    def __call__(self, event: BreakerEvent) -> None:
        self.events.append(event)

    def kinds(self, kind: str) -> list[BreakerEvent]:
        return [e for e in self.events if e.kind == kind]
