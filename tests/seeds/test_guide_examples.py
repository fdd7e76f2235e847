# ruff: noqa: E501  (the guide's examples are kept verbatim, long lines included)
"""Every code example of the rustybt guide (seeds/000_*.txt) runs against haltgate.

Each example is kept here exactly as the guide prints it, including its
``from rustybt.live.circuit_breakers import`` line; :func:`guide` changes only that line to
``from haltgate import``. Examples that ``await`` run inside an ``async def`` via
``asyncio.run``. Where an example assumes objects it never defines (``submit_order``,
``broker``, ``logger``, ``coordinator``, ``engine``...), a trivial recording stand-in is
provided. The ``LiveTradingEngine`` examples belong to the engine's tests.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import types
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import haltgate
from haltgate import CircuitBreakerManager, CircuitBreakerState, ManualClock

RUSTYBT_IMPORT = "from rustybt.live.circuit_breakers import"


def guide(code: str) -> str:
    """The example with only its import line changed."""
    text = textwrap.dedent(code).strip("\n")
    changed = text.replace(RUSTYBT_IMPORT, "from haltgate import")
    assert "from rustybt" not in changed and "import rustybt" not in changed
    return changed


# ----------------------------------------------------------------------------- stand-ins
class RecordingLogger:
    """A structlog-style logger: ``logger.error("event", key=value)``."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def _log(self, level: str) -> Callable[..., None]:
        def log(event: str, **fields: Any) -> None:
            self.records.append((level, event, fields))

        return log

    def __getattr__(self, level: str) -> Callable[..., None]:
        return self._log(level)

    def events(self) -> list[str]:
        return [event for _level, event, _fields in self.records]


class BrokerError(Exception):
    """What the guide's broker raises."""


class Broker:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.orders: list[tuple[Any, ...]] = []

    async def submit_order(self, *args: Any, **kwargs: Any) -> str:
        if self.fail:
            raise BrokerError("broker rejected the order")
        self.orders.append(args)
        return "order-id"


class Engine:
    def __init__(self) -> None:
        self.paused = 0

    async def pause(self) -> None:
        self.paused += 1


def namespace(**extra: Any) -> dict[str, Any]:
    """Globals for one example: stand-ins plus what the guide's earlier blocks imported."""
    submitted: list[tuple[Any, ...]] = []

    async def submit_order(*args: Any, **kwargs: Any) -> str:
        submitted.append(args)
        return "order-id"

    ns: dict[str, Any] = {
        "__name__": "guide_example",
        "Decimal": Decimal,
        "logger": RecordingLogger(),
        "submit_order": submit_order,
        "submitted": submitted,
        "broker": Broker(),
        "BrokerError": BrokerError,
        "engine": Engine(),
    }
    # The guide's later snippets rely on names imported by its earlier blocks.
    for name in (
        "CircuitBreakerManager",
        "CircuitBreakerState",
        "CircuitBreakerType",
        "BaseCircuitBreaker",
        "DrawdownCircuitBreaker",
        "DailyLossCircuitBreaker",
        "OrderRateCircuitBreaker",
        "ErrorRateCircuitBreaker",
        "ManualCircuitBreaker",
    ):
        ns[name] = getattr(haltgate, name)
    ns.update(extra)
    return ns


def run(code: str, ns: dict[str, Any]) -> dict[str, Any]:
    """Run a synchronous example in ``ns``."""
    exec(compile(guide(code), "<guide example>", "exec"), ns)
    return ns


def run_async(code: str, ns: dict[str, Any]) -> dict[str, Any]:
    """Run an example that uses ``await``: its text becomes the body of an async function."""
    body = textwrap.indent(guide(code), "    ")
    source = f"async def __guide_example__():\n{body}\n    return locals()\n"
    exec(compile(source, "<guide example>", "exec"), ns)
    ns.update(asyncio.run(ns["__guide_example__"]()))
    return ns


