"""The manager's order-check registry and verdicts; OrderContext and OrderDecision."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import haltgate
from haltgate import InvalidInputError, OrderContext, OrderDecision, UnknownCheckError
from haltgate.checks import (
    CHECK_TYPES,
    DENY_CODES,
    DuplicateOrder,
    ExecutionThrottle,
    MaxGrossExposure,
    MaxOpenOrders,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxPosition,
    MessageThrottle,
    PriceCollar,
    RestrictedSymbols,
)

from .support import Recorder, buy, manager


def test_the_names_of_the_spec_table_are_exported() -> None:
    import haltgate.checks as checks

    for name in (
        "MaxOrderQuantity",
        "MaxOrderNotional",
        "PriceCollar",
        "MaxPosition",
        "MaxGrossExposure",
        "MaxOpenOrders",
        "DuplicateOrder",
        "MessageThrottle",
        "ExecutionThrottle",
        "RestrictedSymbols",
        "OrderContext",
        "OrderDecision",
    ):
        assert name in checks.__all__, name
    assert haltgate.OrderContext is checks.OrderContext
    assert haltgate.OrderDecision is checks.OrderDecision
    assert set(DENY_CODES) == {
        "max_order_quantity",
        "max_order_notional",
        "price_collar",
        "stale_reference_price",
        "max_position",
        "max_gross_exposure",
        "max_open_orders",
        "duplicate_order",
        "message_throttle",
        "execution_throttle",
        "restricted_symbol",
    }
    assert CHECK_TYPES["price_collar"] is PriceCollar


def ten() -> list[object]:
    return [
        MaxOrderQuantity(1000),
        MaxOrderNotional(10**6),
        PriceCollar("0.1"),
        MaxPosition(10**5),
        MaxGrossExposure(10**7),
        MaxOpenOrders(50),
        DuplicateOrder(1),
        MessageThrottle(100, 1),
        ExecutionThrottle(20, 60),
        RestrictedSymbols(["GME"]),
    ]


def test_add_get_remove_checks() -> None:
    checks = ten()
    mgr, _clock = manager(*checks)  # type: ignore[arg-type]
    assert mgr.get_checks() == checks
    assert mgr.get_check("price_collar") is checks[2]
    assert mgr.get_check("nope") is None
    assert mgr.remove_check("price_collar") is checks[2]
    assert "price_collar" not in [c.name for c in mgr.get_checks()]
    with pytest.raises(UnknownCheckError) as info:
        mgr.remove_check("price_collar")
    assert isinstance(info.value, KeyError) and info.value.parameter == "name"
    with pytest.raises(InvalidInputError):
        mgr.add_check(MaxOrderQuantity(5))  # the name is taken
    with pytest.raises(TypeError):
        mgr.add_check(MaxOrderQuantity)  # type: ignore[arg-type]


def test_every_check_admits_a_normal_order_with_all_ten() -> None:
    mgr, clock = manager(*ten())  # type: ignore[arg-type]
    ctx = OrderContext(reference_price=100, price_time=clock.now(), equity=10**6)
    for qty in range(1, 21):
        assert mgr.admit_order(order=buy(qty, price=100), context=ctx) == [], qty
    assert mgr.get_refusal_counts() == {}


def test_refusals_are_counted_by_deny_code_and_announced() -> None:
    mgr, clock = manager(MaxOrderQuantity(10), PriceCollar("0.1"), RestrictedSymbols(["GME"]))
    seen = Recorder()
    mgr.add_listener(seen)
    ctx = OrderContext(reference_price=100, price_time=clock.now())
    mgr.admit_order(order=buy(11), context=ctx)
    mgr.admit_order(order=buy(12), context=ctx)
    mgr.admit_order(order=buy(1, "GME"), context=ctx)
    mgr.admit_order(order=buy(1))  # no price
    assert mgr.admit_order(order=buy(1, price=100), context=ctx) == []
    assert mgr.get_refusal_counts() == {
        "max_order_quantity": 2,
        "restricted_symbol": 1,
        "stale_reference_price": 1,
    }
    codes = [e.details["code"] for e in seen.kinds("order_refused")]
    assert codes == [
        "max_order_quantity",
        "max_order_quantity",
        "restricted_symbol",
        "stale_reference_price",
    ]
    stale = seen.kinds("order_refused")[-1]
    assert stale.details["check"] == "price_collar"
    assert stale.details["blocking"] == ["price_collar: no reference price (SPY)"]


def test_a_fat_finger_order_100_times_the_usual_size() -> None:
    mgr, _ = manager(MaxOrderQuantity(1500))
    assert mgr.admit_order(order=buy(1500)) == []
    assert mgr.admit_order(order=buy(150000)) == ["max_order_quantity: 150000 > 1500 (SPY)"]


def test_the_checks_run_before_the_breakers_and_without_orders_nothing_changes() -> None:
    from haltgate import OrderRateCircuitBreaker

    rate = OrderRateCircuitBreaker(5)
    mgr, _ = manager(breakers=[rate])
    # No checks: admit_order with or without an order behaves as before.
    assert mgr.admit_order() == []
    assert mgr.admit_order(order=buy(1)) == []
    assert mgr.record_order()
    assert rate.get_order_count() == 3


# ----------------------------------------------------------------------------- values
def test_order_context_converts_and_validates() -> None:
    ctx = OrderContext(
        position=-5.5,
        reference_price="101.25",
        price_time=datetime(2026, 1, 5, tzinfo=UTC),
        equity=1000,
        open_orders=[buy(1)],
        gross_exposure=0.1,
    )
    assert ctx.position == Decimal("-5.5")
    assert ctx.reference_price == Decimal("101.25")
    assert ctx.gross_exposure == Decimal("0.1")
    assert isinstance(ctx.open_orders, tuple)
    with pytest.raises(AttributeError):
        ctx.position = Decimal(1)  # type: ignore[misc]
    assert OrderContext() == OrderContext(position=0)


def test_order_decision_is_consistent() -> None:
    assert OrderDecision(True) == OrderDecision(True, None, None, None)
    assert OrderDecision(True).refusal is None
    no = OrderDecision(False, "max_open_orders", "max_open_orders", "3 >= 3 working orders")
    assert not no
    assert no.refusal == "max_open_orders: 3 >= 3 working orders"
    with pytest.raises(InvalidInputError):
        OrderDecision(True, "x")
    with pytest.raises(InvalidInputError):
        OrderDecision(False, "code", "check", None)
    with pytest.raises(TypeError):
        OrderDecision("yes")  # type: ignore[arg-type]
