"""The guide's LiveTradingEngine examples (seeds/000_*), run with only the import changed.

Each example is kept here verbatim as in the guide (and checked against the seed file when
it is present); the test then changes only the import lines (``rustybt.live`` /
``rustybt.live.circuit_breakers`` → ``haltgate``) and fills the guide's placeholders
(``...`` and ``DrawdownCircuitBreaker(...)``) with the smallest real arguments. The guide
leaves ``MyStrategy``, ``broker`` and ``data_portal`` to the reader: the test defines them
with the PaperBroker and a DataPortal on a ManualClock.
"""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from _seeds import seed_text

import haltgate
from haltgate.engine import OrderStatus

INTEGRATION = """\
from rustybt.live import LiveTradingEngine
from rustybt.live.circuit_breakers import CircuitBreakerManager

# Set up coordinator with breakers
coordinator = CircuitBreakerManager()
coordinator.add_breaker(DrawdownCircuitBreaker(...))
coordinator.add_breaker(DailyLossCircuitBreaker(...))

# Pass to engine (engine checks breakers before each order)
engine = LiveTradingEngine(
    strategy=MyStrategy(),
    broker_adapter=broker,
    data_portal=data_portal,
    circuit_breakers=coordinator  # ⚠️ CRITICAL: Always include
)
"""

BAD = """\
# ❌ BAD: No circuit breakers
engine = LiveTradingEngine(
    strategy=MyStrategy(),
    broker_adapter=broker,
    data_portal=data_portal
    # Missing circuit_breakers parameter!
)
"""

GOOD = """\
# ✅ GOOD: Circuit breakers included
coordinator = CircuitBreakerManager()
coordinator.add_breaker(DrawdownCircuitBreaker(...))
coordinator.add_breaker(DailyLossCircuitBreaker(...))

engine = LiveTradingEngine(
    strategy=MyStrategy(),
    broker_adapter=broker,
    data_portal=data_portal,
    circuit_breakers=coordinator  # ✅ CRITICAL
)
"""

MINIMUM = """\
coordinator = CircuitBreakerManager()
coordinator.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")))
coordinator.add_breaker(DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")))
coordinator.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=10))
coordinator.add_breaker(ManualCircuitBreaker())

engine = LiveTradingEngine(..., circuit_breakers=coordinator)
"""

ERROR_RATE = """\
# Track errors
try:
    await broker.submit_order(...)
except BrokerError as e:
    breaker.record_error()
    logger.error("order_failed", error=str(e))

    if not breaker.can_trade():
        # Too many errors, halt trading
        logger.critical("error_rate_breaker_tripped",
                       errors_in_window=breaker.get_error_count())
        await engine.pause()
"""


def _seed_text() -> str:
    return seed_text("000")


@pytest.mark.parametrize("snippet", [INTEGRATION, BAD, GOOD, MINIMUM, ERROR_RATE])
def test_snippets_are_verbatim_from_the_guide(snippet: str) -> None:
    assert snippet in _seed_text()


def _ported(snippet: str) -> str:
    """Only the import changed, and the guide's placeholders filled minimally."""
    code = snippet.replace("from rustybt.live.circuit_breakers import", "from haltgate import")
    code = code.replace("from rustybt.live import", "from haltgate import")
    code = code.replace(
        "DrawdownCircuitBreaker(...)", 'DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10"))'
    )
    code = code.replace(
        "DailyLossCircuitBreaker(...)", 'DailyLossCircuitBreaker(max_daily_loss=Decimal("5000"))'
    )
    code = code.replace(
        "LiveTradingEngine(...,",
        "LiveTradingEngine(strategy=MyStrategy(), broker_adapter=broker, data_portal=data_portal,",
    )
    return code


class MyStrategy:
    """The reader's strategy: buys 10 shares on every bar."""

    def on_bar(self, context: Any, bar: Any) -> None:
        context.buy("XYZ", 10)