# ============================================================================ 1. Drawdown
DRAWDOWN_IMPORT = """
from rustybt.live.circuit_breakers import DrawdownCircuitBreaker
from decimal import Decimal
"""

DRAWDOWN_INIT = """
breaker = DrawdownCircuitBreaker(
    max_drawdown_pct=Decimal("0.10"),  # Halt at 10% drawdown
    lookback_days=30                    # From 30-day peak
)
"""

DRAWDOWN_EXAMPLE_SETUP = """
from decimal import Decimal
from rustybt.live.circuit_breakers import DrawdownCircuitBreaker

# Halt at 10% drawdown from 30-day peak
breaker = DrawdownCircuitBreaker(
    max_drawdown_pct=Decimal("0.10"),
    lookback_days=30
)
"""

DRAWDOWN_EXAMPLE_CHECK = """
# Check before trading
if breaker.can_trade(current_portfolio_value=Decimal("95000")):
    # Peak was $100K, current $95K = 5% drawdown, OK to trade
    await submit_order(...)
else:
    # Drawdown exceeded 10%, trading halted
    logger.error("drawdown_breaker_tripped",
                reason=breaker.get_trip_reason())
"""


def test_drawdown_import_and_init() -> None:
    ns = run(DRAWDOWN_IMPORT, namespace())
    run(DRAWDOWN_INIT, ns)
    breaker = ns["breaker"]
    assert breaker.max_drawdown_pct == Decimal("0.10")
    assert breaker.lookback_days == 30
    assert breaker.state is CircuitBreakerState.NORMAL


def test_drawdown_example_trades_at_five_percent_below_the_peak() -> None:
    ns = run_async(DRAWDOWN_EXAMPLE_SETUP + DRAWDOWN_EXAMPLE_CHECK, namespace())
    assert ns["submitted"] == [(Ellipsis,)]
    # The comment's scenario: the peak was $100K, then $95K is a 5 % drawdown, still OK.
    ns = run(DRAWDOWN_EXAMPLE_SETUP, namespace())
    ns["breaker"].can_trade(current_portfolio_value=Decimal("100000"))
    run_async(DRAWDOWN_EXAMPLE_CHECK, ns)
    assert ns["submitted"] == [(Ellipsis,)]
    assert ns["breaker"].get_current_drawdown() == Decimal("0.05")
    assert ns["logger"].records == []


def test_drawdown_example_logs_the_reason_once_tripped() -> None:
    ns = run(DRAWDOWN_EXAMPLE_SETUP, namespace())
    ns["breaker"].can_trade(current_portfolio_value=Decimal("110000"))
    ns["breaker"].can_trade(current_portfolio_value=Decimal("98000"))  # 10.9 % down
    run_async(DRAWDOWN_EXAMPLE_CHECK, ns)
    assert ns["submitted"] == []
    [(level, event, fields)] = ns["logger"].records
    assert (level, event) == ("error", "drawdown_breaker_tripped")
    assert "exceeds" in fields["reason"]


# ============================================================================ 2. Daily loss
DAILY_IMPORT = """
from rustybt.live.circuit_breakers import DailyLossCircuitBreaker
from decimal import Decimal
"""

DAILY_INIT = """
breaker = DailyLossCircuitBreaker(
    max_daily_loss=Decimal("5000")  # Halt after $5K daily loss
)
"""

DAILY_EXAMPLE = """
from decimal import Decimal
from rustybt.live.circuit_breakers import DailyLossCircuitBreaker

# Halt after $5K daily loss
breaker = DailyLossCircuitBreaker(max_daily_loss=Decimal("5000"))

# Check before trading
if breaker.can_trade(current_portfolio_value=Decimal("97000"), start_of_day_value=Decimal("100000")):
    # Lost $3K today, OK to trade
    await submit_order(...)
else:
    # Lost >$5K today, trading halted
    logger.error("daily_loss_breaker_tripped",
                daily_loss=breaker.get_current_daily_loss())
"""


def test_daily_loss_import_and_init() -> None:
    ns = run(DAILY_IMPORT, namespace())
    run(DAILY_INIT, ns)
    assert ns["breaker"].max_daily_loss == Decimal("5000")


