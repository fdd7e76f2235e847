"""Per-minute and per-hour order limits (atomic across both windows) and position
concentration, on a ManualClock."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

from trading_fakes import run

from haltgate import BreakerEvent


def _orders(breakers, n: int) -> list[bool]:
    async def go() -> list[bool]:
        return [await breakers.record_order() for _ in range(n)]

    return run(go())


def test_per_minute_limit_and_window(make, sync_portfolio, clock):
    breakers = make(sync_portfolio, connection_timeout_seconds=86400)
    assert _orders(breakers, 10) == [True] * 10
    assert not breakers.can_trade()  # the window is full: no further order fits
    assert _orders(breakers, 1) == [False]
    assert breakers.get_breaker("orders_per_minute").is_tripped
    assert breakers.get_blocking_reasons()[0].startswith("orders_per_minute: ")
    clock.advance(59.9)
    assert _orders(breakers, 1) == [False]
    clock.advance(0.1)  # the window is half-open: orders from t=0 have aged out at t=60
    assert breakers.can_trade()
    assert _orders(breakers, 10) == [True] * 10


def test_per_hour_limit_is_atomic_with_the_minute_window(make, sync_portfolio, clock):
    breakers = make(
        sync_portfolio,
        max_orders_per_minute=10,
        max_orders_per_hour=15,
        connection_timeout_seconds=86400,
    )
    assert _orders(breakers, 10) == [True] * 10
    clock.advance(60)
    assert _orders(breakers, 6) == [True] * 5 + [False]
    per_minute = breakers.get_breaker("orders_per_minute")
    per_hour = breakers.get_breaker("orders_per_hour")
    assert per_hour.get_order_count() == 15
    assert per_minute.get_order_count() == 5  # the refused order was counted in neither
    assert per_hour.is_tripped
    assert not per_minute.is_tripped
    clock.advance(3600 - 60)  # the first ten age out of the hour
    assert breakers.can_trade()
    assert _orders(breakers, 1) == [True]


def test_orders_refused_while_any_breaker_blocks(make, sync_portfolio):
    breakers = make(sync_portfolio)
    refused: list[BreakerEvent] = []
    breakers.add_listener(lambda e: refused.append(e) if e.kind == "order_refused" else None)
    sync_portfolio.pnl_pct = Decimal("-3")
    run(breakers.check_once())
    assert _orders(breakers, 1) == [False]
    assert breakers.get_breaker("orders_per_minute").get_order_count() == 0
    assert "daily_loss" in refused[0].reason


def test_concurrent_orders_never_exceed_the_limit(make, sync_portfolio):
    breakers = make(sync_portfolio, max_orders_per_minute=7, max_orders_per_hour=50)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        ok = asyncio.run(breakers.record_order())
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 7
    assert breakers.get_breaker("orders_per_hour").get_order_count() == 7


def test_concentration_limit(make, portfolio):
    breakers = make(portfolio)
    refused: list[BreakerEvent] = []
    breakers.add_listener(lambda e: refused.append(e) if e.kind == "order_refused" else None)
    portfolio.positions["SPY"] = Decimal("18.0")  # 18 000 of 100 000
    assert run(breakers.check_position_concentration("SPY", 2000))  # exactly 20 %: allowed
    assert not run(breakers.check_position_concentration("SPY", "2000.01"))
    assert refused[-1].breaker_name == "position_concentration"
    assert "SPY" in refused[-1].reason and "20" in refused[-1].reason
    assert run(breakers.check_position_concentration("AAPL", 19000))
    assert breakers.can_trade()  # a refused order does not halt trading


def test_concentration_allows_reducing_an_oversized_position(make, sync_portfolio):
    breakers = make(sync_portfolio)
    sync_portfolio.positions["TSLA"] = Decimal("30")
    assert not run(breakers.check_position_concentration("TSLA", 1))
    assert run(breakers.check_position_concentration("TSLA", -5000))


def test_concentration_warning_once_per_crossing_per_symbol(make, sync_portfolio):
    breakers = make(sync_portfolio)
    warnings: list[BreakerEvent] = []
    breakers.register_warning_callback(warnings.append)
    sync_portfolio.positions["SPY"] = Decimal("10")
    assert run(breakers.check_position_concentration("SPY", 5000))  # 15 %: at the level
    assert run(breakers.check_position_concentration("SPY", 6000))
    assert run(breakers.check_position_concentration("QQQ", 16000))  # another symbol
    assert [w.details["symbol"] for w in warnings] == ["SPY", "QQQ"]
    assert run(breakers.check_position_concentration("SPY", 1000))  # 11 %: re-armed
    assert run(breakers.check_position_concentration("SPY", 5500))
    assert [w.details["symbol"] for w in warnings] == ["SPY", "QQQ", "SPY"]


def test_concentration_refused_when_provider_fails(make, portfolio):
    breakers = make(portfolio, provider_timeout_seconds=0.05)
    portfolio.error = RuntimeError("positions service down")
    assert not run(breakers.check_position_concentration("SPY", 100))
    assert breakers.get_breaker("connection").get_consecutive_failures() == 1
    portfolio.error = None
    portfolio.total = Decimal("0")
    assert not run(breakers.check_position_concentration("SPY", 100))
