"""Fake portfolios (sync and async) and helpers for the TradingCircuitBreakers tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

SECRET = "correct horse battery staple"


class FakePortfolio:
    """A synchronous PortfolioProvider whose answers the test sets."""

    def __init__(self) -> None:
        self.total = Decimal("100000")
        self.pnl_pct = Decimal("0")
        self.drawdown = Decimal("0")
        self.positions: dict[str, Decimal] = {}
        self.error: Exception | None = None
        self.hang = False
        self.release = threading.Event()
        self.calls: list[str] = []

    def _answer(self, method: str, value: Any) -> Any:
        self.calls.append(method)
        if self.hang:
            self.release.wait(10)
        if self.error is not None:
            raise self.error
        return value

    def get_total_value(self) -> Decimal:
        return self._answer("get_total_value", self.total)

    def get_daily_pnl(self) -> Decimal:
        return self._answer("get_daily_pnl", self.total * self.pnl_pct / 100)

    def get_daily_pnl_pct(self) -> Decimal:
        return self._answer("get_daily_pnl_pct", self.pnl_pct)

    def get_max_drawdown(self) -> Decimal:
        return self._answer("get_max_drawdown", self.drawdown)

    def get_position_concentration(self, symbol: str) -> Decimal:
        return self._answer("get_position_concentration", self.positions.get(symbol, Decimal("0")))


class AsyncFakePortfolio(FakePortfolio):
    """The same portfolio with coroutine methods (a hang awaits, so a timeout cancels it)."""

    async def _answer_async(self, method: str, value: Any) -> Any:
        self.calls.append(method)
        if self.hang:
            await asyncio.sleep(3600)
        if self.error is not None:
            raise self.error
        return value

    async def get_total_value(self) -> Decimal:
        return await self._answer_async("get_total_value", self.total)

    async def get_daily_pnl(self) -> Decimal:
        return await self._answer_async("get_daily_pnl", self.total * self.pnl_pct / 100)

    async def get_daily_pnl_pct(self) -> Decimal:
        return await self._answer_async("get_daily_pnl_pct", self.pnl_pct)

    async def get_max_drawdown(self) -> Decimal:
        return await self._answer_async("get_max_drawdown", self.drawdown)

    async def get_position_concentration(self, symbol: str) -> Decimal:
        return await self._answer_async(
            "get_position_concentration", self.positions.get(symbol, Decimal("0"))
        )


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run one coroutine to completion (no pytest-asyncio needed)."""
    return asyncio.run(coro)