def test_daily_loss_example_trades_after_a_3k_loss() -> None:
    ns = run_async(DAILY_EXAMPLE, namespace())
    assert ns["submitted"] == [(Ellipsis,)]
    assert ns["breaker"].get_current_daily_loss() == Decimal("3000")
    assert ns["breaker"].get_start_of_day_value() == Decimal("100000")


def test_daily_loss_example_logs_the_loss_when_over_the_limit() -> None:
    over = DAILY_EXAMPLE.replace('Decimal("97000")', 'Decimal("94000")')
    ns = run_async(over, namespace())
    assert ns["submitted"] == []
    assert ns["logger"].records == [
        ("error", "daily_loss_breaker_tripped", {"daily_loss": Decimal("6000")})
    ]


# ============================================================================ 3. Order rate
ORDER_IMPORT = """
from rustybt.live.circuit_breakers import OrderRateCircuitBreaker
"""

ORDER_INIT = """
breaker = OrderRateCircuitBreaker(
    max_orders_per_minute=10,   # Max 10 orders per minute
    window_seconds=60            # 60-second sliding window
)
"""

ORDER_EXAMPLE_SETUP = """
from rustybt.live.circuit_breakers import OrderRateCircuitBreaker

# Max 10 orders per minute
breaker = OrderRateCircuitBreaker(
    max_orders_per_minute=10,
    window_seconds=60
)
"""

ORDER_EXAMPLE_CHECK = """
# Check before each order
if breaker.can_trade():
    await broker.submit_order(...)
    breaker.record_order()  # Track this order
else:
    # Too many orders in last 60 seconds
    logger.error("order_rate_breaker_tripped",
                orders_in_window=breaker.get_order_count())
"""


def test_order_rate_import_and_init() -> None:
    ns = run(ORDER_IMPORT, namespace())
    run(ORDER_INIT, ns)
    assert ns["breaker"].max_orders_per_minute == 10
    assert ns["breaker"].window_seconds == 60


def test_order_rate_example_stops_a_runaway_loop_after_ten_orders() -> None:
    ns = run_async(ORDER_EXAMPLE_SETUP + ORDER_EXAMPLE_CHECK, namespace())
    assert len(ns["broker"].orders) == 1
    for _ in range(14):  # the guide's "infinite buy loop"
        run_async(ORDER_EXAMPLE_CHECK, ns)
    assert len(ns["broker"].orders) == 10
    assert (
        ns["logger"].records
        == [("error", "order_rate_breaker_tripped", {"orders_in_window": 10})] * 5
    )
    assert ns["breaker"].state is CircuitBreakerState.TRIPPED


# ============================================================================ 4. Error rate
ERROR_IMPORT = """
from rustybt.live.circuit_breakers import ErrorRateCircuitBreaker
"""

ERROR_INIT = """
breaker = ErrorRateCircuitBreaker(
    max_errors=5,           # Halt after 5 errors
    window_seconds=300      # In 5-minute window
)
"""

ERROR_EXAMPLE_SETUP = """
from rustybt.live.circuit_breakers import ErrorRateCircuitBreaker

# Halt after 5 errors in 5 minutes
breaker = ErrorRateCircuitBreaker(
    max_errors=5,
    window_seconds=300
)
"""

