"""The manager works an order's facts (position after it, reducing rule, price, notional)
out once per admission and passes them to the checks that read them
(``checks/exposure.order_facts``); these properties hold the verdicts to the rules as the
SPEC writes them, computed here independently, and to each check's own ``judge()``."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from haltgate import Order, OrderContext
from haltgate.checks import MaxGrossExposure, MaxOrderNotional, MaxPosition, OrderCheck

from .support import START, manager

small = st.integers(min_value=1, max_value=2_000).map(Decimal)
signed = st.integers(min_value=-3_000, max_value=3_000).map(Decimal)
fractions = st.sampled_from([Decimal("0.5"), Decimal(1), Decimal("1.5"), Decimal(2)])


def _context(position: Decimal, equity: Decimal | None, gross: Decimal) -> OrderContext:
    working = [Order.make("SPY", 7, limit_price=50), Order.make("SPY", -3, limit_price=50)]
    return OrderContext(
        position=position,
        reference_price=100,
        price_time=START,
        equity=equity,
        open_orders=working,
        gross_exposure=gross,
    )


def _same_as_judge(check: OrderCheck, order: Order, context: OrderContext) -> bool:
    """The manager's verdict (shared facts) against the check's own judge()."""
    mgr, _clock = manager(check)
    managed = mgr.check_order(order, context)
    alone = check.judge(order, context, START)
    return managed.allowed == (alone is None) and (
        alone is None or (managed.code, managed.reason) == (alone.code, alone.reason)
    )


@settings(max_examples=300, deadline=None)
@given(
    qty=signed.filter(bool),
    price=small,
    position=signed,
    gross=st.integers(min_value=0, max_value=400_000).map(Decimal),
    equity=st.one_of(st.none(), st.integers(min_value=-50_000, max_value=600_000).map(Decimal)),
    fraction=fractions,
)
def test_gross_exposure_is_the_rule_as_written(
    qty: Decimal,
    price: Decimal,
    position: Decimal,
    gross: Decimal,
    equity: Decimal | None,
    fraction: Decimal,
) -> None:
    order = Order.make("SPY", qty, limit_price=price)
    context = _context(position, equity, gross)
    check = MaxGrossExposure(300_000, max_fraction_of_equity=fraction)
    mgr, _clock = manager(check)
    allowed = mgr.check_order(order, context).allowed
    # The SPEC's rule, written out: reducing orders pass; else gross + qty * price must
    # be within the money limit and within fraction * equity (no equity: refused).
    exposure = position + (7 if order.side.value == "BUY" else -3)
    after = exposure + (order.quantity if order.side.value == "BUY" else -order.quantity)
    if order.side.value == "BUY":
        reducing = exposure < 0 and after <= 0
    else:
        reducing = exposure > 0 and after >= 0
    total = gross + order.quantity * price
    expected = reducing or (total <= 300_000 and equity is not None and total <= fraction * equity)
    assert allowed == expected
    assert _same_as_judge(
        MaxGrossExposure(300_000, max_fraction_of_equity=fraction), order, context
    )


@settings(max_examples=200, deadline=None)
@given(qty=signed.filter(bool), price=small, position=signed)
def test_notional_and_position_verdicts_match_judge(
    qty: Decimal, price: Decimal, position: Decimal
) -> None:
    order = Order.make("SPY", qty, limit_price=price)
    context = _context(position, None, Decimal(0))
    assert _same_as_judge(MaxOrderNotional(100_000), order, context)
    assert _same_as_judge(MaxPosition(1_500, max_notional=150_000), order, context)


def test_a_subclass_overriding_judge_is_asked_through_its_override() -> None:
    """The manager calls ``_judge_facts`` directly only when no subclass overrides
    ``_judge``: a check of the user's own built on a built-in check keeps its rule."""
    from datetime import datetime

    from haltgate.checks import OrderDecision

    class NoSundays(MaxOrderNotional):
        def _judge(
            self, order: Order, context: OrderContext, now: datetime | None
        ) -> OrderDecision | None:
            if order.symbol == "SUN":
                return self.refuse("no SUN")
            return super()._judge(order, context, now)

    mgr, clock = manager(NoSundays(1_000))
    context = OrderContext(reference_price=100, price_time=clock.now())
    assert mgr.admit_order(order=Order.make("SUN", 1), context=context) == [
        "max_order_notional: no SUN"
    ]
    refused = mgr.admit_order(order=Order.make("SPY", 11), context=context)
    assert refused and refused[0].startswith("max_order_notional: 1100 > 1000")
    assert mgr.admit_order(order=Order.make("SPY", 10), context=context) == []
