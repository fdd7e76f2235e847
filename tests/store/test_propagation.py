"""Another process's change reaches a process looping on can_trade(): within 250 ms with
SQLite, within 50 ms with Redis. Measured with real processes."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, ManualCircuitBreaker

from .conftest import read_line, spawn

pytestmark = pytest.mark.timeout(90)

# Loops on can_trade() (no observations: the fast path) and reports when it flips.
WATCHER = """
import json, sys, time
from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, ManualCircuitBreaker
m = CircuitBreakerManager(
    breakers=[ManualCircuitBreaker(), DrawdownCircuitBreaker("0.1")], store=sys.argv[1]
)
print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    while m.can_trade():
        pass
    seen = time.time()
    print(json.dumps({"blocked": seen, "reasons": m.get_blocking_reasons()}), flush=True)
    while not m.can_trade():
        pass
    print(json.dumps({"clear": time.time()}), flush=True)
m.close()
"""

# An operator's halt from another terminal: prints the times just before the call and
# just after it returned (the change is durable then).
OPERATOR = """
import sys, time
from haltgate import CircuitBreakerManager, ManualCircuitBreaker
m = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=sys.argv[1])
started = time.time()
m.halt_all(sys.argv[2], "ops")
print(started, time.time(), flush=True)
m.close()
"""


def measure(url: str, rounds: int) -> tuple[list[float], list[float]]:
    """Latencies (seconds) from the end of the remote change (when the call that made it
    returned: the change exists) and from its start (including the writer's own fsync or
    round trip) to the watcher seeing it."""
    watcher = spawn(WATCHER, url, str(rounds))
    trader = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker(), DrawdownCircuitBreaker("0.1")], store=url
    )
    latencies: list[float] = []
    from_start: list[float] = []
    try:
        assert read_line(watcher, 20) == "ready"
        for i in range(rounds):
            time.sleep(random.uniform(0.05, 0.15))
            if i % 2 == 0:
                # Another trading process trips its drawdown breaker.
                trader.can_trade(current_portfolio_value=100)
                started = time.time()
                assert trader.can_trade(current_portfolio_value=80) is False
                returned = time.time()
                expected, name = "Drawdown", "drawdown"
            else:
                # An operator halts everything from another process.
                operator = spawn(OPERATOR, url, f"operator halt {i}")
                started, returned = map(float, read_line(operator, 20).split())
                assert operator.wait(timeout=20) == 0
                expected, name = f"operator halt {i}", "manual"
            seen = json.loads(read_line(watcher))
            latencies.append(seen["blocked"] - returned)
            from_start.append(seen["blocked"] - started)
            assert any(expected in reason for reason in seen["reasons"]), seen
            trader.reset(name, operator="ops")
            assert "clear" in json.loads(read_line(watcher))
        assert watcher.wait(timeout=20) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
        trader.close()
    return latencies, from_start


def report(what: str, latencies: list[float], from_start: list[float]) -> None:
    print(
        f"{what} propagation: max {max(latencies) * 1000:.1f} ms after the change returned "
        f"(max {max(from_start) * 1000:.1f} ms after it started); "
        f"all {[round(x * 1000, 1) for x in latencies]} ms"
    )


def test_sqlite_propagates_within_250ms(tmp_path: Path) -> None:
    latencies, from_start = measure(f"sqlite:///{tmp_path / 'shared.db'}", rounds=8)
    report("sqlite", latencies, from_start)
    assert max(latencies) < 0.25, latencies


def test_redis_propagates_within_50ms(redis_url: str) -> None:
    latencies, from_start = measure(redis_url, rounds=8)
    report("redis", latencies, from_start)
    assert max(latencies) < 0.05, latencies


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_operator_halt_reaches_a_process_without_a_manual_breaker(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'k.db'}"
    else:
        url = request.getfixturevalue("redis_url")
    watcher = spawn(
        "import sys, time\n"
        "from haltgate import CircuitBreakerManager, OrderRateCircuitBreaker\n"
        "m = CircuitBreakerManager(breakers=[OrderRateCircuitBreaker(5, 60)], store=sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "while m.can_trade():\n"
        "    pass\n"
        "print(m.get_blocking_reasons(), flush=True)\n",
        url,
    )
    operator = CircuitBreakerManager(store=url)
    try:
        assert read_line(watcher, 20) == "ready"
        operator.halt_all("global kill switch", "ops")
        assert "global kill switch" in read_line(watcher, 5)
    finally:
        if watcher.poll() is None:
            watcher.kill()
        operator.close()
