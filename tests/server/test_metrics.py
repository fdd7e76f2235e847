"""Metrics on a registry that is passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from haltgate import CircuitBreakerManager, ManualClock, OrderRateCircuitBreaker
from haltgate.metrics import HaltgateMetrics, render_latest


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_state_trips_and_orders() -> None:
    clock = ManualClock()
    manager = CircuitBreakerManager(
        breakers=[OrderRateCircuitBreaker(max_orders_per_minute=2)], clock=clock
    )
    registry = CollectorRegistry()
    metrics = HaltgateMetrics(manager, registry)
    metrics.instrument_orders()
    assert _value(registry, "haltgate_trading_allowed") == 1.0
    assert [manager.record_order() for _ in range(3)] == [True, True, False]
    assert _value(registry, "haltgate_orders_total", outcome="admitted") == 2.0
    assert _value(registry, "haltgate_orders_total", outcome="refused") == 1.0
    assert (
        _value(registry, "haltgate_breaker_trips_total", breaker="order_rate", kind="tripped")
        == 1.0
    )
    assert _value(registry, "haltgate_trading_allowed") == 0.0
    assert (
        _value(
            registry,
            "haltgate_breaker_state",
            breaker="order_rate",
            type="order_rate",
            state="TRIPPED",
        )
        == 1.0
    )
    clock.advance(61)
    assert manager.admit_order(reduce_only=True) == []  # the engine's gate path counts too
    assert _value(registry, "haltgate_orders_total", outcome="admitted") == 3.0
    assert _value(registry, "haltgate_trading_allowed") == 1.0
    body, content_type = render_latest(registry)
    assert b"haltgate_orders_total" in body and content_type.startswith("text/plain")


def test_two_registries_stay_separate() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    HaltgateMetrics(CircuitBreakerManager(), a)
    HaltgateMetrics(CircuitBreakerManager(), b)  # no duplicate-timeseries error
