"""The manager routes and keeps its fast path from declared contracts only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from haltgate import (
    BaseCircuitBreaker,
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    HaltgateError,
    InvalidInputError,
    ManualClock,
    TradingBreakerConfig,
    TradingCircuitBreakers,
)


class KwargsBreaker(BaseCircuitBreaker):
    """A custom breaker whose can_trade takes any keyword, and names what it observes."""

    observes = ("returns",)

    def __init__(self) -> None:
        super().__init__(name="kwargs")
        self.seen: list[dict[str, Any]] = []

    def can_trade(self, **observations: Any) -> bool:
        self.seen.append(observations)
        return not self.is_tripped


class UndeclaredKwargsBreaker(BaseCircuitBreaker):
    """``**kwargs`` and no ``observes``: it takes nothing."""

    def __init__(self) -> None:
        super().__init__(name="undeclared")
        self.seen: list[dict[str, Any]] = []

    def can_trade(self, **observations: Any) -> bool:
        self.seen.append(observations)
        return True


class AlwaysRefusing(DrawdownCircuitBreaker):
    """A drawdown subclass whose own decision always refuses."""

    def can_trade(self, current_portfolio_value: Any = None) -> bool:  # type: ignore[override]
        return False


def test_a_typo_is_refused_even_with_a_kwargs_breaker(clock: ManualClock) -> None:
    custom = KwargsBreaker()
    undeclared = UndeclaredKwargsBreaker()
    drawdown = DrawdownCircuitBreaker("0.10")
    manager = CircuitBreakerManager(breakers=[drawdown, custom, undeclared], clock=clock)
    manager.can_trade(current_portfolio_value=100)
    with pytest.raises(InvalidInputError, match="current_portfolio_val"):
        manager.can_trade(current_portfolio_val=50)
    assert drawdown.get_peak() == Decimal(100)
    assert manager.can_trade(returns=[1, 2])
    assert {"returns": [1, 2]} in custom.seen
    assert all("current_portfolio_value" not in seen for seen in custom.seen)
    assert all(not seen for seen in undeclared.seen)
    assert manager.can_trade(current_portfolio_value=50) is False  # drawdown saw the fall


@pytest.mark.parametrize("key", ["current_portfolio_value", "start_of_day_value", "price"])
def test_an_explicit_none_observation_is_refused(clock: ManualClock, key: str) -> None:
    from haltgate import DailyLossCircuitBreaker, VolatilityCircuitBreaker

    manager = CircuitBreakerManager(
        breakers=[
            DrawdownCircuitBreaker("0.10"),
            DailyLossCircuitBreaker(max_daily_loss=100),
            VolatilityCircuitBreaker(),
        ],
        clock=clock,
    )
    with pytest.raises(TypeError) as info:
        manager.can_trade(**{key: None})
    assert isinstance(info.value, HaltgateError)
    assert key in str(info.value)


def test_an_explicit_none_is_refused_by_the_breakers_too(clock: ManualClock) -> None:
    from haltgate import DailyLossCircuitBreaker, VolatilityCircuitBreaker

    with pytest.raises(TypeError, match="current_portfolio_value"):
        DrawdownCircuitBreaker("0.10", clock=clock).can_trade(current_portfolio_value=None)
    daily = DailyLossCircuitBreaker(max_daily_loss=100, clock=clock)
    with pytest.raises(TypeError, match="start_of_day_value"):
        daily.can_trade(current_portfolio_value=100, start_of_day_value=None)
    assert daily.get_start_of_day_value() is None  # nothing recorded
    with pytest.raises(TypeError, match="price"):
        VolatilityCircuitBreaker(clock=clock).can_trade(price=None)


def test_a_subclass_that_overrides_can_trade_is_always_asked(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(breakers=[AlwaysRefusing("0.10")], clock=clock)
    assert manager.can_trade() is False
    assert manager.can_trade() is False
    assert manager.can_trade(current_portfolio_value=100) is False
    assert manager.record_order() is False


def test_contracts_are_declared_by_haltgate_breakers() -> None:
    from haltgate import (
        ConnectionCircuitBreaker,
        DailyLossCircuitBreaker,
        ErrorRateCircuitBreaker,
        ManualCircuitBreaker,
        OrderRateCircuitBreaker,
        PositionConcentrationCircuitBreaker,
        VolatilityCircuitBreaker,
    )
    from haltgate.breakers.contract import BreakerContract

    for cls in (
        DrawdownCircuitBreaker,
        DailyLossCircuitBreaker,
        OrderRateCircuitBreaker,
        ErrorRateCircuitBreaker,
        ManualCircuitBreaker,
        PositionConcentrationCircuitBreaker,
        VolatilityCircuitBreaker,
        ConnectionCircuitBreaker,
    ):
        assert "contract" in cls.__dict__, cls
        assert isinstance(cls.contract, BreakerContract)
        assert not cls.contract.asked, cls
    assert OrderRateCircuitBreaker.contract.admits_orders
    assert ErrorRateCircuitBreaker.contract.counts_errors
    assert ConnectionCircuitBreaker.contract.trips_by_time
    assert AlwaysRefusing.contract.asked


def test_get_breaker_refuses_a_name_that_is_not_text(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.10")], clock=clock)
    with pytest.raises(TypeError) as info:
        manager.get_breaker([1])  # type: ignore[arg-type]
    assert isinstance(info.value, HaltgateError)
    assert "name" in str(info.value)


def test_the_facade_keeps_the_fast_path_while_its_connection_deadline_is_ahead(
    clock: ManualClock,
) -> None:
    class Quiet:
        def get_daily_pnl_pct(self) -> Decimal:
            return Decimal(0)

        def get_max_drawdown(self) -> Decimal:
            return Decimal(0)

        def get_total_value(self) -> Decimal:
            return Decimal(100_000)

        def get_daily_pnl(self) -> Decimal:
            return Decimal(0)

        def get_position_concentration(self, symbol: str) -> Decimal:
            return Decimal(0)

    facade = TradingCircuitBreakers(
        Quiet(), TradingBreakerConfig(connection_timeout_seconds=30), clock=clock
    )
    manager = facade.manager
    assert facade.can_trade()
    assert manager._quiet, "steady state must answer from the fast path"
    clock.advance(29)
    assert facade.can_trade() and manager._quiet
    clock.advance(2)  # the connection deadline passed: the fast path must not hide it
    assert facade.can_trade() is False
    assert any("connection" in r for r in facade.get_blocking_reasons())
