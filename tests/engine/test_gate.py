"""The order gate: manager check + atomic record_order before the broker, errors recorded,
refusals visible (REJECTED with reasons + an order_refused event)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import START, Recorder, manager

from haltgate import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    ManualClock,
    MemoryStore,
    OrderRateCircuitBreaker,
)
from haltgate.engine import Order, OrderStatus
from haltgate.engine.gate import OrderGate


def test_admitted_order_uses_a_slot_in_every_rate_window() -> None:
    fast = OrderRateCircuitBreaker(3, 10, name="per_10s")
    slow = OrderRateCircuitBreaker(5, 60, name="per_minute")
    mgr, _ = manager(fast, slow)
    gate = OrderGate(mgr)
    assert gate.admit(Order.make("XYZ", 1)) == []
    assert fast.get_order_count() == 1
    assert slow.get_order_count() == 1


def test_refused_order_is_rejected_with_reasons_and_event_and_uses_no_slot() -> None:
    rate = OrderRateCircuitBreaker(5)
    manual = ManualCircuitBreaker()
    mgr, _ = manager(rate, manual)
    seen = Recorder()
    mgr.add_listener(seen)
    manual.trigger_halt(reason="fat finger", operator="ops")
    order = Order.make("XYZ", 10)
    reasons = OrderGate(mgr).admit(order)
    assert reasons == ["manual: fat finger"]
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reasons == ["manual: fat finger"]
    assert order.rejected_by == "gate"
    refused = seen.kinds("order_refused")
    assert len(refused) == 1
    assert refused[0].details["order_id"] == order.id
    assert refused[0].details["blocking"] == ["manual: fat finger"]
    assert rate.get_order_count() == 0


def test_full_window_refuses_the_next_order_and_names_the_breaker() -> None:
    rate = OrderRateCircuitBreaker(2)
    mgr, clock = manager(rate)
    gate = OrderGate(mgr)
    assert gate.admit(Order.make("XYZ", 1)) == []
    assert gate.admit(Order.make("XYZ", 1)) == []
    third = Order.make("XYZ", 1)
    reasons = gate.admit(third)
    assert reasons and reasons[0].startswith("order_rate: Order rate limit reached")
    assert third.status is OrderStatus.REJECTED
    assert rate.get_order_count() == 2
    clock.advance(60)  # both orders age out of the half-open window
    assert gate.admit(Order.make("XYZ", 1)) == []


def test_own_refusals_do_not_use_a_slot_and_still_emit_an_event() -> None:
    rate = OrderRateCircuitBreaker(5)
    mgr, _ = manager(rate)
    seen = Recorder()
    mgr.add_listener(seen)
    order = Order.make("XYZ", 1)
    assert OrderGate(mgr).admit(order, refusals=["engine paused"]) == ["engine paused"]
    assert order.status is OrderStatus.REJECTED
    assert rate.get_order_count() == 0
    assert [e.details["blocking"] for e in seen.kinds("order_refused")] == [["engine paused"]]


def test_reduce_only_admission_ignores_risk_trips_but_not_manual_halts() -> None:
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    manual = ManualCircuitBreaker()
    rate = OrderRateCircuitBreaker(1)
    mgr, _ = manager(drawdown, manual, rate)
    mgr.can_trade(current_portfolio_value=100)
    mgr.can_trade(current_portfolio_value=80)
    assert drawdown.is_tripped
    gate = OrderGate(mgr)
    assert gate.admit(Order.make("XYZ", 1)) != []  # normal order refused
    assert gate.admit(Order.make("XYZ", -1), reduce_only=True) == []
    assert rate.get_order_count() == 1
    # the order window still applies to reducing orders
    assert gate.admit(Order.make("XYZ", -1), reduce_only=True)[0].startswith("order_rate")
    manual.trigger_halt(reason="stop everything", operator="ops")
    assert gate.admit(Order.make("XYZ", -1), reduce_only=True) == ["manual: stop everything"]


def test_failed_submission_is_recorded_as_an_error() -> None:
    errors = ErrorRateCircuitBreaker(max_errors=1, window_seconds=300)
    mgr, _ = manager(errors)
    gate = OrderGate(mgr)
    order = Order.make("XYZ", 1)
    gate.failed(ConnectionError("timeout"), order)
    assert order.status is OrderStatus.FAILED
    assert order.error == "ConnectionError: timeout"
    assert errors.get_error_count() == 1
    gate.failed(ConnectionError("timeout again"))
    assert errors.is_tripped
    assert errors.get_trip_details()["by_category"] == {"broker": 2}


def test_gate_needs_a_manager() -> None:
    with pytest.raises(TypeError):
        OrderGate(object())  # type: ignore[arg-type]


def test_an_unreachable_store_refuses_even_reducing_orders() -> None:
    class Unreachable(MemoryStore):
        down = False

        def blocking_reason(self) -> str | None:
            return "store unavailable (fail-closed)" if self.down else None

    store = Unreachable()
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    mgr = CircuitBreakerManager(store=store, clock=ManualClock(START))
    mgr.add_breaker(drawdown)
    gate = OrderGate(mgr)
    assert gate.admit(Order.make("XYZ", -1), reduce_only=True) == []
    store.down = True
    order = Order.make("XYZ", -1)
    assert gate.admit(order, reduce_only=True) == ["store unavailable (fail-closed)"]
    assert order.status is OrderStatus.REJECTED
    assert gate.admit(Order.make("XYZ", 1)) == ["store unavailable (fail-closed)"]
