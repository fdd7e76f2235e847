"""manager.guard(fn): the same gate around sync and async submit functions."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from engine_support import Recorder, manager

from haltgate import (
    ErrorRateCircuitBreaker,
    HaltgateError,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from haltgate.engine import Order, OrderRefusedError, OrderStatus


def test_sync_submit_is_admitted_then_refused_when_the_window_is_full() -> None:
    rate = OrderRateCircuitBreaker(2)
    mgr, clock = manager(rate)
    sent: list[str] = []

    @mgr.guard
    def submit(symbol: str, qty: int) -> str:
        sent.append(symbol)
        return f"ack {symbol} {qty}"

    assert submit("A", 1) == "ack A 1"
    assert submit("B", 1) == "ack B 1"
    with pytest.raises(OrderRefusedError) as refused:
        submit("C", 1)
    assert sent == ["A", "B"]  # the broker never saw C
    assert refused.value.reasons[0].startswith("order_rate")
    assert isinstance(refused.value, HaltgateError)
    assert submit.__name__ == "submit"
    clock.advance(60)
    assert submit("D", 1) == "ack D 1"


def test_async_submit_gets_the_same_gate() -> None:
    rate = OrderRateCircuitBreaker(1)
    manual = ManualCircuitBreaker()
    mgr, _ = manager(rate, manual)
    seen = Recorder()
    mgr.add_listener(seen)
    sent: list[Order] = []

    async def submit(order: Order) -> Order:
        sent.append(order)
        return order

    guarded = mgr.guard(submit)
    assert asyncio.iscoroutinefunction(guarded)

    async def scenario() -> None:
        first = Order.make("XYZ", 5)
        assert await guarded(first) is first
        manual.trigger_halt(reason="operator stop", operator="ops")
        second = Order.make("XYZ", 5)
        with pytest.raises(OrderRefusedError) as refused:
            await guarded(second)
        assert refused.value.order is second
        assert second.status is OrderStatus.REJECTED
        assert "manual: operator stop" in second.reject_reasons

    asyncio.run(scenario())
    assert len(sent) == 1
    refused_events = seen.kinds("order_refused")
    assert len(refused_events) == 1
    assert refused_events[0].details["function"].endswith("submit")


@pytest.mark.parametrize("kind", ["sync", "async", "sync_returning_coroutine"])
def test_broker_exception_is_recorded_and_reraised(kind: str) -> None:
    errors = ErrorRateCircuitBreaker(max_errors=2, window_seconds=300)
    mgr, _ = manager(errors)

    def sync_submit(order: Order) -> Any:
        raise ConnectionError("broker down")

    async def async_submit(order: Order) -> Any:
        raise ConnectionError("broker down")

    if kind == "sync":
        guarded = mgr.guard(sync_submit)
    elif kind == "async":
        guarded = mgr.guard(async_submit)
    else:
        guarded = mgr.guard(functools.partial(async_submit))

    async def call(order: Order) -> Any:
        result = guarded(order)
        if asyncio.iscoroutine(result):
            return await result
        return result

    for _ in range(3):
        order = Order.make("XYZ", 1)
        with pytest.raises(ConnectionError):
            asyncio.run(call(order))
        assert order.status is OrderStatus.FAILED
    assert errors.is_tripped
    # once tripped, the gate refuses before the broker is called
    with pytest.raises(OrderRefusedError) as refused:
        asyncio.run(call(Order.make("XYZ", 1)))
    assert refused.value.reasons[0].startswith("error_rate")


def test_guard_refuses_non_callables() -> None:
    mgr, _ = manager()
    with pytest.raises(TypeError):
        mgr.guard(42)  # type: ignore[arg-type]