ERROR_EXAMPLE_TRACK = """
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


def test_error_rate_import_and_init() -> None:
    ns = run(ERROR_IMPORT, namespace())
    run(ERROR_INIT, ns)
    assert ns["breaker"].max_errors == 5
    assert ns["breaker"].window_seconds == 300


def test_error_rate_example_pauses_the_engine_on_the_sixth_error() -> None:
    ns = namespace(broker=Broker(fail=True))
    run_async(ERROR_EXAMPLE_SETUP + ERROR_EXAMPLE_TRACK, ns)
    for _ in range(4):
        run_async(ERROR_EXAMPLE_TRACK, ns)
    assert ns["engine"].paused == 0  # 5 errors: not more than max_errors
    run_async(ERROR_EXAMPLE_TRACK, ns)
    assert ns["engine"].paused == 1
    assert ns["logger"].events().count("order_failed") == 6
    assert ns["logger"].records[-1] == (
        "critical",
        "error_rate_breaker_tripped",
        {"errors_in_window": 6},
    )


def test_error_rate_example_with_a_working_broker_records_nothing() -> None:
    ns = run_async(ERROR_EXAMPLE_SETUP + ERROR_EXAMPLE_TRACK, namespace())
    assert ns["breaker"].get_error_count() == 0
    assert len(ns["broker"].orders) == 1


# ============================================================================ 5. Manual
MANUAL_IMPORT = """
from rustybt.live.circuit_breakers import ManualCircuitBreaker
"""

MANUAL_INIT = """
breaker = ManualCircuitBreaker()
"""

MANUAL_EXAMPLE = """
from rustybt.live.circuit_breakers import ManualCircuitBreaker

# Add to coordinator
breaker = ManualCircuitBreaker()
coordinator.add_breaker(breaker)

# Later, in emergency situation (e.g., via dashboard, CLI, or API)
breaker.trigger_halt(
    reason="Unexpected market volatility - Flash crash detected",
    operator="trader_john"
)

# Engine will halt immediately
# Check status
print(f"Breaker state: {breaker.state}")  # MANUALLY_HALTED
print(f"Halt reason: {breaker.get_trip_reason()}")

# Reset after investigation
breaker.reset(operator="trader_john")
"""


def test_manual_import_and_init() -> None:
    ns = run(MANUAL_IMPORT, namespace())
    run(MANUAL_INIT, ns)
    assert ns["breaker"].state is CircuitBreakerState.NORMAL


def test_manual_emergency_halt_example(capsys: pytest.CaptureFixture[str]) -> None:
    coordinator = CircuitBreakerManager()
    events: list[Any] = []
    coordinator.add_listener(events.append)
    ns = run(MANUAL_EXAMPLE, namespace(coordinator=coordinator))
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Breaker state: MANUALLY_HALTED",
        "Halt reason: Unexpected market volatility - Flash crash detected",
    ]
    assert ns["breaker"].state is CircuitBreakerState.NORMAL
    assert coordinator.can_trade()
    assert [(e.kind, e.state, e.operator) for e in events] == [
        ("halted", CircuitBreakerState.MANUALLY_HALTED, "trader_john"),
        ("reset", CircuitBreakerState.RESETTING, "trader_john"),
        ("reset", CircuitBreakerState.NORMAL, "trader_john"),
    ]


# ============================================================================ Coordinator
COORDINATOR_IMPORT = """
from rustybt.live.circuit_breakers import CircuitBreakerManager
"""

COMPLETE_SETUP = """
from decimal import Decimal
from rustybt.live.circuit_breakers import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    DailyLossCircuitBreaker,
    OrderRateCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker
)

# Create coordinator
coordinator = CircuitBreakerManager()

# Add breakers (order doesn't matter)
coordinator.add_breaker(
    DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10"), lookback_days=30)
)
coordinator.add_breaker(
    DailyLossCircuitBreaker(max_daily_loss=Decimal("5000"))
)
coordinator.add_breaker(
    OrderRateCircuitBreaker(max_orders_per_minute=10)
)
coordinator.add_breaker(
    ErrorRateCircuitBreaker(max_errors=5, window_seconds=300)
)
coordinator.add_breaker(
    ManualCircuitBreaker()
)
"""

COMPLETE_CHECK = """
# Check all breakers before trading
if coordinator.can_trade():
    # All breakers OK, proceed with trading
    await submit_order(...)
else:
    # At least one breaker tripped
    tripped = coordinator.get_tripped()
    for breaker in tripped:
        logger.error("breaker_tripped",
                    type=breaker.breaker_type.value,
                    reason=breaker.get_trip_reason())
