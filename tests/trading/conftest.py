"""Fixtures for the TradingCircuitBreakers tests: fake portfolios (sync and async), a
ManualClock, a shared MemoryStore and a key hash made once per session (scrypt is slow)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from haltgate import (
    BreakerEvent,
    ManualClock,
    MemoryStore,
    TradingBreakerConfig,
    TradingCircuitBreakers,
    hash_key,
)

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


@pytest.fixture(scope="session")
def key_hash() -> str:
    return hash_key(SECRET)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 14, 30, tzinfo=UTC))


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture(params=["sync", "async"])
def portfolio(request: pytest.FixtureRequest) -> Iterator[FakePortfolio]:
    fake = FakePortfolio() if request.param == "sync" else AsyncFakePortfolio()
    yield fake
    fake.release.set()


@pytest.fixture
def sync_portfolio() -> Iterator[FakePortfolio]:
    fake = FakePortfolio()
    yield fake
    fake.release.set()


@pytest.fixture
def make(
    clock: ManualClock, store: MemoryStore, key_hash: str
) -> Callable[..., TradingCircuitBreakers]:
    """``make(portfolio, **config_fields)``: a facade on the test's clock and store."""

    def build(portfolio: Any, **fields: Any) -> TradingCircuitBreakers:
        fields.setdefault("kill_switch_key_hash", key_hash)
        return TradingCircuitBreakers(
            portfolio, TradingBreakerConfig(**fields), clock=clock, store=store
        )

    return build


@pytest.fixture
def events() -> list[BreakerEvent]:
    return []
