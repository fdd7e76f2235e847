"""TradingBreakerConfig: the README's fields and defaults, conversion, and refusals that
name the parameter."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from trading_fakes import FakePortfolio

from haltgate import (
    HaltgateError,
    InvalidInputError,
    PortfolioProvider,
    TradingBreakerConfig,
    TradingCircuitBreakers,
    UTCDailyCalendar,
)

README_DEFAULTS = {
    "daily_loss_limit_pct": Decimal("-2.0"),
    "daily_loss_warning_pct": Decimal("-1.5"),
    "max_drawdown_pct": Decimal("-10.0"),
    "drawdown_warning_pct": Decimal("-7.0"),
    "max_position_pct": Decimal("20.0"),
    "position_warning_pct": Decimal("15.0"),
    "volatility_std_threshold": Decimal("3.0"),
    "volatility_lookback_days": 20,
    "max_orders_per_minute": 10,
    "max_orders_per_hour": 100,
    "connection_failure_threshold": 3,
    "connection_timeout_seconds": 30,
    "check_interval_seconds": 1.0,
    "cooldown_seconds": 300,
    "auto_recovery": False,
    "require_manual_reset": True,
}


def test_every_readme_field_and_default():
    config = TradingBreakerConfig()
    for name, value in README_DEFAULTS.items():
        assert getattr(config, name) == value, name
    assert config.kill_switch_key_hash is None
    assert isinstance(config.calendar, UTCDailyCalendar)


def test_values_are_converted():
    config = TradingBreakerConfig(
        daily_loss_limit_pct="-3", daily_loss_warning_pct=-2.5, max_position_pct=25
    )
    assert config.daily_loss_limit_pct == Decimal("-3")
    assert config.daily_loss_warning_pct == Decimal("-2.5")
    assert config.max_position_pct == Decimal("25")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("daily_loss_limit_pct", Decimal("2.0")),  # losses are negative
        ("daily_loss_limit_pct", Decimal("0")),
        ("daily_loss_limit_pct", Decimal("-101")),
        ("daily_loss_limit_pct", float("nan")),
        ("daily_loss_limit_pct", True),
        ("daily_loss_limit_pct", None),
        ("daily_loss_warning_pct", Decimal("-2.5")),  # beyond the limit
        ("max_drawdown_pct", "ten"),
        ("drawdown_warning_pct", Decimal("-10.0")),
        ("max_position_pct", Decimal("120")),
        ("max_position_pct", Decimal("0")),
        ("position_warning_pct", Decimal("20.0")),
        ("volatility_std_threshold", 0),
        ("volatility_lookback_days", 1),
        ("max_orders_per_minute", 0),
        ("max_orders_per_hour", 2.5),
        ("connection_failure_threshold", False),
        ("connection_timeout_seconds", -1),
        ("check_interval_seconds", 0),
        ("cooldown_seconds", -1),
        ("auto_recovery", 1),
        ("require_manual_reset", "yes"),
        ("kill_switch_key_hash", "my-secret-key"),  # the secret itself, not a hash
        ("provider_timeout_seconds", 0),
    ],
)
def test_bad_values_are_refused_naming_the_field(field, value):
    with pytest.raises(InvalidInputError) as info:
        TradingBreakerConfig(**{field: value})
    assert info.value.parameter == field
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, HaltgateError)


def test_warnings_can_be_disabled():
    config = TradingBreakerConfig(daily_loss_warning_pct=None, position_warning_pct=None)
    assert config.daily_loss_warning_pct is None


def test_config_is_frozen():
    config = TradingBreakerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.daily_loss_limit_pct = Decimal("5")  # type: ignore[misc]
    assert dataclasses.replace(config, max_orders_per_minute=5).max_orders_per_minute == 5


def test_facade_refuses_a_non_provider_and_a_non_config():
    with pytest.raises(TypeError, match=r"PortfolioProvider \(no get_total_value\(\)\)"):
        TradingCircuitBreakers(object())
    with pytest.raises(TypeError, match="TradingBreakerConfig"):
        TradingCircuitBreakers(FakePortfolio(), {"max_orders_per_minute": 5})  # type: ignore[arg-type]


def test_fake_portfolio_satisfies_the_protocol():
    assert isinstance(FakePortfolio(), PortfolioProvider)


def test_store_url_is_accepted():
    breakers = TradingCircuitBreakers(FakePortfolio(), store="memory://")
    assert breakers.store is breakers.manager.store