"""

COORDINATOR_METHODS = """
# Check if any breaker is tripped
if coordinator.any_tripped():
    ...

# Get all tripped breakers
tripped_breakers = coordinator.get_tripped()

# Get trip reasons for all tripped breakers
reasons = coordinator.get_trip_reasons()

# Reset all breakers (use with caution!)
coordinator.reset_all()

# Get status of all breakers
status = coordinator.get_status()
# Returns: {'drawdown': 'NORMAL', 'daily_loss': 'TRIPPED', ...}
"""

ALL_NORMAL = {
    "drawdown": "NORMAL",
    "daily_loss": "NORMAL",
    "order_rate": "NORMAL",
    "error_rate": "NORMAL",
    "manual": "NORMAL",
}


def test_coordinator_import() -> None:
    ns = run(COORDINATOR_IMPORT, namespace())
    assert ns["CircuitBreakerManager"] is CircuitBreakerManager


def test_complete_setup_trades_when_all_breakers_are_ok() -> None:
    ns = run_async(COMPLETE_SETUP + COMPLETE_CHECK, namespace())
    assert ns["submitted"] == [(Ellipsis,)]
    assert ns["coordinator"].get_status() == ALL_NORMAL


def test_complete_setup_logs_each_tripped_breaker() -> None:
    ns = run(COMPLETE_SETUP, namespace())
    coordinator = ns["coordinator"]
    coordinator.can_trade(current_portfolio_value=Decimal("100000"))
    coordinator.can_trade(current_portfolio_value=Decimal("88000"))  # 12 % and $12K down
    run_async(COMPLETE_CHECK, ns)
    assert ns["submitted"] == []
    logged = [(e, f["type"]) for _l, e, f in ns["logger"].records]
    assert logged == [("breaker_tripped", "drawdown"), ("breaker_tripped", "daily_loss")]
    assert all("exceeds" in f["reason"] for _l, _e, f in ns["logger"].records)


def test_coordinator_methods_report_and_reset() -> None:
    ns = run(COMPLETE_SETUP, namespace())
    coordinator = ns["coordinator"]
    coordinator.can_trade(current_portfolio_value=Decimal("100000"), start_of_day_value=100000)
    coordinator.can_trade(current_portfolio_value=Decimal("94000"))  # daily loss $6K > $5K
    assert coordinator.get_status() == {**ALL_NORMAL, "daily_loss": "TRIPPED"}
    run(COORDINATOR_METHODS, ns)
    assert [b.name for b in ns["tripped_breakers"]] == ["daily_loss"]
    assert list(ns["reasons"]) == ["daily_loss"]
    assert "Daily loss 6000" in ns["reasons"]["daily_loss"]
    assert ns["status"] == ALL_NORMAL  # after reset_all()
    assert coordinator.can_trade()


# ============================================================================ Best practices
CONSERVATIVE_LIMITS = """
# ✅ GOOD: Start conservative, relax later
coordinator = CircuitBreakerManager()

# Conservative limits for first week
coordinator.add_breaker(
    DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.05"))  # 5% max
)
coordinator.add_breaker(
    DailyLossCircuitBreaker(max_daily_loss=Decimal("2500"))  # $2.5K max
)
coordinator.add_breaker(
    OrderRateCircuitBreaker(max_orders_per_minute=5)  # Very low rate
)

# After 1-2 weeks of stable operation, increase limits if justified
"""

PAPER_TEST = """
# ✅ GOOD: Test breaker behavior in paper mode
# Force breaker trip to verify behavior

# Temporarily set low limits
test_breaker = DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.01"))  # 1%

# Run paper trading until breaker trips
# Verify:
# - Breaker trips as expected
# - Trading halts
# - Logs are generated
# - Alerts are sent
# - Reset works correctly
"""

MONITOR = """
# ✅ GOOD: Regular monitoring
import schedule

