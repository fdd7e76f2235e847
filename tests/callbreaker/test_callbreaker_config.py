"""CircuitBreakerConfig: the README's fields and defaults, the extra fields, validation."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from haltgate import CircuitBreaker, CircuitBreakerConfig, HaltgateError, InvalidInputError


def test_every_readme_field_has_its_default() -> None:
    config = CircuitBreakerConfig()
    assert config.failure_threshold == 5
    assert config.failure_rate_threshold == Decimal("0.5")
    assert config.success_threshold == 3
    assert config.failure_window_seconds == 60
    assert config.open_timeout_seconds == 60
    assert config.half_open_timeout_seconds == 30
    assert config.exponential_backoff is True
    assert config.max_backoff_seconds == 300
    assert config.backoff_multiplier == 2.0
    assert config.daily_loss_limit_pct == Decimal("-2.0")
    assert config.max_drawdown_pct == Decimal("-10.0")
    assert config.position_limit == Decimal("0.20")


def test_extra_fields_and_their_defaults() -> None:
    config = CircuitBreakerConfig()
    assert config.half_open_max_calls == config.success_threshold == 3
    assert config.minimum_calls == 10
    assert config.slow_call_seconds is None
    assert config.record_exceptions == (Exception,)
    assert config.ignore_exceptions == ()
    assert config.failure_result is None
    assert CircuitBreakerConfig(success_threshold=7).half_open_max_calls == 7
    assert CircuitBreakerConfig(success_threshold=7, half_open_max_calls=2).half_open_max_calls == 2


def test_numbers_are_converted() -> None:
    config = CircuitBreakerConfig(
        failure_rate_threshold=0.1,
        open_timeout_seconds="2.5",
        failure_window_seconds=Decimal("30"),
        daily_loss_limit_pct="-3",
        position_limit=0.25,
        backoff_multiplier="1.5",
        record_exceptions=[ConnectionError, TimeoutError],
    )
    assert config.failure_rate_threshold == Decimal("0.1")
    assert config.open_timeout_seconds == 2.5
    assert config.failure_window_seconds == 30.0
    assert config.daily_loss_limit_pct == Decimal("-3")
    assert config.position_limit == Decimal("0.25")
    assert config.backoff_multiplier == 1.5
    assert config.record_exceptions == (ConnectionError, TimeoutError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_threshold", 0),
        ("failure_threshold", True),
        ("failure_threshold", 2.5),
        ("failure_rate_threshold", 0),
        ("failure_rate_threshold", 1.5),
        ("failure_rate_threshold", float("nan")),
        ("failure_rate_threshold", "half"),
        ("success_threshold", 0),
        ("failure_window_seconds", 0),
        ("failure_window_seconds", -1),
        ("open_timeout_seconds", float("inf")),
        ("half_open_timeout_seconds", None),
        ("max_backoff_seconds", 10),  # below open_timeout_seconds=60 with backoff on
        ("backoff_multiplier", 0.5),
        ("exponential_backoff", "yes"),
        ("daily_loss_limit_pct", Decimal("2.0")),
        ("max_drawdown_pct", Decimal("-150")),
        ("position_limit", 0),
        ("half_open_max_calls", 0),
        ("minimum_calls", 0),
        ("slow_call_seconds", 0),
        ("record_exceptions", "ValueError"),
        ("record_exceptions", (ValueError, int)),
        ("ignore_exceptions", int),
        ("failure_result", 42),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        CircuitBreakerConfig(**{field: value})
    assert caught.value.parameter == field
    assert field in str(caught.value)
    assert isinstance(caught.value, HaltgateError)
    assert isinstance(caught.value, (ValueError, TypeError))


def test_backoff_cap_below_open_timeout_is_fine_without_backoff() -> None:
    config = CircuitBreakerConfig(open_timeout_seconds=3600, exponential_backoff=False)
    assert config.open_timeout_seconds == 3600


def test_config_is_frozen_and_replace_revalidates() -> None:
    config = CircuitBreakerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.failure_threshold = 1  # type: ignore[misc]
    assert dataclasses.replace(config, failure_threshold=2).failure_threshold == 2
    with pytest.raises(InvalidInputError, match="failure_threshold"):
        dataclasses.replace(config, failure_threshold=-2)


def test_breaker_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidInputError) as caught:
        CircuitBreaker("")
    assert caught.value.parameter == "name"
    with pytest.raises(InvalidInputError) as caught:
        CircuitBreaker("x", "no_such_type")
    assert caught.value.parameter == "circuit_type"
    with pytest.raises(InvalidInputError) as caught:
        CircuitBreaker("x", config={"failure_threshold": 1})  # type: ignore[arg-type]
    assert caught.value.parameter == "config"
    with pytest.raises(InvalidInputError) as caught:
        CircuitBreaker("x", clock=object())  # type: ignore[arg-type]
    assert caught.value.parameter == "clock"


def test_to_dict_is_json_friendly() -> None:
    import json

    data = CircuitBreakerConfig(record_exceptions=ConnectionError).to_dict()
    assert data["failure_rate_threshold"] == "0.5"
    assert data["record_exceptions"] == "ConnectionError"
    json.dumps(data)
