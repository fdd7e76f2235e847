"""manager.guard(submit, context=fn): the checks judge each order against the context the
function builds; a refused order is REJECTED with "check_name: reason" and emits
order_refused with the deny code; guard counts its own submits for MessageThrottle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from haltgate import Order, OrderContext, OrderRefusedError, OrderStatus
from haltgate.checks import MaxOrderQuantity, MaxPosition, MessageThrottle, PriceCollar

from .support import Recorder, buy, manager, sell


def test_sync_guard_with_a_context_function() -> None:
    mgr, _clock = manager(MaxPosition(100), MaxOrderQuantity(50))
    positions = {"SPY": 80}
    seen = Recorder()
    mgr.add_listener(seen)
    sent: list[Order] = []

    def context(order: Order) -> OrderContext:
        return OrderContext(position=positions.get(order.symbol, 0))

    submit = mgr.guard(lambda order: sent.append(order) or "ack", context=context)
    assert submit(buy(20)) == "ack"  # 80 + 20 = 100
    too_big = buy(21)
    with pytest.raises(OrderRefusedError) as refused:
        submit(too_big)
    assert refused.value.reasons == ["max_position: 101 > 100 (SPY position 80 -> 101)"]
    assert too_big.status is OrderStatus.REJECTED
    assert too_big.reject_reasons == ["max_position: 101 > 100 (SPY position 80 -> 101)"]
    assert too_big.rejected_by == "gate"
    # Closing the position is never refused by the size checks.
    assert submit(sell(80)) == "ack"
    assert sent == [sent[0], sent[1]] and len(sent) == 2
    event = seen.kinds("order_refused")[0]
    assert event.details["code"] == "max_position"
    assert event.details["check"] == "max_position"
    assert event.details["order_id"] == too_big.id
    assert event.reason == "order refused: max_position: 101 > 100 (SPY position 80 -> 101)"
    assert mgr.get_refusal_counts() == {"max_position": 1}


def test_async_guard_with_a_context_function() -> None:
    mgr, clock = manager(PriceCollar("0.05"))
    sent: list[Order] = []

    async def submit(order: Order) -> Order:
        sent.append(order)
        return order

    guarded = mgr.guard(
        submit, context=lambda o: OrderContext(reference_price=100, price_time=clock.now())
    )

    async def scenario() -> None:
        ok = buy(1, price=105)
        assert await guarded(ok) is ok
        wild = buy(1, price=120)
        with pytest.raises(OrderRefusedError) as refused:
            await guarded(wild)
        assert refused.value.reasons == [
            "price_collar: BUY limit 120 > 105 = reference 100 * (1 + 0.05) (SPY)"
        ]
        assert wild.status is OrderStatus.REJECTED

    asyncio.run(scenario())
    assert len(sent) == 1


@pytest.mark.parametrize(
    "context",
    [
        lambda order: 1 / 0,
        lambda order: {"position": 5},
        lambda order: None,
    ],
    ids=["raises", "wrong type", "none"],
)
def test_a_failing_context_function_refuses_the_order(context: Any) -> None:
    mgr, _ = manager(MaxOrderQuantity(10), MessageThrottle(10, 60))
    seen = Recorder()
    mgr.add_listener(seen)
    sent: list[Order] = []
    submit = mgr.guard(sent.append, context=context)
    order = buy(1)
    with pytest.raises(OrderRefusedError) as refused:
        submit(order)
    assert refused.value.reasons[0].startswith("order context failed: ")
    assert order.status is OrderStatus.REJECTED
    assert sent == []
    assert len(seen.kinds("order_refused")) == 1
    assert mgr.get_check("message_throttle").window_count(0) == 0  # type: ignore[union-attr]


def test_guard_counts_its_own_submits_for_the_message_throttle() -> None:
    mgr, clock = manager(MessageThrottle(3, 1))
    submit = mgr.guard(lambda order: "ack")
    assert submit(buy(1)) == "ack"
    assert submit(buy(2)) == "ack"
    mgr.record_message("cancel")
    with pytest.raises(OrderRefusedError) as refused:
        submit(buy(3))
    assert refused.value.reasons == ["message_throttle: 4 > 3 messages in 1s"]
    clock.advance(1)
    assert submit(buy(3)) == "ack"


def test_guard_refuses_a_non_callable_context() -> None:
    mgr, _ = manager()
    with pytest.raises(TypeError) as info:
        mgr.guard(lambda order: None, context=5)  # type: ignore[arg-type]
    assert "context" in str(info.value)


def test_guard_without_an_order_argument_and_order_checks_is_refused_loudly() -> None:
    mgr, _ = manager(MaxOrderQuantity(10))
    sent: list[Any] = []
    submit = mgr.guard(lambda symbol, qty: sent.append((symbol, qty)))
    with pytest.raises(TypeError):
        submit("SPY", 10**6)
    assert sent == []