def check_circuit_breakers():
    status = coordinator.get_status()

    if coordinator.any_tripped():
        logger.critical("circuit_breakers_tripped", status=status)
        # Send alerts (email, SMS, PagerDuty, etc.)
        send_alert("Circuit breakers tripped!", status)
    else:
        logger.info("circuit_breakers_status", status=status)

# Check every minute
schedule.every(1).minutes.do(check_circuit_breakers)
"""

LOG_EVENTS = """
# ✅ GOOD: Comprehensive logging
def on_breaker_trip(breaker, reason):
    logger.error(
        "circuit_breaker_tripped",
        breaker_type=breaker.breaker_type.value,
        state=breaker.state.value,
        reason=reason,
        timestamp=pd.Timestamp.now()
    )

    # Also log to separate circuit breaker audit log
    with open("/var/log/rustybt/circuit_breakers.log", "a") as f:
        f.write(f"{pd.Timestamp.now()} | {breaker.breaker_type.value} | TRIPPED | {reason}\\n")
"""

MINIMUM_SETUP = """
coordinator = CircuitBreakerManager()
coordinator.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")))
coordinator.add_breaker(DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")))
coordinator.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=10))
coordinator.add_breaker(ManualCircuitBreaker())
"""  # the guide's next line builds a LiveTradingEngine: covered by the engine's tests


def test_conservative_limits() -> None:
    ns = run(CONSERVATIVE_LIMITS, namespace())
    coordinator = ns["coordinator"]
    assert coordinator.get_status() == {
        "drawdown": "NORMAL",
        "daily_loss": "NORMAL",
        "order_rate": "NORMAL",
    }
    assert all(coordinator.record_order() for _ in range(5))
    assert not coordinator.record_order()  # "Very low rate"
    assert not coordinator.can_trade()


def test_paper_trading_test_breaker_trips_at_one_percent() -> None:
    ns = run(PAPER_TEST, namespace())
    test_breaker = ns["test_breaker"]
    assert test_breaker.can_trade(current_portfolio_value=100000)
    assert test_breaker.can_trade(current_portfolio_value=99000)  # exactly 1 %
    assert not test_breaker.can_trade(current_portfolio_value=98999)
    test_breaker.reset(operator="paper")
    assert test_breaker.can_trade(current_portfolio_value=98999)


class FakeSchedule(types.ModuleType):
    """Stand-in for the ``schedule`` package: ``every(n).minutes.do(job)`` records the job."""

    def __init__(self) -> None:
        super().__init__("schedule")
        self.jobs: list[tuple[int, Callable[[], Any]]] = []

    def every(self, interval: int) -> Any:
        jobs = self.jobs

        class Every:
            @property
            def minutes(self) -> Any:
                return self

            def do(self, job: Callable[[], Any]) -> None:
                jobs.append((interval, job))

        return Every()


def test_monitor_breaker_status(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSchedule()
    monkeypatch.setitem(sys.modules, "schedule", fake)
    alerts: list[tuple[str, Any]] = []
    ns = run(COMPLETE_SETUP, namespace())
    ns["send_alert"] = lambda message, status: alerts.append((message, status))
    run(MONITOR, ns)
    [(interval, job)] = fake.jobs
    assert interval == 1
    job()
    assert ns["logger"].records == [("info", "circuit_breakers_status", {"status": ALL_NORMAL})]
    ns["coordinator"].halt_all(reason="test", operator="ops")
    job()
    halted = {**ALL_NORMAL, "manual": "MANUALLY_HALTED"}
    assert ns["logger"].records[-1] == ("critical", "circuit_breakers_tripped", {"status": halted})
    assert alerts == [("Circuit breakers tripped!", halted)]


def test_log_all_breaker_events(tmp_path: Path) -> None:
    import pandas as pd  # the example's own dependency (the calendars extra brings it)

    log_file = tmp_path / "circuit_breakers.log"

    def open_stand_in(path: str, mode: str = "r") -> Any:
        assert path == "/var/log/rustybt/circuit_breakers.log"
        return open(log_file, mode)

    ns = run(LOG_EVENTS, namespace(pd=pd, open=open_stand_in))
    breaker = haltgate.DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10"))
    breaker.add_listener(lambda event: ns["on_breaker_trip"](breaker, event.reason))
    breaker.can_trade(current_portfolio_value=100)
    breaker.can_trade(current_portfolio_value=80)
    [(level, event, fields)] = ns["logger"].records
    assert (level, event) == ("error", "circuit_breaker_tripped")
    assert fields["breaker_type"] == "drawdown"
    assert fields["state"] == "TRIPPED"
    assert fields["reason"].startswith("Drawdown 20.0000% exceeds max 10.00%")
    [line] = log_file.read_text().splitlines()
    assert " | drawdown | TRIPPED | Drawdown 20.0000% exceeds" in line


def test_recommended_minimum_setup() -> None:
    ns = run(MINIMUM_SETUP, namespace())
    assert ns["coordinator"].get_status() == {
        "drawdown": "NORMAL",
        "daily_loss": "NORMAL",
        "order_rate": "NORMAL",
        "manual": "NORMAL",
    }


# ============================================================================ Troubleshooting
DIAGNOSE_TRIPPED = """
# Check breaker state and reason
if breaker.state == CircuitBreakerState.TRIPPED:
    reason = breaker.get_trip_reason()
    details = breaker.get_trip_details()
    print(f"Reason: {reason}")
    print(f"Details: {details}")
