"""haltgate quick start: the guide's recommended setup, tripped and reset on a simulated clock.

Run it with ``python examples/quickstart.py``. No network, no real waiting: a ManualClock
moves time forward so that the whole story takes milliseconds.

1. A runaway order loop hits the order-rate limit; the breaker clears by itself a minute later.
2. A burst of broker errors trips the error-rate breaker; it clears once they age out.
3. A slow slide over four days trips the drawdown breaker (no single day loses enough to
   trip the daily-loss breaker); it stays tripped until an operator resets it.
4. An operator pulls the kill switch and later releases it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from haltgate import (
    BreakerEvent,
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    ManualClock,
    OrderRateCircuitBreaker,
)

clock = ManualClock(datetime(2025, 3, 3, 14, 30, tzinfo=UTC))


def say(text: str) -> None:
    print(f"[{clock.now():%a %Y-%m-%d %H:%M:%S}] {text}")


def on_event(event: BreakerEvent) -> None:
    """Every trip, halt and reset reaches the listeners (a reset passes through RESETTING)."""
    if event.kind == "order_refused":
        return  # the story below reports refused orders itself
    who = f" by {event.operator}" if event.operator else ""
    change = f"{event.previous_state} -> {event.state}"
    say(f"  event: {event.breaker_name} {change}{who}: {event.reason}")


def build() -> CircuitBreakerManager:
    """The guide's recommended setup, on the simulated clock."""
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10"), lookback_days=30))
    manager.add_breaker(DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")))
    manager.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=10))
    manager.add_breaker(ErrorRateCircuitBreaker(max_errors=5, window_seconds=300))
    manager.add_breaker(ManualCircuitBreaker())
    manager.add_listener(on_event)
    return manager


def runaway_orders(manager: CircuitBreakerManager) -> None:
    say("1. A bug sends orders in a loop, one every 100 ms")
    sent = refused = 0
    for _ in range(15):
        if manager.record_order():
            sent += 1
        else:
            refused += 1
        clock.advance(0.1)
    say(f"   {sent} orders sent, {refused} refused; can trade: {manager.can_trade()}")
    clock.advance(60)
    say(f"   a minute later the orders have aged out; can trade: {manager.can_trade()}")


def broker_errors(manager: CircuitBreakerManager) -> None:
    say("2. The broker starts failing: six errors in a minute")
    for _ in range(6):
        manager.record_error(TimeoutError("broker did not answer"))
        clock.advance(10)
    say(f"   can trade: {manager.can_trade()}")
    clock.advance(300)
    say(f"   five minutes later the errors have aged out; can trade: {manager.can_trade()}")


def slow_slide(manager: CircuitBreakerManager) -> None:
    say("3. The portfolio slides for four days")
    for value in ("100000", "96000", "92500", "89000"):
        ok = manager.can_trade(current_portfolio_value=Decimal(value))
        say(f"   portfolio {value}: can trade: {ok}")
        if ok:
            clock.advance(86400)
    for name, reason in manager.get_trip_reasons().items():
        say(f"   tripped: {name}: {reason}")
    clock.advance(3600)
    say(f"   an hour later, still latched: {manager.get_status()['drawdown']}")
    manager.reset("drawdown", operator="risk-desk", reason="reviewed the slide")
    say(f"   after the reset the peak starts again at 89000; can trade: {manager.can_trade()}")


def kill_switch(manager: CircuitBreakerManager) -> None:
    say("4. An operator pulls the kill switch")
    manager.halt_all(reason="exchange incident", operator="alice")
    say(f"   order allowed: {manager.record_order()}")
    manager.reset("manual", operator="alice")
    say(f"   released; order allowed: {manager.record_order()}")


def main() -> None:
    manager = build()
    say(f"start: {manager.get_status()}")
    runaway_orders(manager)
    broker_errors(manager)
    slow_slide(manager)
    kill_switch(manager)
    say(f"end: {manager.get_status()}")


if __name__ == "__main__":
    main()
