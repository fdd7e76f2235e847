"""Fixtures for the TradingCircuitBreakers tests: fake portfolios (sync and async), a
ManualClock, a MemoryStore and a key hash made once per session (scrypt is slow)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from trading_fakes import SECRET, AsyncFakePortfolio, FakePortfolio

from haltgate import (
    BreakerEvent,
    ManualClock,
    MemoryStore,
    TradingBreakerConfig,
    TradingCircuitBreakers,
    hash_key,
)


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