"""

DIAGNOSE_NOT_TRIPPING = """
# Check breaker is added to coordinator
breakers_list = coordinator.get_all_breakers()
print(f"Active breakers: {[b.breaker_type.value for b in breakers_list]}")

# Check breaker is being called
if not coordinator.can_trade():
    # Coordinator working
    ...
"""

DIAGNOSE_STUCK = """
# Check breaker state
print(f"State: {breaker.state}")
print(f"Can trade: {breaker.can_trade()}")
"""

RESOLVE_STUCK = """
# Manual reset (after verifying conditions resolved)
breaker.reset(operator="admin")

# Verify state changed
print(f"New state: {breaker.state}")  # Should be NORMAL
"""


def test_troubleshooting_tripped_unexpectedly(
    clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    breaker = haltgate.DrawdownCircuitBreaker(Decimal("0.10"), clock=clock)
    breaker.can_trade(current_portfolio_value=100000)
    breaker.can_trade(current_portfolio_value=85000)
    ns = run(DIAGNOSE_TRIPPED, namespace(breaker=breaker))
    assert ns["reason"].startswith("Drawdown 15.0000% exceeds max 10.00%")
    details = ns["details"]
    assert details["threshold"] == Decimal("0.10")
    assert details["observed"] == Decimal("0.15")
    assert details["peak"] == Decimal("100000")
    assert details["tripped_at"] == clock.now()
    out = capsys.readouterr().out
    assert out.startswith("Reason: Drawdown 15.0000%")
    assert "Details: {" in out


def test_troubleshooting_not_tripping(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run(COMPLETE_SETUP, namespace())
    run(DIAGNOSE_NOT_TRIPPING, ns)
    assert capsys.readouterr().out == (
        "Active breakers: ['drawdown', 'daily_loss', 'order_rate', 'error_rate', 'manual']\n"
    )
    assert ns["coordinator"].can_trade()


def test_troubleshooting_stuck_and_resolution(capsys: pytest.CaptureFixture[str]) -> None:
    breaker = haltgate.ErrorRateCircuitBreaker(max_errors=1, window_seconds=300)
    breaker.record_error()
    breaker.record_error()
    ns = run(DIAGNOSE_STUCK, namespace(breaker=breaker))
    run(RESOLVE_STUCK, ns)
    assert capsys.readouterr().out.splitlines() == [
        "State: TRIPPED",
        "Can trade: False",
        "New state: NORMAL",
    ]
    assert breaker.can_trade()


# ============================================================================ Advanced usage
CUSTOM_BREAKER = """
from rustybt.live.circuit_breakers import BaseCircuitBreaker, CircuitBreakerType, CircuitBreakerState
from decimal import Decimal