def _namespace(prices: list[int]) -> dict[str, Any]:
    # Bars carry the current time so SystemClock-based breakers see the same trading day.
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    portal = haltgate.DataPortal(
        [
            {"timestamp": start + timedelta(seconds=i), "symbol": "XYZ", "close": p}
            for i, p in enumerate(prices)
        ]
    )
    namespace: dict[str, Any] = {
        "Decimal": Decimal,
        "MyStrategy": MyStrategy,
        "data_portal": portal,
        "broker": haltgate.PaperBroker(portal, cash=100_000),
    }
    # The guide imports these in its earlier blocks of the same page (ported the same way).
    exec(
        "from haltgate import (LiveTradingEngine, CircuitBreakerManager, DrawdownCircuitBreaker, "
        "DailyLossCircuitBreaker, OrderRateCircuitBreaker, ErrorRateCircuitBreaker, "
        "ManualCircuitBreaker)",
        namespace,
    )
    return namespace


@pytest.mark.parametrize("snippet", [INTEGRATION, GOOD], ids=["integration", "good"])
def test_integration_and_good_setup_gate_every_order(snippet: str) -> None:
    ns = _namespace([100, 100, 100])
    exec(_ported(snippet), ns)
    engine, coordinator = ns["engine"], ns["coordinator"]
    assert engine.circuit_breakers is coordinator
    assert set(coordinator.get_status()) == {"drawdown", "daily_loss"}
    assert engine.run_sync() == 3
    assert [o.status for o in engine.orders] == [OrderStatus.FILLED] * 3
    # the portfolio value reached the breakers
    assert coordinator.get_breaker("drawdown").get_peak() == Decimal(100_000)
    # a manual halt now stops the engine's orders
    coordinator.halt_all(reason="test", operator="qa")
    order = asyncio.run(engine.submit(haltgate.Order.make("XYZ", 1)))
    assert order.status is OrderStatus.REJECTED


def test_bad_setup_still_runs_but_warns_loudly() -> None:
    ns = _namespace([100, 100])
    with pytest.warns(RuntimeWarning, match="WITHOUT circuit breakers"):
        exec(_ported(BAD), ns)
    engine = ns["engine"]
    assert engine.circuit_breakers is None
    assert engine.run_sync() == 2
    assert [o.status for o in engine.orders] == [OrderStatus.FILLED] * 2


def test_recommended_minimum_setup_stops_a_runaway_loop() -> None:
    ns = _namespace([100])

    class Runaway:
        def on_bar(self, context: Any, bar: Any) -> None:
            for _ in range(25):
                context.buy("XYZ", 1)

    ns["MyStrategy"] = Runaway
    exec(_ported(MINIMUM), ns)
    engine = ns["engine"]
    assert set(ns["coordinator"].get_status()) == {
        "drawdown",
        "daily_loss",
        "order_rate",
        "manual",
    }
    engine.run_sync()
    statuses = [o.status for o in engine.orders]
    assert statuses.count(OrderStatus.FILLED) == 10
    assert statuses.count(OrderStatus.REJECTED) == 15
    assert ns["coordinator"].get_status()["order_rate"] == "TRIPPED"


def test_error_rate_example_pauses_the_engine() -> None:
    ns = _namespace([100])
    exec(_ported(GOOD), ns)

    class BrokerError(Exception):
        pass

    class FailingBroker:
        async def submit_order(self, *args: Any) -> None:
            raise BrokerError("exchange said no")

    class StructLogger:
        """The guide logs structlog-style (keyword fields)."""

        def __init__(self) -> None:
            self.lines: list[tuple[str, dict[str, Any]]] = []

        def error(self, event: str, **fields: Any) -> None:
            self.lines.append((event, fields))

        critical = error

    ns.update(
        BrokerError=BrokerError,
        broker=FailingBroker(),
        logger=StructLogger(),
        breaker=haltgate.ErrorRateCircuitBreaker(max_errors=5, window_seconds=300),
    )
    body = ERROR_RATE.replace("submit_order(...)", 'submit_order("XYZ", 1)')
    exec("async def _example():\n" + textwrap.indent(body, "    "), ns)
    for _ in range(6):
        asyncio.run(ns["_example"]())
    engine = ns["engine"]
    assert engine.state == "paused"
    assert ns["logger"].lines[-1][0] == "error_rate_breaker_tripped"
    order = asyncio.run(engine.submit(haltgate.Order.make("XYZ", 1)))
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reasons[0].startswith("engine paused")
