"""The monitoring loop: one round via check_once (sync and async providers), and a loop
that survives providers that raise, hang or return garbage (each failure feeds the
connection breaker)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from trading_fakes import run


def test_check_once_feeds_the_breakers(make, portfolio):
    breakers = make(portfolio)
    portfolio.pnl_pct = Decimal("-2.5")
    portfolio.drawdown = Decimal("-12.0")
    assert run(breakers.check_once()) is True
    assert breakers.get_breaker("daily_loss").is_tripped
    assert breakers.get_breaker("max_drawdown").is_tripped
    assert breakers.get_status()["portfolio"]["max_drawdown"] == Decimal("-12.0")


def test_raising_provider_feeds_the_connection_breaker(make, portfolio):
    breakers = make(portfolio)
    connection = breakers.get_breaker("connection")
    portfolio.error = OSError("portfolio service unreachable")
    assert run(breakers.check_once()) is False
    assert run(breakers.check_once()) is False
    assert breakers.can_trade()
    assert run(breakers.check_once()) is False
    assert not breakers.can_trade()
    assert "unreachable" in connection.get_trip_details()["last_error"]
    portfolio.error = None
    assert run(breakers.check_once()) is True  # the provider is back: its trip clears
    assert breakers.can_trade()
    assert breakers.get_status()["portfolio"]["ok"] is True


def test_hanging_provider_times_out(make, portfolio):
    breakers = make(portfolio, provider_timeout_seconds=0.05)
    portfolio.hang = True
    started = time.monotonic()
    assert run(breakers.check_once()) is False
    assert time.monotonic() - started < 2
    assert breakers.get_breaker("connection").get_consecutive_failures() == 1
    assert "no answer within" in breakers.get_status()["portfolio"]["error"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pnl_pct", None),
        ("pnl_pct", "not a number"),
        ("pnl_pct", float("nan")),
        ("drawdown", Decimal("12.0")),  # a positive drawdown breaks the provider contract
    ],
)
def test_unusable_values_count_as_provider_failures(make, sync_portfolio, field, value):
    breakers = make(sync_portfolio)
    setattr(sync_portfolio, field, value)
    assert run(breakers.check_once()) is False
    assert breakers.get_breaker("connection").get_consecutive_failures() == 1


def test_provider_success_does_not_forget_broker_failures(make, sync_portfolio):
    breakers = make(sync_portfolio)
    breakers.record_connection_failure("timeout from broker")
    breakers.record_connection_failure("timeout from broker")
    assert run(breakers.check_once())
    assert breakers.get_breaker("connection").get_consecutive_failures() == 2
    breakers.record_connection_failure("timeout from broker")
    assert not breakers.can_trade()


def test_loop_survives_raising_and_hanging_provider(make, portfolio):
    breakers = make(portfolio, check_interval_seconds=0.01, provider_timeout_seconds=0.05)
    connection = breakers.get_breaker("connection")

    async def wait_for(condition, deadline: float = 5.0) -> None:
        end = time.monotonic() + deadline
        while not condition():
            assert time.monotonic() < end, "monitoring made no progress"
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        await breakers.start_monitoring()
        assert breakers.is_monitoring
        await breakers.start_monitoring()  # a second start does nothing
        portfolio.error = RuntimeError("boom")
        await wait_for(lambda: connection.is_tripped)
        portfolio.error = None
        portfolio.hang = True
        before = connection.get_consecutive_failures()
        await wait_for(lambda: connection.get_consecutive_failures() >= before + 2)
        assert breakers.is_monitoring
        portfolio.hang = False
        portfolio.release.set()
        portfolio.pnl_pct = Decimal("-2.2")
        await wait_for(lambda: not connection.is_tripped)
        await wait_for(lambda: breakers.get_breaker("daily_loss").is_tripped)
        await breakers.stop_monitoring()
        assert not breakers.is_monitoring
        calls = len(portfolio.calls)
        await asyncio.sleep(0.05)
        assert len(portfolio.calls) == calls  # stopped means stopped

    run(scenario())


def test_start_monitoring_checks_before_returning(make, sync_portfolio):
    breakers = make(sync_portfolio, check_interval_seconds=60)
    sync_portfolio.pnl_pct = Decimal("-5")

    async def scenario() -> bool:
        await breakers.start_monitoring()
        blocked = not breakers.can_trade()
        await breakers.stop_monitoring()
        return blocked

    assert run(scenario())


def test_stop_monitoring_is_prompt_during_a_hang(make):
    from trading_fakes import AsyncFakePortfolio

    fake = AsyncFakePortfolio()
    breakers = make(fake, check_interval_seconds=0.01, provider_timeout_seconds=30)

    async def scenario() -> float:
        await breakers.start_monitoring()
        fake.hang = True
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await breakers.stop_monitoring()
        return time.monotonic() - started

    assert run(scenario()) < 1.0
