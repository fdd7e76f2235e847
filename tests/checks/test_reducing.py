"""SPEC §10: an order that only reduces the position (counting the working orders on its
side) is never refused by the quantity, notional, collar, position, exposure or open-order
checks; an order that flips or grows the position is judged by each of them. A manual halt
still refuses a reducing order."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from haltgate import ManualCircuitBreaker, Order, OrderContext
from haltgate.checks import (
    MaxGrossExposure,
    MaxOpenOrders,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxPosition,
    PriceCollar,
    reduces_position,
    side_exposure,
)

from .support import START, manager

SYMBOLS = ("SPY", "QQQ")
amounts = st.integers(min_value=1, max_value=10_000).map(Decimal)
signed = st.integers(min_value=-10_000, max_value=10_000).map(Decimal)


def tight_checks() -> list[object]:
    """Every exempting check with limits so small that any judged order is refused
    (including a collar whose reference price is always stale, and no equity)."""
    return [
        MaxOrderQuantity("0.5"),
        MaxOrderNotional("0.5"),
        PriceCollar("0.01", max_price_age_seconds=1),
        MaxPosition("0.5", max_notional="0.5"),
        MaxGrossExposure("0.5"),
        MaxOpenOrders(1),
    ]


@st.composite
def working_order(draw: st.DrawFn) -> Order:
    symbol = draw(st.sampled_from(SYMBOLS))
    qty = draw(amounts)
    order = Order.make(symbol, qty if draw(st.booleans()) else -qty, limit_price=100)
    order.filled_quantity = Decimal(draw(st.integers(min_value=0, max_value=int(qty))))
    return order


@st.composite
def scenario(draw: st.DrawFn) -> tuple[OrderContext, Order]:
    working = draw(st.lists(working_order(), max_size=6))
    ctx = OrderContext(
        position=draw(signed),
        # A reference price 1 h old (stale for the collar) or none at all.
        reference_price=draw(st.one_of(st.none(), st.just(100))),
        price_time=START.replace(hour=13),
        open_orders=working,
        gross_exposure=draw(st.integers(min_value=0, max_value=10**6)),
    )
    qty = draw(amounts)
    order = Order.make(
        "SPY",
        qty if draw(st.booleans()) else -qty,
        limit_price=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=1000))),
    )
    return ctx, order


def model_reduces(ctx: OrderContext, order: Order) -> bool:
    """The rule written out independently: the position plus the unfilled working orders
    in the symbol on the order's side, then the order; reducing = towards zero, not past."""
    base = ctx.position
    for other in ctx.open_orders:
        if other is order or other.symbol != order.symbol or other.side != order.side:
            continue
        left = other.quantity - other.filled_quantity
        base += left if other.side == "BUY" else -left
    after = base + order.signed_quantity
    return base != 0 and abs(after) <= abs(base) and (after == 0 or (after > 0) == (base > 0))


@settings(max_examples=400, deadline=None)
@given(scenario())
def test_a_reducing_order_is_never_refused_and_any_other_is_judged(
    case: tuple[OrderContext, Order],
) -> None:
    ctx, order = case
    reducing = reduces_position(order, ctx)
    assert reducing == model_reduces(ctx, order)
    checks = tight_checks()
    mgr, clock = manager(*checks)  # type: ignore[arg-type]
    decision = mgr.check_order(order, ctx)
    if reducing:
        assert decision.allowed, decision
        assert mgr.admit_order(order=order, context=ctx) == []
    else:
        # Judged by every one of them, not only the first: each alone refuses it (the
        # open-order cap of 1 refuses once any other order is working).
        for check in tight_checks():
            verdict = check.judge(order, ctx, clock.now())  # type: ignore[attr-defined]
            if isinstance(check, MaxOpenOrders) and not ctx.open_orders:
                assert verdict is None
            else:
                assert verdict is not None, check
        assert not decision.allowed


def test_side_exposure_counts_only_the_orders_side() -> None:
    working_sell = Order.make("SPY", -60, limit_price=100)
    working_buy = Order.make("SPY", 500, limit_price=100)
    ctx = OrderContext(position=100, open_orders=(working_sell, working_buy))
    sell_40 = Order.make("SPY", -40)
    sell_41 = Order.make("SPY", -41)
    assert side_exposure(sell_40, ctx) == 40
    assert reduces_position(sell_40, ctx)  # 100 - 60 - 40 = 0: flat is reducing
    assert not reduces_position(sell_41, ctx)  # would end short: a flip is judged
    assert not reduces_position(Order.make("SPY", 1), ctx)  # a buy grows a long
    assert not reduces_position(Order.make("SPY", -1), OrderContext())  # flat: grows


def test_a_manual_halt_still_refuses_a_reducing_order() -> None:
    halt = ManualCircuitBreaker()
    mgr, _ = manager(MaxOrderQuantity(1), breakers=[halt])
    ctx = OrderContext(position=1000)
    closing = Order.make("SPY", -1000)
    assert mgr.admit_order(order=closing, context=ctx) == []
    halt.trigger_halt("stop everything", "ops")
    for reduce_only in (False, True):
        reasons = mgr.admit_order(
            order=Order.make("SPY", -1000), context=ctx, reduce_only=reduce_only
        )
        assert reasons == ["manual: stop everything"]
