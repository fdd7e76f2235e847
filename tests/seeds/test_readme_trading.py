"""The trader-ai README's TradingCircuitBreakers and PortfolioProvider examples, run with
only the import changed to haltgate.

The README's code is copied verbatim (top-level ``await`` wrapped in a coroutine). The
names it leaves undefined — portfolio_manager, proposed_value, execute_order, order, log,
on_breaker_trip, on_warning — are the stand-ins below.
"""

# ruff: noqa: I001  (the README's import lines are kept as written)
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

# --------------------------------------------------------------------------- README example:
# "Portfolio Provider Protocol" (import changed from circuit_breakers to haltgate)
# fmt: off
from haltgate import PortfolioProvider
from decimal import Decimal


class MyPortfolioManager(PortfolioProvider):
    async def get_total_value(self) -> Decimal:
        return self.total_portfolio_value

    async def get_daily_pnl(self) -> Decimal:
        return self.today_pnl

    async def get_daily_pnl_pct(self) -> Decimal:
        return (self.today_pnl / self.starting_value) * 100

    async def get_max_drawdown(self) -> Decimal:
        return self.calculate_drawdown_from_peak()

    async def get_position_concentration(self, symbol: str) -> Decimal:
        position_value = self.positions.get(symbol, Decimal("0"))
        return (position_value / self.total_portfolio_value) * 100
# fmt: on


# --------------------------------------------------------------------------- stand-ins
executed: list[object] = []
logged: list[str] = []
trips: list[object] = []
warnings: list[object] = []

order = {"symbol": "SPY", "side": "buy", "value": Decimal("5000")}
proposed_value = Decimal("5000")


def execute_order(o: object) -> None:
    executed.append(o)


def log(message: str) -> None:
    logged.append(message)


def on_breaker_trip(event: object) -> None:
    trips.append(event)


def on_warning(event: object) -> None:
    warnings.append(event)


def make_portfolio(today_pnl: str, spy: str = "0", peak: str = "100000") -> MyPortfolioManager:
    manager = MyPortfolioManager()
    manager.starting_value = Decimal("100000")
    manager.today_pnl = Decimal(today_pnl)
    manager.total_portfolio_value = manager.starting_value + manager.today_pnl
    manager.positions = {"SPY": Decimal(spy)}
    high = max(Decimal(peak), manager.total_portfolio_value)
    manager.calculate_drawdown_from_peak = lambda: (
        (manager.total_portfolio_value - high) / high * 100
    )
    return manager


portfolio_manager = make_portfolio("0")


# --------------------------------------------------------------------------- README example:
# "Trading Circuit Breakers (P&L Protection)" (import changed; top-level await wrapped)
# fmt: off
async def readme_trading_example():
    from decimal import Decimal
    from haltgate import TradingCircuitBreakers, TradingBreakerConfig

    # Configure thresholds
    config = TradingBreakerConfig(
        # Daily Loss Breaker
        daily_loss_limit_pct=Decimal("-2.0"),   # -2% triggers halt
        daily_loss_warning_pct=Decimal("-1.5"), # -1.5% warning

        # Max Drawdown Kill Switch
        max_drawdown_pct=Decimal("-10.0"),      # -10% kill switch
        drawdown_warning_pct=Decimal("-7.0"),   # -7% warning

        # Position Concentration
        max_position_pct=Decimal("20.0"),       # 20% max single position

        # Rate Limiting
        max_orders_per_minute=10,
        max_orders_per_hour=100
    )

    # Initialize with portfolio provider
    breakers = TradingCircuitBreakers(portfolio_manager, config)

    # Start background monitoring
    await breakers.start_monitoring()

    # Check before trading
    if breakers.can_trade():
        # Record the order for rate limiting
        if await breakers.record_order():
            # Check position concentration
            if await breakers.check_position_concentration("SPY", proposed_value):
                execute_order(order)
            else:
                log("Position concentration limit exceeded")
        else:
            log("Rate limit exceeded")
    else:
        reasons = breakers.get_blocking_reasons()
        log(f"Trading blocked: {reasons}")

    # Register callbacks
    breakers.register_trip_callback(on_breaker_trip)
    breakers.register_warning_callback(on_warning)
    # (not in the README: hand the facade back so the test can stop its monitoring)
    return breakers
# fmt: on


# --------------------------------------------------------------------------- tests
def _run_example(manager: MyPortfolioManager):
    global portfolio_manager
    portfolio_manager = manager
    executed.clear()
    logged.clear()
    trips.clear()
    warnings.clear()

    async def go():
        breakers = await readme_trading_example()
        try:
            status = breakers.get_status()
            # The callbacks the example registered see what monitoring finds next.
            manager.today_pnl = Decimal("-1600")
            manager.total_portfolio_value = manager.starting_value + manager.today_pnl
            await breakers.check_once()
            manager.today_pnl = Decimal("-3000")
            manager.total_portfolio_value = manager.starting_value + manager.today_pnl
            await breakers.check_once()
            return status
        finally:
            await breakers.stop_monitoring()

    return asyncio.run(go())


def test_healthy_portfolio_executes_the_order():
    status = _run_example(make_portfolio("500", spy="10000"))
    assert executed == [order]
    assert logged == []
    assert status["orders"]["last_minute"] == 1
    assert status["portfolio"]["daily_pnl_pct"] == Decimal("0.5")
    assert [w.breaker_name for w in warnings] == ["daily_loss"]
    assert [t.breaker_name for t in trips] == ["daily_loss"]


def test_concentration_limit_branch():
    _run_example(make_portfolio("0", spy="18000"))  # 18 % + 5 000 = 23 %
    assert executed == []
    assert logged == ["Position concentration limit exceeded"]


def test_blocked_branch_lists_the_reasons():
    _run_example(make_portfolio("-2500"))  # -2.5 % today
    assert executed == []
    assert len(logged) == 1
    assert logged[0].startswith("Trading blocked: ['daily_loss: ")


def test_kill_switch_branch():
    _run_example(make_portfolio("-1000", peak="112000"))  # about 11.6 % below the peak
    assert executed == []
    assert "max_drawdown" in logged[0] and "reset_kill_switch" in logged[0]


def test_portfolio_provider_example_answers_as_documented():
    manager = make_portfolio("-2500", spy="18000", peak="110000")

    async def ask():
        return (
            await manager.get_total_value(),
            await manager.get_daily_pnl(),
            await manager.get_daily_pnl_pct(),
            await manager.get_max_drawdown(),
            await manager.get_position_concentration("SPY"),
        )

    total, pnl, pct, drawdown, spy = asyncio.run(ask())
    assert (total, pnl, pct) == (Decimal("97500"), Decimal("-2500"), Decimal("-2.5"))
    assert drawdown < Decimal("-11")
    assert spy == pytest.approx(Decimal("18.46"), abs=Decimal("0.01"))
    assert isinstance(manager, PortfolioProvider)
