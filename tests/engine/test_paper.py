"""PaperBroker: market and limit fills against the data portal, positions, cash, value."""

from __future__ import annotations

from decimal import Decimal

from engine_support import minute_bars

from haltgate.engine import Bar, DataPortal, Order, OrderStatus, PaperBroker


def _portal_at(price: str, symbol: str = "XYZ") -> DataPortal:
    portal = DataPortal()
    portal.update(minute_bars([price], symbol=symbol)[0])
    return portal


def test_market_orders_fill_at_the_current_price() -> None:
    portal = _portal_at("100")
    broker = PaperBroker(portal, cash=10_000)
    buy = broker.submit_order(Order.make("XYZ", 30))
    assert buy.status is OrderStatus.FILLED and buy.fill_price == Decimal("100")
    assert broker.cash == Decimal("7000")
    assert broker.get_positions() == {"XYZ": Decimal("30")}
    assert broker.get_account_value() == Decimal("10000")
    portal.update(minute_bars(["110"])[0])
    assert broker.get_account_value() == Decimal("10300")
    sell = broker.submit_order(Order.make("XYZ", -10))
    assert sell.status is OrderStatus.FILLED and sell.fill_price == Decimal("110")
    assert broker.cash == Decimal("8100")
    assert broker.get_positions() == {"XYZ": Decimal("20")}
    assert [f.quantity for f in broker.fills] == [Decimal("30"), Decimal("10")]


def test_limit_orders_work_until_a_bar_trades_through_the_limit() -> None:
    portal = _portal_at("100")
    broker = PaperBroker(portal, cash=10_000)
    limit_buy = broker.submit_order(Order.make("XYZ", 10, limit_price="95"))
    assert limit_buy.status is OrderStatus.OPEN
    assert broker.get_open_orders() == [limit_buy]
    above = Bar.of({"timestamp": 60, "symbol": "XYZ", "close": 97, "low": 96})
    assert broker.on_bar(above) == []
    through = Bar.of({"timestamp": 120, "symbol": "XYZ", "open": 96, "close": 94, "low": 93})
    assert broker.on_bar(through) == [limit_buy]
    assert limit_buy.status is OrderStatus.FILLED and limit_buy.fill_price == Decimal("95")
    gap = Bar.of({"timestamp": 180, "symbol": "XYZ", "open": 120, "close": 121})
    limit_sell = broker.submit_order(Order.make("XYZ", -10, limit_price="110"))
    assert limit_sell.status is OrderStatus.OPEN  # current close 100 < 110
    broker.on_bar(gap)
    assert limit_sell.fill_price == Decimal("120")  # opened beyond the limit: the open
    assert broker.get_positions() == {}
    assert broker.cash == Decimal("10000") - 950 + 1200


def test_marketable_limit_fills_at_once_at_the_current_price() -> None:
    broker = PaperBroker(_portal_at("100"), cash=1_000)
    order = broker.submit_order(Order.make("XYZ", 5, limit_price="101"))
    assert order.status is OrderStatus.FILLED and order.fill_price == Decimal("100")


def test_broker_rejections_say_why() -> None:
    broker = PaperBroker(_portal_at("100"), cash=500)
    too_big = broker.submit_order(Order.make("XYZ", 6))
    assert too_big.status is OrderStatus.REJECTED and too_big.rejected_by == "broker"
    assert "insufficient cash" in (too_big.reject_reason or "")
    naked = broker.submit_order(Order.make("XYZ", -1))
    assert "insufficient position" in (naked.reject_reason or "")
    unknown = broker.submit_order(Order.make("ABC", 1))
    assert "no price for ABC" in (unknown.reject_reason or "")
    assert broker.cash == Decimal("500") and broker.get_positions() == {}


def test_short_selling_when_allowed() -> None:
    broker = PaperBroker(_portal_at("100"), cash=1_000, allow_short=True)
    broker.submit_order(Order.make("XYZ", -5))
    assert broker.get_positions() == {"XYZ": Decimal("-5")}
    assert broker.get_account_value() == Decimal("1000")


def test_cancel_one_and_cancel_all() -> None:
    broker = PaperBroker(_portal_at("100"), cash=10_000)
    a = broker.submit_order(Order.make("XYZ", 1, limit_price="90"))
    b = broker.submit_order(Order.make("XYZ", 1, limit_price="91"))
    c = broker.submit_order(Order.make("XYZ", 1, limit_price="92"))
    assert broker.cancel_order(a.id) is True
    assert broker.cancel_order(a.id) is False
    assert broker.cancel_all() == [b, c]
    assert {a.status, b.status, c.status} == {OrderStatus.CANCELLED}
    assert broker.get_open_orders() == []
