"""The status page in a real headless Chromium: every breaker's state, halt and reset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import chromium, needs_browser, served, wait

from haltgate import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    ManualClock,
    MemoryStore,
    OrderRateCircuitBreaker,
    hash_key,
)
from haltgate.config import parse_config

TOKEN = "page-operator-token-0123456789"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

pytestmark = needs_browser


@pytest.fixture
def server() -> Iterator[tuple[str, MemoryStore]]:
    store = MemoryStore()
    # A trading process's breakers in the same store: daily loss tripped, order rate quiet.
    clock = ManualClock()
    trader = CircuitBreakerManager(
        breakers=[
            DailyLossCircuitBreaker(max_daily_loss="5000"),
            OrderRateCircuitBreaker(max_orders_per_minute=10),
        ],
        store=store,
        clock=clock,
    )
    trader.can_trade(current_portfolio_value=100_000)
    trader.can_trade(current_portfolio_value=93_500)
    config = parse_config(
        {
            "store": {"url": "memory://"},
            "breakers": [
                {"type": "drawdown", "max_drawdown_pct": "0.10"},
                {"type": "manual"},
            ],
            "operators": [{"name": "alice", "token_hash": hash_key(TOKEN)}],
        }
    )
    with served(store, config) as url:
        yield url, store


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium("--window-size=1400,1000") as driver:
        yield driver


def _wait(driver: Any, condition: Any, timeout: float = 15) -> Any:
    return wait(driver, condition, timeout)


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _states(driver: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#breakers tbody tr")
    return {r.get_attribute("data-breaker"): r.get_attribute("data-state") for r in rows}


def test_page_shows_every_breaker_and_an_operator_halts_and_resets(
    server: tuple[str, MemoryStore], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    url, store = server
    browser.get(url)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        _wait(browser, lambda d: d.find_element(By.ID, "banner-title").text == "TRADING HALTED")
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / "status-page-failure.png"))
        raise
    _wait(browser, lambda d: _text(d, "#banner-title") == "TRADING HALTED")
    # The config's breakers and every breaker the store knows (the order-rate breaker of the
    # trading process never changed state, so the store has nothing to show for it).
    _wait(browser, lambda d: len(_states(d)) == 3)
    assert _states(browser) == {"drawdown": "NORMAL", "manual": "NORMAL", "daily_loss": "TRIPPED"}
    reasons = browser.find_element(By.ID, "reasons").text
    assert "daily_loss: Daily loss 6500 exceeds max 5000" in reasons
    assert "192, 17, 31" in browser.find_element(By.ID, "banner").value_of_css_property(
        "background-color"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "status-page-halted.png"))

    # Without a token the page says the reset failed and nothing changes.
    browser.find_element(By.CSS_SELECTOR, "button.reset[data-breaker='daily_loss']").click()
    _wait(browser, lambda d: "RESET REFUSED" in _text(d, "#message"))
    assert store.load_snapshot("daily_loss")["state"] == "TRIPPED"  # type: ignore[index]

    # The operator enters a token and resets the daily-loss breaker.
    token = browser.find_element(By.ID, "token")
    token.send_keys(TOKEN)
    browser.find_element(By.ID, "reason").send_keys("loss reviewed with the desk")
    browser.find_element(By.CSS_SELECTOR, "button.reset[data-breaker='daily_loss']").click()
    _wait(browser, lambda d: _text(d, "#banner-title") == "TRADING ALLOWED")
    assert "Reset daily_loss as alice" in _text(browser, "#message")
    assert store.load_snapshot("daily_loss")["state"] == "NORMAL"  # type: ignore[index]
    browser.save_screenshot(str(ARTIFACTS / "status-page-allowed.png"))

    # Then halts everything with the big button.
    reason = browser.find_element(By.ID, "reason")
    reason.clear()
    reason.send_keys("exchange outage")
    browser.find_element(By.ID, "halt-all").click()
    _wait(browser, lambda d: _text(d, "#banner-title") == "TRADING HALTED")
    _wait(browser, lambda d: _states(d).get("manual") == "MANUALLY_HALTED")
    _wait(browser, lambda d: "exchange outage" in _text(d, "tr[data-breaker='manual']"))
    assert "alice" in _text(browser, "tr[data-breaker='manual']")
    snapshot = store.load_snapshot("manual")
    assert snapshot is not None and snapshot["trip"]["operator"] == "alice"
    browser.save_screenshot(str(ARTIFACTS / "status-page-kill-switch.png"))
