"""One small store interface, chosen by object or URL on the manager."""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from haltgate import (
    CircuitBreakerManager,
    ConfigError,
    InvalidInputError,
    ManualCircuitBreaker,
)
from haltgate.store import MemoryStore, Store, open_store
from haltgate.store.redis import RedisStore
from haltgate.store.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(30)


def halt_and_reopen(first: object, second: object) -> CircuitBreakerManager:
    """Halt through a manager on ``first``; return a manager on ``second``."""
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=first)
    manager.halt_all("stop", "ops")
    return CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=second)


def test_memory_by_object_and_url() -> None:
    store = MemoryStore()
    again = halt_and_reopen(store, store)
    assert again.store is store and again.can_trade() is False
    assert isinstance(CircuitBreakerManager(store="memory://").store, MemoryStore)
    assert CircuitBreakerManager().store is None  # default: no store, state in memory


def test_sqlite_by_object_and_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = SQLiteStore(tmp_path / "x.db")
    again = halt_and_reopen(first, url)
    try:
        assert isinstance(again.store, SQLiteStore) and again.store is not first
        assert again.can_trade() is False
    finally:
        first.close()
        again.close()


def test_redis_by_object_and_url(redis_url: str) -> None:
    first = RedisStore(redis_url)
    again = halt_and_reopen(first, redis_url)
    try:
        assert isinstance(again.store, RedisStore) and again.store.namespace == "haltgate"
        assert again.can_trade() is False
    finally:
        first.close()
        again.close()


def test_every_store_is_a_store(tmp_path: Path, redis_url: str) -> None:
    stores = [
        open_store("memory://"),
        open_store(f"sqlite:///{tmp_path / 'y.db'}"),
        open_store(redis_url, namespace="iface", create=True),
    ]
    try:
        for store in stores:
            assert isinstance(store, Store)
            store.set_value("k", {"n": 1})
            assert store.get_value("k") == {"n": 1}
            store.set_value(
                "kill_switch.failures",
                {"count": 5},
                audit=("kill_switch_locked_out", "kill_switch", "eve", {"failures": 5}),
            )
            assert store.get_value("kill_switch.failures") == {"count": 5}
            entries = list(store.iter_audit())
            assert [(e.event, e.operator) for e in entries] == [("kill_switch_locked_out", "eve")]
            assert store.verify_audit().ok
            assert store.blocking_reason() is None
    finally:
        for store in stores:
            store.close()


def test_bad_store_specs_are_refused() -> None:
    with pytest.raises(ConfigError, match="unsupported store URL"):
        open_store("postgres://x")
    with pytest.raises(InvalidInputError, match="store"):
        CircuitBreakerManager(store=42)
    with pytest.raises(ConfigError):
        open_store("sqlite://")
    with pytest.raises(ConfigError, match="unknown sqlite URL parameter"):
        open_store("sqlite:///x.db?colour=blue")


def test_missing_redis_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"haltgate\[redis\]"):
        RedisStore("redis://127.0.0.1:1/0")


class _Portfolio:
    """A minimal PortfolioProvider (a flat portfolio)."""

    def get_total_value(self) -> Decimal:
        return Decimal("100000")

    def get_daily_pnl(self) -> Decimal:
        return Decimal("0")

    def get_daily_pnl_pct(self) -> Decimal:
        return Decimal("0")

    def get_max_drawdown(self) -> Decimal:
        return Decimal("0")

    def get_position_concentration(self, symbol: str) -> Decimal:
        return Decimal("0")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_trading_facade_takes_a_store_url_and_sees_other_processes(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from haltgate import TradingCircuitBreakers

    url = (
        f"sqlite:///{tmp_path / 'facade.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    facade = TradingCircuitBreakers(_Portfolio(), store=url)
    operator = CircuitBreakerManager(store=url)
    try:
        assert type(facade.store).__name__ == (
            "SQLiteStore" if backend == "sqlite" else "RedisStore"
        )
        assert facade.can_trade()
        operator.halt_all("desk closed", "ops")
        deadline = time.monotonic() + 2
        while facade.can_trade() and time.monotonic() < deadline:
            time.sleep(0.005)  # another store instance: waiting on its poller/pub-sub
        assert facade.can_trade() is False
        assert any("desk closed" in r for r in facade.get_blocking_reasons())
    finally:
        operator.close()
        facade.close()
