"""Monitoring survives a provider that raises CancelledError itself, and a dead monitoring
task is never silent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import pytest
from trading_fakes import AsyncFakePortfolio, FakePortfolio, run

from haltgate import TradingCircuitBreakers


class CancellingPortfolio(AsyncFakePortfolio):
    """get_daily_pnl_pct answers 0 in round 1, raises CancelledError in round 2 (as a library
    cancelling an inner future would), then answers -5.0."""

    def __init__(self, cancel_on: int = 2) -> None:
        super().__init__()
        self.cancel_on = cancel_on
        self.rounds = 0

    async def get_daily_pnl_pct(self) -> Decimal:
        self.rounds += 1
        if self.rounds == self.cancel_on:
            raise asyncio.CancelledError("inner future cancelled")
        if self.rounds > self.cancel_on:
            return Decimal("-5.0")
        return Decimal("0")


def run_guarded(coro: Coroutine[Any, Any, Any]) -> Any:
    """``run``, failing the test (not pytest) when a CancelledError escapes."""
    try:
        return run(coro)
    except asyncio.CancelledError as exc:
        pytest.fail(f"CancelledError escaped: {exc!r}")


async def until(condition: Callable[[], bool], deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "monitoring made no progress"
        await asyncio.sleep(0.005)


def test_a_providers_own_cancelled_error_is_a_provider_failure_and_monitoring_goes_on(
    make: Callable[..., TradingCircuitBreakers], caplog: pytest.LogCaptureFixture
) -> None:
    portfolio = CancellingPortfolio()
    breakers = make(portfolio, check_interval_seconds=0.01)
    connection = breakers.get_breaker("connection")
    daily_loss = breakers.get_breaker("daily_loss")

    async def scenario() -> None:
        await breakers.start_monitoring()  # round 1
        await until(lambda: portfolio.rounds >= 2)
        await until(lambda: daily_loss.is_tripped)  # seen in a later round
        assert breakers.is_monitoring
        assert not breakers.can_trade()
        started = time.monotonic()
        await breakers.stop_monitoring()
        assert time.monotonic() - started < 1.0
        assert not breakers.is_monitoring

    with caplog.at_level(logging.WARNING, logger="haltgate"):
        run_guarded(scenario())
    failed = [r for r in caplog.records if r.getMessage() == "portfolio_provider_failed"]
    assert [r.method for r in failed] == ["get_daily_pnl_pct"]  # type: ignore[attr-defined]
    assert connection.get_consecutive_failures() == 0  # the next good round cleared it
    assert breakers.monitoring_failure is None
    assert not [r for r in caplog.records if r.getMessage() == "trading_monitoring_died"]


def test_a_cancelled_error_in_the_first_round_counts_as_a_connection_failure(
    make: Callable[..., TradingCircuitBreakers],
) -> None:
    portfolio = CancellingPortfolio(cancel_on=1)
    breakers = make(portfolio, check_interval_seconds=60)

    async def scenario() -> int:
        await breakers.start_monitoring()
        failures = breakers.get_breaker("connection").get_consecutive_failures()
        assert breakers.is_monitoring
        await breakers.stop_monitoring()
        return failures

    assert run_guarded(scenario()) == 1
    assert breakers.get_status()["portfolio"]["ok"] is False


def test_a_monitoring_task_that_dies_refuses_trading_and_says_why(
    make: Callable[..., TradingCircuitBreakers],
    sync_portfolio: FakePortfolio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    breakers = make(sync_portfolio, check_interval_seconds=0.01)

    class Fatal(BaseException):
        pass

    tasks: list[asyncio.Task[None]] = []

    async def scenario() -> None:
        await breakers.start_monitoring()
        assert breakers._monitor is not None
        tasks.append(breakers._monitor)
        assert breakers.can_trade()

        async def broken() -> bool:
            raise Fatal("interpreter in trouble")

        breakers.check_once = broken  # type: ignore[method-assign]
        await until(lambda: not breakers.is_monitoring)
        await asyncio.sleep(0)  # done callbacks run on the next loop pass
        assert not breakers.can_trade()
        assert await breakers.record_order() is False  # orders are refused too
        reasons = breakers.get_blocking_reasons()
        assert any(r.startswith("monitoring: ") and "Fatal" in r for r in reasons)
        assert breakers.get_status()["monitoring_failure"] is not None
        del breakers.check_once
        await breakers.start_monitoring()  # restarting is the fix
        assert breakers.can_trade() and breakers.monitoring_failure is None
        await breakers.stop_monitoring()

    try:
        with caplog.at_level(logging.CRITICAL, logger="haltgate"):
            run(scenario())
    finally:
        # Retrieve the task's error ourselves: a failed task collected later logs from
        # __del__, which can land inside pytest's own work.
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()
    died = [r for r in caplog.records if r.getMessage() == "trading_monitoring_died"]
    assert len(died) == 1 and died[0].levelno == logging.CRITICAL


def test_stopping_a_dead_monitor_on_purpose_allows_trading_again(
    make: Callable[..., TradingCircuitBreakers], sync_portfolio: FakePortfolio
) -> None:
    breakers = make(sync_portfolio, check_interval_seconds=0.01)

    async def scenario() -> None:
        await breakers.start_monitoring()
        task = breakers._monitor
        assert task is not None
        task.cancel()  # cancelled by someone else than stop_monitoring()
        await until(lambda: not breakers.is_monitoring)
        await asyncio.sleep(0)
        assert breakers.monitoring_failure == "cancelled"
        assert not breakers.can_trade()
        await breakers.stop_monitoring()
        assert breakers.can_trade()

    run(scenario())