class VolatilityCircuitBreaker(BaseCircuitBreaker):
    \"\"\"Halt trading when volatility exceeds threshold.\"\"\"

    def __init__(self, max_volatility: Decimal, window_minutes: int = 60):
        super().__init__(breaker_type=CircuitBreakerType.CUSTOM)
        self.max_volatility = max_volatility
        self.window_minutes = window_minutes
        self._returns_window = []

    def can_trade(self, returns: list[Decimal]) -> bool:
        \"\"\"Check if volatility is within limits.\"\"\"
        if self.state in [CircuitBreakerState.TRIPPED, CircuitBreakerState.MANUALLY_HALTED]:
            return False

        # Calculate realized volatility
        if len(returns) < 2:
            return True

        volatility = self._calculate_volatility(returns)

        if volatility > self.max_volatility:
            self._trip(reason=f"Volatility {volatility:.4f} exceeds max {self.max_volatility:.4f}")
            return False

        return True

    def _calculate_volatility(self, returns: list[Decimal]) -> Decimal:
        \"\"\"Calculate annualized volatility.\"\"\"
        import statistics
        return Decimal(str(statistics.stdev([float(r) for r in returns]))) * Decimal("15.87")  # sqrt(252)

# Usage
volatility_breaker = VolatilityCircuitBreaker(
    max_volatility=Decimal("0.30"),  # 30% annualized
    window_minutes=60
)
coordinator.add_breaker(volatility_breaker)
"""

CONDITIONAL = """
# Enable different breakers for different trading sessions
if trading_session == "MARKET_OPEN":
    # More aggressive during market hours
    coordinator.add_breaker(
        DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10"))
    )
elif trading_session == "AFTER_HOURS":
    # More conservative during after hours
    coordinator.add_breaker(
        DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.05"))
    )
"""


def test_custom_volatility_breaker_subclass() -> None:
    ns = run(COMPLETE_SETUP, namespace())
    coordinator = ns["coordinator"]
    events: list[Any] = []
    coordinator.add_listener(events.append)
    run(CUSTOM_BREAKER, ns)
    custom = ns["volatility_breaker"]
    assert custom.breaker_type is haltgate.CircuitBreakerType.CUSTOM
    assert custom.name == "custom"
    assert coordinator.get_breaker("custom") is custom
    assert coordinator.can_trade()  # no returns: the custom breaker is only read
    calm = [Decimal("0.001"), Decimal("-0.002"), Decimal("0.0015")]
    assert coordinator.can_trade(returns=calm)  # routed to the custom breaker only
    assert custom.state is CircuitBreakerState.NORMAL
    wild = [Decimal("0.05"), Decimal("-0.06"), Decimal("0.04")]
    assert not coordinator.can_trade(returns=wild)
    assert custom.state is CircuitBreakerState.TRIPPED
    assert coordinator.get_trip_reasons()["custom"].startswith("Volatility ")
    assert "exceeds max 0.3000" in coordinator.get_trip_reasons()["custom"]
    assert [e.kind for e in events] == ["tripped"]
    # Latched: calm returns do not clear it, a reset does.
    assert not coordinator.can_trade(returns=calm)
    coordinator.reset("custom", operator="risk")
    assert coordinator.can_trade(returns=calm)


@pytest.mark.parametrize(
    ("trading_session", "expected_pct"),
    [("MARKET_OPEN", Decimal("0.10")), ("AFTER_HOURS", Decimal("0.05")), ("CLOSED", None)],
)
def test_conditional_breakers(trading_session: str, expected_pct: Decimal | None) -> None:
    coordinator = CircuitBreakerManager()
    run(CONDITIONAL, namespace(coordinator=coordinator, trading_session=trading_session))
    breakers = coordinator.get_all_breakers()
    if expected_pct is None:
        assert breakers == []
    else:
        [breaker] = breakers
        assert breaker.max_drawdown_pct == expected_pct
