"""The README's "Basic Circuit Breaker" example (seeds/001_*), run with only the import changed.

The example is kept here verbatim (and checked against the seed file when it is present).
The test changes only its import line (``circuit_breakers`` → ``haltgate``; the README uses
``CircuitOpenException`` without importing it, so the changed line imports it too) and
supplies what the README leaves to the reader: ``broker``, ``logger``,
``get_cached_positions``, ``alert_ops_team`` and ``log_recovery``. The example uses a
top-level ``await``, so it is compiled with ``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and awaited.
"""

from __future__ import annotations

import ast
import asyncio
import logging
from typing import Any

import pytest
from _seeds import seed_text

from haltgate import CircuitBreaker, CircuitState

BASIC = """\
from circuit_breakers import CircuitBreaker, CircuitType, CircuitBreakerConfig

# Create a circuit breaker for broker API calls
config = CircuitBreakerConfig(
    failure_threshold=5,        # Trip after 5 failures
    open_timeout_seconds=60,    # Stay open for 60 seconds
    success_threshold=3         # Need 3 successes to recover
)
breaker = CircuitBreaker("broker_api", CircuitType.CONNECTION_FAILURE, config)

# Protect an async function
try:
    result = await breaker.call(broker.get_positions)
except CircuitOpenException:
    # Circuit is open, use fallback or wait
    logger.warning("Broker API circuit open, using cached data")
    result = get_cached_positions()

# Register callbacks for monitoring
breaker.register_trip_callback(lambda name, type: alert_ops_team(name))
breaker.register_recovery_callback(lambda name, type: log_recovery(name))
"""

IMPORT = "from circuit_breakers import CircuitBreaker, CircuitType, CircuitBreakerConfig"
HALTGATE_IMPORT = (
    "from haltgate import CircuitBreaker, CircuitType, CircuitBreakerConfig, CircuitOpenException"
)

LIVE = [{"symbol": "SPY", "qty": 10}]
CACHED = [{"symbol": "SPY", "qty": 9}]


class Broker:
    """A broker whose async get_positions works until told to fail."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def get_positions(self) -> list[dict[str, Any]]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("broker unreachable")
        return LIVE


def namespace() -> dict[str, Any]:
    alerts: list[str] = []
    recoveries: list[str] = []
    return {
        "broker": Broker(),
        "logger": logging.getLogger("readme.example"),
        "get_cached_positions": lambda: CACHED,
        "alert_ops_team": alerts.append,
        "log_recovery": recoveries.append,
        "alerts": alerts,
        "recoveries": recoveries,
    }


def run(source: str, ns: dict[str, Any]) -> None:
    code = compile(source, "<README example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, ns)  # a coroutine because of the top-level await
    if result is not None:
        asyncio.run(result)


def adapted(source: str) -> str:
    assert source.count(IMPORT) == 1
    return source.replace(IMPORT, HALTGATE_IMPORT)


def test_example_matches_the_seed() -> None:
    assert BASIC in seed_text("001")


def test_basic_example_runs_with_a_working_broker() -> None:
    ns = namespace()
    run(adapted(BASIC), ns)
    assert ns["result"] == LIVE
    breaker = ns["breaker"]
    assert isinstance(breaker, CircuitBreaker)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.config.failure_threshold == 5
    assert breaker.config.open_timeout_seconds == 60
    assert breaker.config.success_threshold == 3


def test_basic_example_falls_back_when_the_circuit_is_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ns = namespace()
    run(adapted(BASIC), ns)
    breaker: CircuitBreaker = ns["breaker"]
    broker: Broker = ns["broker"]
    broker.down = True

    async def five_failures() -> None:
        for _ in range(5):
            with pytest.raises(ConnectionError):
                await breaker.call(broker.get_positions)

    asyncio.run(five_failures())
    assert breaker.is_open
    assert ns["alerts"] == ["broker_api"]  # the trip callback ran
    calls_before = broker.calls

    # The example's try/except, run again against the open circuit: the fallback is used
    # and the broker is not called.
    protected = BASIC[BASIC.index("try:") : BASIC.index("# Register callbacks")]
    with caplog.at_level(logging.WARNING, logger="readme.example"):
        run(protected, ns)
    assert ns["result"] == CACHED
    assert broker.calls == calls_before
    assert "Broker API circuit open, using cached data" in caplog.text

    breaker.force_close()
    assert ns["recoveries"] == ["broker_api"]  # the recovery callback ran
