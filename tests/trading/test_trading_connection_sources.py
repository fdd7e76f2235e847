"""Provider rounds never clear the caller's connection failures, and a restored
connection trip is cleared by what its cause allows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trading_fakes import FakePortfolio, run

from haltgate import ManualClock, TradingBreakerConfig, TradingCircuitBreakers
from haltgate.store.sqlite import SQLiteStore


# ------------------------------------------------------------------------------ sources
def test_provider_rounds_never_clear_the_callers_connection_failures(
    make: Callable[..., TradingCircuitBreakers], sync_portfolio: FakePortfolio
) -> None:
    breakers = make(sync_portfolio, connection_failure_threshold=3)
    connection = breakers.get_breaker("connection")
    for _ in range(3):
        breakers.record_connection_failure(ConnectionError("broker down"))
    assert not breakers.can_trade()
    assert run(breakers.check_once()) is True
    sync_portfolio.error = OSError("portfolio service unreachable")
    assert run(breakers.check_once()) is False
    sync_portfolio.error = None
    assert run(breakers.check_once()) is True  # the provider recovers
    assert connection.is_tripped
    assert connection.get_consecutive_failures() == 3
    breakers.record_connection_success()
    assert breakers.can_trade()
    assert connection.get_consecutive_failures() == 0


# ------------------------------------------------------------------------------ restarts
def _facade(path: Path, clock: ManualClock, key_hash: str) -> TradingCircuitBreakers:
    portfolio = FakePortfolio()
    config = TradingBreakerConfig(kill_switch_key_hash=key_hash, connection_timeout_seconds=30)
    return TradingCircuitBreakers(portfolio, config, clock=clock, store=SQLiteStore(path))


def test_a_restored_timeout_trip_is_cleared_by_a_good_round(
    tmp_path: Path, clock: ManualClock, key_hash: str
) -> None:
    breakers = _facade(tmp_path / "x.db", clock, key_hash)
    clock.advance(31)
    assert not breakers.can_trade()  # nothing proved the link alive
    breakers.close()

    breakers = _facade(tmp_path / "x.db", clock, key_hash)
    try:
        assert breakers.get_breaker("connection").is_tripped
        assert run(breakers.check_once()) is True
        assert breakers.can_trade()
    finally:
        breakers.close()


def test_a_restored_failure_trip_is_not_cleared_by_a_good_round(
    tmp_path: Path, clock: ManualClock, key_hash: str
) -> None:
    breakers = _facade(tmp_path / "x.db", clock, key_hash)
    for _ in range(3):
        breakers.record_connection_failure(ConnectionError("broker down"))
    breakers.close()

    breakers = _facade(tmp_path / "x.db", clock, key_hash)
    try:
        assert run(breakers.check_once()) is True
        assert not breakers.can_trade()
        assert breakers.get_breaker("connection").get_consecutive_failures() == 3  # type: ignore[attr-defined]
        breakers.record_connection_success()
        assert breakers.can_trade()
    finally:
        breakers.close()
