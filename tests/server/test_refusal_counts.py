"""Every refusal by a pre-trade check counts by deny code (SPEC §10): in
``manager.get_refusal_counts()``, in ``/metrics`` of the real admin server over loopback
(``haltgate_order_refusals_total{code}``), and in the status API and page of a server
embedded in the trading process (the manager that refused the orders) and of a service over
the store alone (``haltgate serve``: the live processes' registry entries; the real
subprocess tests are in ``tests/store/test_registry_refusals.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from browser_support import chromium, needs_browser, served_service, wait
from prometheus_client import CollectorRegistry

from haltgate import CircuitBreakerManager, ManualClock, MemoryStore, Order, OrderContext
from haltgate.checks import DENY_CODES, MaxOrderQuantity, PriceCollar, RestrictedSymbols
from haltgate.metrics import HaltgateMetrics
from haltgate.server import AdminService

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def buy(qty: int, symbol: str = "SPY", price: Any = None) -> Order:
    return Order.make(symbol, qty, limit_price=price)


def priced(clock: ManualClock) -> OrderContext:
    return OrderContext(reference_price=100, price_time=clock.now())


def _refusing_manager() -> tuple[CircuitBreakerManager, ManualClock]:
    clock = ManualClock(START)
    mgr = CircuitBreakerManager(clock=clock, store=MemoryStore())
    for check in (MaxOrderQuantity(1000), PriceCollar("0.05"), RestrictedSymbols(["XYZ"])):
        mgr.add_check(check)
    ctx = priced(clock)
    assert mgr.admit_order(order=buy(5000), context=ctx)  # max_order_quantity
    assert mgr.admit_order(order=buy(6000), context=ctx)  # max_order_quantity
    assert mgr.admit_order(order=buy(10, price=200), context=ctx)  # price_collar
    clock.advance(60)
    assert mgr.admit_order(order=buy(10), context=ctx)  # stale_reference_price
    assert mgr.admit_order(order=buy(10, "XYZ"), context=priced(clock)) == [
        "restricted_symbol: XYZ is on the restricted list"
    ]
    assert mgr.admit_order(order=buy(10), context=priced(clock)) == []
    return mgr, clock


EXPECTED = {
    "max_order_quantity": 2,
    "price_collar": 1,
    "stale_reference_price": 1,
    "restricted_symbol": 1,
}


def test_the_manager_counts_each_refusal_by_its_code() -> None:
    mgr, _clock = _refusing_manager()
    assert mgr.get_refusal_counts() == EXPECTED
    # check_order is pure: it counts nothing.
    assert not mgr.check_order(buy(5000), priced(ManualClock(START))).allowed
    assert mgr.get_refusal_counts() == EXPECTED


@pytest.fixture
def embedded() -> Iterator[tuple[str, CircuitBreakerManager]]:
    mgr, _clock = _refusing_manager()
    registry = CollectorRegistry()
    HaltgateMetrics(mgr, registry)
    # The service over the trading process's own manager (and its store).
    service = AdminService(mgr, registry=registry)
    with served_service(service) as url:
        yield url, mgr


def test_metrics_of_the_real_server_count_refusals_by_code(
    embedded: tuple[str, CircuitBreakerManager],
) -> None:
    url, mgr = embedded
    text = httpx.get(url + "metrics", timeout=10).text
    samples = {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("haltgate_order_refusals_total{")
    }
    assert samples == {f'code="{code}"': float(EXPECTED.get(code, 0)) for code in DENY_CODES}
    assert "# TYPE haltgate_order_refusals_total counter" in text
    mgr.admit_order(order=buy(7000), context=None)
    again = httpx.get(url + "metrics", timeout=10).text
    assert 'haltgate_order_refusals_total{code="max_order_quantity"} 3.0' in again


def test_the_status_api_lists_the_refusals_by_code(
    embedded: tuple[str, CircuitBreakerManager],
) -> None:
    url, _mgr = embedded
    status = httpx.get(url + "api/status", timeout=10).json()
    assert status["refusals"] == EXPECTED


def test_a_server_over_the_store_alone_says_it_has_no_counts() -> None:
    from haltgate.server import build_service

    service = build_service(MemoryStore(), None)
    assert service.status()["refusals"] == {}


@needs_browser
def test_the_status_page_shows_the_refusals_by_code(
    embedded: tuple[str, CircuitBreakerManager],
) -> None:
    url, _mgr = embedded
    with chromium("--window-size=1200,900") as driver:
        driver.get(url)
        from selenium.webdriver.common.by import By

        def shown(d: Any) -> Any:
            element = d.find_element(By.ID, "refusals")
            return element if "max_order_quantity" in element.text else False

        element = wait(driver, shown)
        text = element.text
        assert "Refused by pre-trade checks" in text
        for code, count in EXPECTED.items():
            assert f"{code} {count}" in text
        assert element.is_displayed()


@needs_browser
def test_the_status_page_of_a_service_over_the_store_shows_the_live_processes_refusals(
    tmp_path: Any,
) -> None:
    # `haltgate serve`'s service (build_service over its own store object, as in its own
    # process) and a trading manager on another store object of the same SQLite file: the
    # counts reach the page only through the trading process's registry entry.
    from selenium.webdriver.common.by import By

    from haltgate.server import build_service
    from haltgate.store.sqlite import SQLiteStore

    db = tmp_path / "f.db"
    trading_store = SQLiteStore(db)
    trading_store.registration.configure(heartbeat_seconds=0.05, ttl_seconds=1)
    trader = CircuitBreakerManager(store=trading_store)
    trader.add_check(MaxOrderQuantity(1000))
    for _ in range(3):
        assert trader.admit_order(order=buy(5000))
    service = build_service(SQLiteStore(db), None)
    try:
        with served_service(service) as url, chromium("--window-size=1200,900") as driver:
            driver.get(url)

            def shown(d: Any) -> Any:
                element = d.find_element(By.ID, "refusals")
                return element if "max_order_quantity 3" in element.text else False

            element = wait(driver, shown)
            assert "Refused by pre-trade checks" in element.text
            assert element.is_displayed()
    finally:
        service.manager.close()
        trader.close()
