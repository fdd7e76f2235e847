"""The status page's layout in a real headless Chromium: at a narrow (760 px) and a wide
(1280 px) window, with long breaker names and long reasons, every Halt/Reset button is
shown, inside the window, and works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import chromium, needs_browser, served, wait

from haltgate import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    ManualCircuitBreaker,
    ManualClock,
    MemoryStore,
    hash_key,
)
from haltgate.config import parse_config

TOKEN = "layout-operator-token-0123456789"
LONG_REASON = (
    "risk desk asked for a full stop while the reconciliation with the prime broker is "
    "checked line by line, see ticket "
)
UNBROKEN = "https://ops.example.com/incidents/" + "0123456789abcdef" * 8

pytestmark = needs_browser


@pytest.fixture
def server() -> Iterator[tuple[str, MemoryStore]]:
    store = MemoryStore()
    clock = ManualClock()
    trader = CircuitBreakerManager(
        breakers=[
            DailyLossCircuitBreaker(max_daily_loss="5000", name="daily_loss_emerging_markets"),
            ManualCircuitBreaker(name="manual_fixed_income_desk_london"),
            ManualCircuitBreaker(name="manual_equities_desk_new_york"),
        ],
        store=store,
        clock=clock,
    )
    trader.can_trade(current_portfolio_value=100_000)
    trader.can_trade(current_portfolio_value=93_500)
    for name in ("manual_fixed_income_desk_london", "manual_equities_desk_new_york"):
        breaker = trader.get_breaker(name)
        assert breaker is not None
        breaker.trigger_halt(reason=LONG_REASON + UNBROKEN, operator="bob")
    config = parse_config(
        {
            "store": {"url": "memory://"},
            "breakers": [{"type": "drawdown", "max_drawdown_pct": "0.10"}, {"type": "manual"}],
            "operators": [{"name": "alice", "token_hash": hash_key(TOKEN)}],
        }
    )
    try:
        with served(store, config) as url:
            yield url, store
    finally:
        trader.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _wait(driver: Any, condition: Any, timeout: float = 15) -> Any:
    return wait(driver, condition, timeout)


def _state(driver: Any, name: str) -> str | None:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f"#breakers tbody tr[data-breaker='{name}']")
    return rows[0].get_attribute("data-state") if rows else None


def _buttons_in_view(driver: Any) -> list[dict[str, Any]]:
    """Each row button's breaker, its box against the viewport, and whether it is the
    element on top at its centre (nothing covers it)."""
    result: list[dict[str, Any]] = driver.execute_script(
        """
        return [...document.querySelectorAll('#breakers tbody button')].map((b) => {
          // Scroll the page vertically only, so that the button's row is in view; nothing
          // scrolls sideways (a button hidden to the right must stay hidden).
          window.scrollBy(0, b.getBoundingClientRect().top - window.innerHeight / 2);
          const r = b.getBoundingClientRect();
          const x = Math.min(Math.max(r.left + r.width / 2, 0), window.innerWidth - 1);
          const y = r.top + r.height / 2;
          const top = document.elementFromPoint(x, y);
          return {breaker: b.dataset.breaker, left: r.left, right: r.right,
                  width: r.width, inner: window.innerWidth,
                  onTop: top === b || b.contains(top),
                  pageScrollX: document.documentElement.scrollWidth > window.innerWidth};
        });
        """
    )
    return result


@pytest.mark.parametrize("width", [760, 1280])
def test_every_halt_and_reset_button_is_shown_inside_the_window_and_works(
    server: tuple[str, MemoryStore], browser: Any, width: int
) -> None:
    from selenium.webdriver.common.by import By

    url, store = server
    browser.set_window_size(width, 1000)
    browser.get(url)
    names = {
        "drawdown",
        "manual",
        "daily_loss_emerging_markets",
        "manual_fixed_income_desk_london",
        "manual_equities_desk_new_york",
    }
    _wait(browser, lambda d: all(_state(d, name) for name in names))
    # The checks below hold only if the page's inline style runs (its CSP hash matches).
    if width == 760:
        browser.save_screenshot("/tmp/page760.png")
    buttons = _buttons_in_view(browser)
    assert {b["breaker"] for b in buttons} == names
    for element in browser.find_elements(By.CSS_SELECTOR, "#breakers tbody button"):
        assert element.is_displayed()
    for box in buttons:
        assert box["width"] > 0, box
        assert box["left"] >= 0 and box["right"] <= box["inner"], box
        assert box["onTop"], box
    assert not buttons[0]["pageScrollX"], "the page itself scrolls sideways"

    # Clickable where it is: the operator resets a halted desk and halts another breaker.
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "reason").send_keys("reconciled")
    browser.find_element(
        By.CSS_SELECTOR, "button.reset[data-breaker='manual_equities_desk_new_york']"
    ).click()
    _wait(browser, lambda d: _state(d, "manual_equities_desk_new_york") == "NORMAL")
    assert store.load_snapshot("manual_equities_desk_new_york")["state"] == "NORMAL"  # type: ignore[index]
    browser.find_element(By.ID, "reason").send_keys("narrow screen drill")
    browser.find_element(By.CSS_SELECTOR, "button.halt[data-breaker='drawdown']").click()
    _wait(browser, lambda d: _state(d, "drawdown") == "MANUALLY_HALTED")
    assert store.load_snapshot("drawdown")["state"] == "MANUALLY_HALTED"  # type: ignore[index]
    for box in _buttons_in_view(browser):
        assert box["right"] <= box["inner"] and box["onTop"], box
