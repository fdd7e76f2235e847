"""The limit checks of SPEC §10: boundaries (exactly the limit passes, above refuses),
per_symbol overrides, and the exact text of every refusal (limit and observed value)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from haltgate import OrderContext, OrderDecision
from haltgate.checks import (
    MaxGrossExposure,
    MaxOpenOrders,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxPosition,
    PriceCollar,
    RestrictedSymbols,
)

from .support import buy, manager, priced, sell


def refused(code: str, check: str, reason: str) -> OrderDecision:
    return OrderDecision(False, code, check, reason)


# ----------------------------------------------------------------------------- quantity
def test_max_order_quantity_boundary_and_reason() -> None:
    mgr, _ = manager(MaxOrderQuantity(1000))
    assert mgr.check_order(buy(1000)).allowed
    assert mgr.check_order(buy("1000.0")).allowed
    assert mgr.check_order(buy(150000)) == refused(
        "max_order_quantity", "max_order_quantity", "150000 > 1000 (SPY)"
    )
    assert mgr.check_order(buy("1000.000001")).code == "max_order_quantity"
    assert mgr.admit_order(order=buy(150000)) == ["max_order_quantity: 150000 > 1000 (SPY)"]


def test_max_order_quantity_per_symbol_overrides_the_default() -> None:
    mgr, _ = manager(MaxOrderQuantity(1000, per_symbol={"BRK.A": 2, "SPY": "5000"}))
    assert mgr.check_order(buy(2, "BRK.A")).allowed
    assert mgr.check_order(buy(3, "BRK.A")).reason == "3 > 2 (BRK.A)"
    assert mgr.check_order(buy(5000)).allowed
    assert mgr.check_order(buy(5001)).reason == "5001 > 5000 (SPY)"
    assert mgr.check_order(buy(1001, "QQQ")).reason == "1001 > 1000 (QQQ)"


# ----------------------------------------------------------------------------- notional
def test_max_order_notional_uses_the_limit_price_else_the_reference() -> None:
    mgr, clock = manager(MaxOrderNotional(100_000))
    ctx = priced(clock, 200)
    assert mgr.check_order(buy(1000, price=100), ctx).allowed  # 100000: at the limit
    assert mgr.check_order(buy(1000, price="100.01"), ctx) == refused(
        "max_order_notional", "max_order_notional", "100010 > 100000 (SPY 1000 @ 100.01)"
    )
    assert mgr.check_order(buy(500), ctx).allowed  # market: 500 * 200 = 100000
    assert mgr.check_order(buy(501), ctx).reason == "100200 > 100000 (SPY 501 @ 200)"


def test_max_order_notional_without_any_price_refuses() -> None:
    mgr, _ = manager(MaxOrderNotional(100_000, per_symbol={"ES": 10}))
    decision = mgr.check_order(buy(1))
    assert decision.code == "max_order_notional"
    assert decision.reason == "no price to value the order (SPY)"
    assert mgr.check_order(buy(1, "ES", price=10)).allowed
    assert mgr.check_order(buy(1, "ES", price=11)).reason == "11 > 10 (ES 1 @ 11)"


# ----------------------------------------------------------------------------- collar
def test_price_collar_bounds_are_inclusive() -> None:
    mgr, clock = manager(PriceCollar("0.10"))
    ctx = priced(clock, 100)
    assert mgr.check_order(buy(1, price=110), ctx).allowed
    assert mgr.check_order(buy(1, price="110.01"), ctx) == refused(
        "price_collar",
        "price_collar",
        "BUY limit 110.01 > 110 = reference 100 * (1 + 0.1) (SPY)",
    )
    assert mgr.check_order(sell(1, price=90), ctx).allowed
    assert mgr.check_order(sell(1, price="89.99"), ctx).reason == (
        "SELL limit 89.99 < 90 = reference 100 * (1 - 0.1) (SPY)"
    )
    # A buy far below the market and a sell far above cannot run through it: allowed.
    assert mgr.check_order(buy(1, price=1), ctx).allowed
    assert mgr.check_order(sell(1, price=1000), ctx).allowed
    # A market order has no limit: only the freshness of the price is judged.
    assert mgr.check_order(buy(1), ctx).allowed


def test_a_limit_20_percent_through_the_market_is_refused() -> None:
    mgr, clock = manager(PriceCollar("0.05"))
    decision = mgr.check_order(buy(10, price=120), priced(clock, 100))
    assert (
        decision.refusal == "price_collar: BUY limit 120 > 105 = reference 100 * (1 + 0.05) (SPY)"
    )


def test_price_collar_refuses_a_stale_or_missing_reference_price() -> None:
    mgr, clock = manager(PriceCollar("0.1", max_price_age_seconds=5))
    ctx = priced(clock, 100)
    clock.advance(5)
    assert mgr.check_order(buy(1), ctx).allowed  # exactly 5 s old: fresh
    clock.advance(0.5)
    assert mgr.check_order(buy(1), ctx) == refused(
        "stale_reference_price", "price_collar", "reference price is 5.5s old > 5s (SPY)"
    )
    assert mgr.check_order(buy(1, price=100)) == refused(
        "stale_reference_price", "price_collar", "no reference price (SPY)"
    )
    assert mgr.check_order(buy(1), OrderContext(reference_price=100)) == refused(
        "stale_reference_price", "price_collar", "reference price 100 has no time (SPY)"
    )
    # A price time a little ahead of the clock (another host's clock) passes; further ahead
    # than the allowed age, one of the clocks is wrong (a wall clock stepped back): refused.
    ahead = OrderContext(reference_price=100, price_time=clock.now() + timedelta(seconds=5))
    assert mgr.check_order(buy(1), ahead).allowed
    ahead = OrderContext(reference_price=100, price_time=clock.now() + timedelta(seconds=30))
    assert mgr.check_order(buy(1), ahead) == refused(
        "stale_reference_price",
        "price_collar",
        "reference price time is 30s ahead of the clock > 5s (SPY)",
    )
    assert mgr.admit_order(order=buy(1), context=ctx) == [
        "price_collar: reference price is 5.5s old > 5s (SPY)"
    ]


# ----------------------------------------------------------------------------- position
def test_max_position_counts_the_working_orders_on_the_orders_side() -> None:
    mgr, _clock = manager(MaxPosition(1000))
    working_buy = buy(300)
    working_sell = sell(5000)
    ctx = OrderContext(position=500, open_orders=(working_buy, working_sell))
    assert mgr.check_order(buy(200), ctx).allowed  # 500 + 300 + 200 = 1000
    assert mgr.check_order(buy(201), ctx) == refused(
        "max_position", "max_position", "1001 > 1000 (SPY position 500 -> 1001)"
    )
    # Working orders in other symbols do not count; partly filled ones count what is left.
    other = buy(900, "QQQ")
    partly = buy(400)
    partly.filled_quantity = Decimal(300)
    ctx = OrderContext(position=500, open_orders=(other, partly))
    assert mgr.check_order(buy(400), ctx).allowed  # 500 + 100 + 400
    assert mgr.check_order(buy(401), ctx).code == "max_position"
    # The order itself listed among the working orders is not counted twice.
    order = buy(500)
    assert mgr.check_order(order, OrderContext(position=500, open_orders=(order,))).allowed


def test_max_position_judges_shorts_and_flips() -> None:
    mgr, _ = manager(MaxPosition(1000))
    assert mgr.check_order(sell(1000)).allowed
    assert mgr.check_order(sell(1001)).reason == "1001 > 1000 (SPY position 0 -> -1001)"
    flip = mgr.check_order(sell(2500), OrderContext(position=1000))
    assert flip.reason == "1500 > 1000 (SPY position 1000 -> -1500)"


def test_max_position_notional_and_per_symbol() -> None:
    check = MaxPosition(
        max_notional=50_000,
        per_symbol={"TSLA": {"max_quantity": 10}, "SPY": {"max_notional": "100000"}},
    )
    mgr, clock = manager(check)
    ctx = priced(clock, 100, position=400)
    assert mgr.check_order(buy(100), ctx).allowed  # 500 * 100 = 50000
    assert mgr.check_order(buy(101, "QQQ"), ctx).reason == (
        "50100 > 50000 (QQQ position 400 -> 501 @ 100)"
    )
    assert mgr.check_order(buy(600), ctx).allowed  # SPY: 1000 * 100 = 100000
    assert mgr.check_order(buy(601), ctx).code == "max_position"
    # TSLA: 10 shares, and the default notional still applies.
    tsla = priced(clock, 100)
    assert mgr.check_order(buy(10, "TSLA"), tsla).allowed
    assert mgr.check_order(buy(11, "TSLA"), tsla).reason == ("11 > 10 (TSLA position 0 -> 11)")
    assert mgr.check_order(buy(1, "QQQ")).reason == "no price to value the position (QQQ)"


# ----------------------------------------------------------------------------- exposure
def test_max_gross_exposure_money_and_fraction_of_equity() -> None:
    mgr, clock = manager(MaxGrossExposure(1_000_000, max_fraction_of_equity=2))
    ctx = priced(clock, 100, gross_exposure=900_000, equity=600_000)
    assert mgr.check_order(buy(1000), ctx).allowed  # 1000000: at both limits? 2 * 600k
    assert mgr.check_order(buy(1001), ctx) == refused(
        "max_gross_exposure",
        "max_gross_exposure",
        "1000100 > 1000000 (gross 900000 + order 100100)",
    )
    poorer = priced(clock, 100, gross_exposure=900_000, equity=450_000)
    assert mgr.check_order(buy(1), poorer).reason == (
        "900100 > 900000 = 2 * equity 450000 (gross 900000 + order 100)"
    )
    assert mgr.check_order(buy(1), priced(clock, 100)).reason == (
        "no equity in the context to apply 2 * equity"
    )
    assert mgr.check_order(buy(1)).reason == "no price to value the order (SPY)"


def test_max_gross_exposure_counts_a_sell_as_exposure_too() -> None:
    mgr, clock = manager(MaxGrossExposure(10_000))
    assert mgr.check_order(sell(100), priced(clock, 100)).allowed
    assert mgr.check_order(sell(101), priced(clock, 100)).code == "max_gross_exposure"


# ----------------------------------------------------------------------------- open orders
def test_max_open_orders_refuses_at_the_limit() -> None:
    mgr, _ = manager(MaxOpenOrders(3))
    two = OrderContext(open_orders=(buy(1), buy(1, "QQQ")))
    three = OrderContext(open_orders=(buy(1), buy(1, "QQQ"), sell(1, "IWM")))
    assert mgr.check_order(buy(1), two).allowed
    assert mgr.check_order(buy(1), three) == refused(
        "max_open_orders", "max_open_orders", "3 >= 3 working orders"
    )
    order = buy(1)
    listed = OrderContext(open_orders=(buy(1), buy(1, "QQQ"), order))
    assert mgr.check_order(order, listed).allowed  # itself is not another working order


# ----------------------------------------------------------------------------- restricted
def test_restricted_symbols() -> None:
    mgr, _ = manager(RestrictedSymbols(["GME", " AMC "]))
    assert mgr.check_order(buy(1, "GME")) == refused(
        "restricted_symbol", "restricted_symbol", "GME is on the restricted list"
    )
    assert mgr.check_order(buy(1, "AMC")).code == "restricted_symbol"
    assert mgr.check_order(buy(1, "gme")).allowed  # symbols are case-sensitive
    assert mgr.check_order(sell(1, "GME"), OrderContext(position=10)).code == (
        "restricted_symbol"
    )  # not among the checks a reducing order is exempt from


# ----------------------------------------------------------------------------- together
def test_the_first_refusing_check_in_the_order_added_speaks() -> None:
    mgr, _clock = manager(RestrictedSymbols(["GME"]), MaxOrderQuantity(10))
    assert mgr.check_order(buy(100, "GME")).code == "restricted_symbol"
    mgr.remove_check("restricted_symbol")
    assert mgr.check_order(buy(100, "GME")).code == "max_order_quantity"


@pytest.mark.parametrize(
    "check",
    [
        MaxOrderQuantity(1000),
        MaxOrderNotional(1000),
        PriceCollar("0.1"),
        MaxPosition(1000),
        MaxGrossExposure(1000),
        MaxOpenOrders(3),
        RestrictedSymbols(["X"]),
    ],
    ids=lambda c: c.name,
)
def test_judge_is_usable_without_a_manager(check: object) -> None:
    from haltgate.checks import OrderCheck

    assert isinstance(check, OrderCheck)
    from datetime import UTC, datetime

    ctx = OrderContext(reference_price=1, price_time=datetime.now(UTC))
    assert check.judge(buy(1, price=1), ctx) is None
