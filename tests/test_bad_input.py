"""Bad input everywhere: one parametrized test over every public constructor and method of
the §3 breakers, the manager and ManualClock.

Every refusal must be a ``ValueError`` or ``TypeError`` and a ``HaltgateError``, name the
parameter, and leave the state exactly as it was (compared through ``export_state()`` and
the breakers' counters before and after).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from haltgate import (
    BaseCircuitBreaker,
    CircuitBreakerManager,
    ConnectionCircuitBreaker,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    HaltgateError,
    InvalidInputError,
    ManualCircuitBreaker,
    ManualClock,
    Order,
    OrderContext,
    OrderRateCircuitBreaker,
    PositionConcentrationCircuitBreaker,
    VolatilityCircuitBreaker,
)
from haltgate.checks import (
    DuplicateOrder,
    ExecutionThrottle,
    MaxGrossExposure,
    MaxOpenOrders,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxPosition,
    MessageThrottle,
    PriceCollar,
    RestrictedSymbols,
)

START = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)

# ----------------------------------------------------------------------------- bad values
NON_NUMBERS: list[Any] = [True, False, "abc", "", "1,5", [1], object()]
NOT_FINITE: list[Any] = [math.nan, math.inf, -math.inf, "NaN", "-Infinity", Decimal("sNaN")]
TOO_BIG: list[Any] = ["1e30", 10**31]
BAD_NUMBER = NON_NUMBERS + NOT_FINITE + TOO_BIG  # any number required
BAD_POSITIVE = [*BAD_NUMBER, None, 0, "-1", -0.5]  # > 0
BAD_FRACTION = [*BAD_NUMBER, None, 0, "-0.1", "1.01", 2]  # in (0, 1]
BAD_COUNT = [*BAD_NUMBER, None, 0, -1, 1.5, "2.5"]  # whole number >= 1
BAD_SECONDS = [*BAD_NUMBER, None, 0, -1, "-0.001"]  # > 0
BAD_COOLDOWN = [*BAD_NUMBER, None, -1, "-0.001"]  # >= 0
BAD_TEXT = ["", "   ", 5, True, b"bytes"]  # a non-empty string (None: see per case)
BAD_REQUIRED_TEXT = [*BAD_TEXT, None]


# ----------------------------------------------------------------------------- state
def snapshot(subject: Any) -> Any:
    """Everything observable about ``subject`` that a refused input must not change."""
    if subject is None:
        return None
    if isinstance(subject, ManualClock):
        return (subject.now(), subject.monotonic())
    if isinstance(subject, CircuitBreakerManager):
        return (
            [snapshot(b) for b in subject.get_all_breakers()],
            subject.get_status(),
            len(subject._listeners._listeners),
            [(c.name, repr(c), window_counts(c, subject)) for c in subject.get_checks()],
            subject.get_refusal_counts(),
        )
    assert isinstance(subject, BaseCircuitBreaker)
    state: dict[str, Any] = {
        "export": subject.export_state(),
        "listeners": len(subject._listeners._listeners),
        "clock": subject.clock,
    }
    if isinstance(subject, OrderRateCircuitBreaker):
        state["orders"] = subject.get_order_count()
    if isinstance(subject, ErrorRateCircuitBreaker):
        state["errors"] = subject.get_error_categories()
    if isinstance(subject, ConnectionCircuitBreaker):
        state["failures"] = subject.get_consecutive_failures()
        state["silent"] = subject.seconds_since_alive()
    if isinstance(subject, VolatilityCircuitBreaker):
        state["last_price"] = subject._last_price
    if isinstance(subject, DrawdownCircuitBreaker):
        state["peak"] = subject.get_peak()
        state["drawdown"] = subject.get_current_drawdown()
    if isinstance(subject, DailyLossCircuitBreaker):
        state["baseline"] = subject.get_start_of_day_value()
        state["loss"] = subject.get_current_daily_loss()
    return state


def window_counts(check: Any, manager: CircuitBreakerManager) -> dict[Any, int]:
    """What a check's window holds, per key."""
    window = check.bound_window
    if window is None:
        return {}
    now = manager.clock.monotonic()
    return {key: counter.count(now) for key, counter in window._counters.items()}


# ----------------------------------------------------------------------------- subjects
# Each subject is made with some history, so that a change would be visible.
def drawdown(clock: ManualClock) -> DrawdownCircuitBreaker:
    b = DrawdownCircuitBreaker("0.10", clock=clock)
    b.update(100)
    b.update(95)
    return b


def tripped_drawdown(clock: ManualClock) -> DrawdownCircuitBreaker:
    b = drawdown(clock)
    b.update(50)
    return b


def daily(clock: ManualClock) -> DailyLossCircuitBreaker:
    b = DailyLossCircuitBreaker(max_daily_loss=1000, clock=clock)
    b.can_trade(current_portfolio_value=9500, start_of_day_value=10000)
    return b


def daily_pct(clock: ManualClock) -> DailyLossCircuitBreaker:
    b = DailyLossCircuitBreaker(max_daily_loss_pct="0.05", clock=clock)
    b.update(10000)
    return b


def order_rate(clock: ManualClock) -> OrderRateCircuitBreaker:
    b = OrderRateCircuitBreaker(3, clock=clock)
    b.record_order()
    return b


def error_rate(clock: ManualClock) -> ErrorRateCircuitBreaker:
    b = ErrorRateCircuitBreaker(3, clock=clock)
    b.record_error(TimeoutError())
    return b


def manual(clock: ManualClock) -> ManualCircuitBreaker:
    return ManualCircuitBreaker(clock=clock)


def halted(clock: ManualClock) -> ManualCircuitBreaker:
    b = ManualCircuitBreaker(clock=clock)
    b.trigger_halt("stop", "ops")
    return b


def concentration(clock: ManualClock) -> PositionConcentrationCircuitBreaker:
    return PositionConcentrationCircuitBreaker("0.2", clock=clock)


def volatility(clock: ManualClock) -> VolatilityCircuitBreaker:
    b = VolatilityCircuitBreaker(clock=clock)
    for p in (100, 101, 100):
        b.record_price(p)
    return b


def tiny_price(clock: ManualClock) -> VolatilityCircuitBreaker:
    b = volatility(clock)
    b.record_price("1e-10")
    return b


def connection(clock: ManualClock) -> ConnectionCircuitBreaker:
    b = ConnectionCircuitBreaker(clock=clock)
    b.record_failure()
    return b


def manager(clock: ManualClock) -> CircuitBreakerManager:
    m = CircuitBreakerManager(clock=clock)
    m.add_breaker(drawdown(clock))
    m.add_breaker(daily(clock))
    m.add_breaker(order_rate(clock))
    m.add_breaker(error_rate(clock))
    m.add_breaker(volatility(clock))
    m.add_breaker(ManualCircuitBreaker())
    m.add_breaker(tripped_drawdown(clock).__class__("0.5", name="latched"))
    latched = m.get_breaker("latched")
    assert isinstance(latched, DrawdownCircuitBreaker)
    latched.update(100)
    latched.update(10)
    return m


def ten_checks() -> list[Any]:
    return [
        MaxOrderQuantity(1000, per_symbol={"BRK.A": 1}),
        MaxOrderNotional(10**6),
        PriceCollar("0.1"),
        MaxPosition(10**5, per_symbol={"SPY": {"max_notional": 10**6}}),
        MaxGrossExposure(10**7, max_fraction_of_equity=2),
        MaxOpenOrders(50),
        DuplicateOrder(5),
        MessageThrottle(100, 1),
        ExecutionThrottle(2, 60),
        RestrictedSymbols(["GME"]),
    ]


def checked(clock: ManualClock) -> CircuitBreakerManager:
    """A manager with all ten order checks, orders admitted and refused, and a tripped
    execution throttle."""
    m = CircuitBreakerManager(clock=clock)
    m.add_breaker(drawdown(clock))
    m.add_breaker(OrderRateCircuitBreaker(100))
    m.add_breaker(ManualCircuitBreaker())
    for check in ten_checks():
        m.add_check(check)
    ctx = OrderContext(reference_price=100, price_time=clock.now(), equity=10**6)
    assert m.admit_order(order=Order.make("SPY", 10, limit_price=100), context=ctx) == []
    m.record_message("cancel")
    assert m.admit_order(order=Order.make("SPY", 10**6), context=ctx)  # too big
    assert m.admit_order(order=Order.make("QQQ", 1, limit_price=100), context=ctx) == []
    assert m.admit_order(order=Order.make("QQQ", 2, limit_price=100), context=ctx) == []
    assert m.admit_order(order=Order.make("QQQ", 3, limit_price=100), context=ctx)  # trips
    return m


def nothing(clock: ManualClock) -> None:
    return None


def the_clock(clock: ManualClock) -> ManualClock:
    return clock


# ----------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    what: str
    param: str
    subject: Callable[[ManualClock], Any]
    call: Callable[[Any, Any], Any]  # (subject, bad value)
    bad: tuple[Any, ...]


CASES: list[Case] = [
    # constructors ------------------------------------------------------------------------
    Case(
        "Drawdown()",
        "max_drawdown_pct",
        nothing,
        lambda s, v: DrawdownCircuitBreaker(v),
        tuple(BAD_FRACTION),
    ),
    Case(
        "Drawdown()",
        "lookback_days",
        nothing,
        lambda s, v: DrawdownCircuitBreaker("0.1", lookback_days=v),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "Drawdown()",
        "name",
        nothing,
        lambda s, v: DrawdownCircuitBreaker("0.1", name=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "Drawdown()",
        "clock",
        nothing,
        lambda s, v: DrawdownCircuitBreaker("0.1", clock=v),
        ("utc", 5, True),
    ),
    Case(
        "DailyLoss()",
        "max_daily_loss",
        nothing,
        lambda s, v: DailyLossCircuitBreaker(v),
        tuple(x for x in BAD_POSITIVE if x is not None),
    ),
    Case(
        "DailyLoss()",
        "max_daily_loss_pct",
        nothing,
        lambda s, v: DailyLossCircuitBreaker(max_daily_loss_pct=v),
        tuple(x for x in BAD_FRACTION if x is not None),
    ),
    Case(
        "DailyLoss(neither or both)",
        "max_daily_loss",
        nothing,
        lambda s, v: DailyLossCircuitBreaker(v, max_daily_loss_pct=None if v is None else "0.1"),
        (None, 100),
    ),
    Case(
        "DailyLoss()",
        "calendar",
        nothing,
        lambda s, v: DailyLossCircuitBreaker(100, calendar=v),
        (5, True, "roll:17:00", "roll:25:00@UTC"),
    ),
    Case(
        "DailyLoss()",
        "calendar",
        nothing,
        lambda s, v: DailyLossCircuitBreaker(100, calendar=f"roll:17:00@{v}"),
        ("Nowhere/City",),
    ),
    Case(
        "DailyLoss()",
        "calendar",
        nothing,
        lambda s, v: DailyLossCircuitBreaker(100, calendar=v),
        ("NOT_AN_EXCHANGE",),
    ),
    Case(
        "OrderRate()",
        "max_orders_per_minute",
        nothing,
        lambda s, v: OrderRateCircuitBreaker(v),
        tuple(BAD_COUNT),
    ),
    Case(
        "OrderRate()",
        "window_seconds",
        nothing,
        lambda s, v: OrderRateCircuitBreaker(10, window_seconds=v),
        tuple(BAD_SECONDS),
    ),
    Case(
        "OrderRate()",
        "cooldown_seconds",
        nothing,
        lambda s, v: OrderRateCircuitBreaker(10, cooldown_seconds=v),
        tuple(BAD_COOLDOWN),
    ),
    Case(
        "ErrorRate()",
        "max_errors",
        nothing,
        lambda s, v: ErrorRateCircuitBreaker(v),
        tuple(BAD_COUNT),
    ),
    Case(
        "ErrorRate()",
        "window_seconds",
        nothing,
        lambda s, v: ErrorRateCircuitBreaker(5, window_seconds=v),
        tuple(BAD_SECONDS),
    ),
    Case(
        "ErrorRate()",
        "cooldown_seconds",
        nothing,
        lambda s, v: ErrorRateCircuitBreaker(5, cooldown_seconds=v),
        tuple(BAD_COOLDOWN),
    ),
    Case(
        "ErrorRate()",
        "ignore",
        nothing,
        lambda s, v: ErrorRateCircuitBreaker(5, ignore=v),
        (5, "ValueError", (ValueError, "x"), ()),
    ),
    Case(
        "Manual()",
        "name",
        nothing,
        lambda s, v: ManualCircuitBreaker(name=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "Base()",
        "breaker_type",
        nothing,
        lambda s, v: BaseCircuitBreaker(v),
        ("nope", 5, None, "DRAWDOWN"),
    ),
    Case(
        "Concentration()",
        "max_position_pct",
        nothing,
        lambda s, v: PositionConcentrationCircuitBreaker(v),
        tuple(BAD_FRACTION),
    ),
    Case(
        "Volatility()",
        "std_threshold",
        nothing,
        lambda s, v: VolatilityCircuitBreaker(std_threshold=v),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "Volatility()",
        "lookback",
        nothing,
        lambda s, v: VolatilityCircuitBreaker(lookback=v),
        (*BAD_COUNT, 1, 100_001),
    ),
    Case(
        "Volatility()",
        "cooldown_seconds",
        nothing,
        lambda s, v: VolatilityCircuitBreaker(cooldown_seconds=v),
        tuple(BAD_COOLDOWN),
    ),
    Case(
        "Connection()",
        "failure_threshold",
        nothing,
        lambda s, v: ConnectionCircuitBreaker(failure_threshold=v),
        tuple(BAD_COUNT),
    ),
    Case(
        "Connection()",
        "timeout_seconds",
        nothing,
        lambda s, v: ConnectionCircuitBreaker(timeout_seconds=v),
        tuple(BAD_SECONDS),
    ),
    Case(
        "Manager()",
        "clock",
        nothing,
        lambda s, v: CircuitBreakerManager(clock=v),
        ("utc", 5),
    ),
    Case(
        "Manager()",
        "breakers",
        the_clock,
        lambda clock, v: CircuitBreakerManager(breakers=v, clock=clock),
        (5, None, ["drawdown"], [ManualCircuitBreaker(), "x"]),
    ),
    Case(
        "ManualClock()",
        "start",
        nothing,
        lambda s, v: ManualClock(v),
        (datetime(2025, 1, 1), "2025-01-01", 0),
    ),
    # breaker methods ---------------------------------------------------------------------
    Case(
        "drawdown.can_trade",
        "current_portfolio_value",
        drawdown,
        lambda b, v: b.can_trade(current_portfolio_value=v),
        tuple(BAD_NUMBER),
    ),
    Case("drawdown.update", "value", drawdown, lambda b, v: b.update(v), tuple(BAD_NUMBER)),
    Case(
        "tripped_drawdown.update",
        "value",
        tripped_drawdown,
        lambda b, v: b.update(v),
        tuple(BAD_NUMBER),
    ),
    Case(
        "daily.can_trade",
        "current_portfolio_value",
        daily,
        lambda b, v: b.can_trade(current_portfolio_value=v, start_of_day_value=20000),
        tuple(BAD_NUMBER),
    ),
    Case(
        "daily.can_trade",
        "start_of_day_value",
        daily,
        lambda b, v: b.can_trade(current_portfolio_value=1, start_of_day_value=v),
        tuple(BAD_NUMBER),
    ),
    Case("daily.update", "value", daily_pct, lambda b, v: b.update(v), tuple(BAD_NUMBER)),
    Case(
        "error_rate.record_error",
        "category",
        error_rate,
        lambda b, v: b.record_error(ValueError(), category=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "concentration.check_order",
        "symbol",
        concentration,
        lambda b, v: b.check_order(v, 1, 100),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "concentration.check_order",
        "proposed_value",
        concentration,
        lambda b, v: b.check_order("AAPL", v, 100),
        (*BAD_NUMBER, None),
    ),
    Case(
        "concentration.check_order",
        "portfolio_value",
        concentration,
        lambda b, v: b.check_order("AAPL", 1, v),
        (*BAD_NUMBER, None, 0, -100),
    ),
    Case(
        "concentration.check_order",
        "current_position_value",
        concentration,
        lambda b, v: b.check_order("AAPL", 1, 100, current_position_value=v),
        (*BAD_NUMBER, None),
    ),
    Case(
        "concentration.concentration",
        "portfolio_value",
        concentration,
        lambda b, v: b.concentration(1, v),
        (*BAD_NUMBER, None, 0),
    ),
    Case(
        "volatility.record_price",
        "price",
        volatility,
        lambda b, v: b.record_price(v),
        (*BAD_NUMBER, None, 0, -1),
    ),
    Case(
        "volatility.record_return",
        "value",
        volatility,
        lambda b, v: b.record_return(v),
        (*BAD_NUMBER, None),
    ),
    Case(
        "volatility.can_trade",
        "price",
        volatility,
        lambda b, v: b.can_trade(price=v),
        (*BAD_NUMBER, 0, -1),
    ),
    Case(
        "volatility.can_trade (good price, bad return)",
        "last_return",
        volatility,
        lambda b, v: b.can_trade(price=100, last_return=v),
        tuple(BAD_NUMBER),
    ),
    Case(
        "volatility.record_price (absurd jump)",
        "price",
        tiny_price,
        lambda b, v: b.record_price(v),
        ("9e29", "1e21"),
    ),
    Case(
        "manager.record_error (no error breaker)",
        "category",
        lambda clock: CircuitBreakerManager(clock=clock, breakers=[ManualCircuitBreaker()]),
        lambda m, v: m.record_error("boom", category=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "volatility.can_trade",
        "last_return",
        volatility,
        lambda b, v: b.can_trade(last_return=v),
        tuple(BAD_NUMBER),
    ),
    Case(
        "manual.trigger_halt",
        "reason",
        manual,
        lambda b, v: b.trigger_halt(v, "ops"),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "manual.trigger_halt",
        "operator",
        manual,
        lambda b, v: b.trigger_halt("why", v),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "halted.reset",
        "operator",
        halted,
        lambda b, v: b.reset(operator=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "halted.reset",
        "reason",
        halted,
        lambda b, v: b.reset(operator="ops", reason=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "tripped_drawdown.reset",
        "operator",
        tripped_drawdown,
        lambda b, v: b.reset(operator=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "connection.trigger_halt",
        "operator",
        connection,
        lambda b, v: b.trigger_halt("why", v),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "order_rate.trigger_halt",
        "reason",
        order_rate,
        lambda b, v: b.trigger_halt(v, "ops"),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "order_rate.use_window",
        "window",
        order_rate,
        lambda b, v: b.use_window(v),
        (None, "redis", 5, object()),
    ),
    Case(
        "order_rate.add_listener",
        "callback",
        order_rate,
        lambda b, v: b.add_listener(v),
        (None, 5, "print"),
    ),
    # manager methods ---------------------------------------------------------------------
    Case(
        "manager.can_trade",
        "current_portfolio_value",
        manager,
        lambda m, v: m.can_trade(current_portfolio_value=v),
        tuple(BAD_NUMBER),
    ),
    Case(
        "manager.can_trade (one bad among good)",
        "start_of_day_value",
        manager,
        lambda m, v: m.can_trade(current_portfolio_value=10, start_of_day_value=v),
        tuple(BAD_NUMBER),
    ),
    Case(
        "manager.can_trade (one bad among good)",
        "price",
        manager,
        lambda m, v: m.can_trade(current_portfolio_value=10, price=v),
        (*BAD_NUMBER, 0, -1),
    ),
    Case(
        "manager.can_trade (one bad among good)",
        "last_return",
        manager,
        lambda m, v: m.can_trade(current_portfolio_value=10, last_return=v),
        tuple(BAD_NUMBER),
    ),
    Case(
        "manager.can_trade (unknown keyword)",
        "portfolio",
        manager,
        lambda m, v: m.can_trade(current_portfolio_value=10, portfolio=v),
        (10, None),
    ),
    Case(
        "manager.add_breaker",
        "breaker",
        manager,
        lambda m, v: m.add_breaker(v),
        (None, "drawdown", 5, DrawdownCircuitBreaker),
    ),
    Case(
        "manager.add_breaker (duplicate)",
        "breaker",
        manager,
        lambda m, v: m.add_breaker(DrawdownCircuitBreaker("0.2", name=v)),
        ("drawdown", " manual "),
    ),
    Case(
        "manager.remove_breaker",
        "name",
        manager,
        lambda m, v: m.remove_breaker(v),
        (*BAD_REQUIRED_TEXT, "nope"),
    ),
    Case(
        "manager.reset",
        "name",
        manager,
        lambda m, v: m.reset(v, operator="ops"),
        (*BAD_REQUIRED_TEXT, "nope"),
    ),
    Case(
        "manager.reset",
        "operator",
        manager,
        lambda m, v: m.reset("latched", operator=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "manager.reset_all",
        "operator",
        manager,
        lambda m, v: m.reset_all(operator=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "manager.reset_all",
        "reason",
        manager,
        lambda m, v: m.reset_all(operator="ops", reason=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "manager.halt_all",
        "reason",
        manager,
        lambda m, v: m.halt_all(v, "ops"),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "manager.halt_all",
        "operator",
        manager,
        lambda m, v: m.halt_all("why", v),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "manager.record_error",
        "category",
        manager,
        lambda m, v: m.record_error("boom", category=v),
        tuple(BAD_TEXT),
    ),
    Case(
        "manager.admit_order",
        "reduce_only",
        manager,
        lambda m, v: m.admit_order(reduce_only=v),
        ("False", "yes", 1, 0, None),
    ),
    Case(
        "manager.admit_order",
        "details",
        manager,
        lambda m, v: m.admit_order(details=v),
        ("AAPL", 5, ["symbol"]),
    ),
    Case(
        "manager.refuse_order",
        "reason",
        manager,
        lambda m, v: m.refuse_order(v),
        tuple(BAD_REQUIRED_TEXT),
    ),
    Case(
        "manager.refuse_order",
        "blocking",
        manager,
        lambda m, v: m.refuse_order("paused", blocking=v),
        ("manual", [1], 5),
    ),
    Case(
        "manager.add_listener",
        "callback",
        manager,
        lambda m, v: m.add_listener(v),
        (None, 5),
    ),
    # order checks ------------------------------------------------------------------------
    Case(
        "MaxOrderQuantity()",
        "max_quantity",
        nothing,
        lambda s, v: MaxOrderQuantity(v),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "MaxOrderQuantity()",
        "per_symbol",
        nothing,
        lambda s, v: MaxOrderQuantity(10, per_symbol=v),
        ("SPY", 5, True, [("SPY", 1)], {5: 1}, {"": 1}, {" ": 1}),
    ),
    Case(
        "MaxOrderQuantity()",
        "per_symbol[SPY]",
        nothing,
        lambda s, v: MaxOrderQuantity(10, per_symbol={"SPY": v}),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "MaxOrderNotional()",
        "max_notional",
        nothing,
        lambda s, v: MaxOrderNotional(v),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "MaxOrderNotional()",
        "per_symbol[ES]",
        nothing,
        lambda s, v: MaxOrderNotional(10, per_symbol={"ES": v}),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "PriceCollar()", "max_deviation", nothing, lambda s, v: PriceCollar(v), tuple(BAD_FRACTION)
    ),
    Case(
        "PriceCollar()",
        "max_price_age_seconds",
        nothing,
        lambda s, v: PriceCollar("0.1", max_price_age_seconds=v),
        tuple(BAD_SECONDS),
    ),
    Case(
        "MaxPosition()", "max_quantity", nothing, lambda s, v: MaxPosition(v), tuple(BAD_POSITIVE)
    ),
    Case(
        "MaxPosition()",
        "max_notional",
        nothing,
        lambda s, v: MaxPosition(1, max_notional=v),
        tuple(x for x in BAD_POSITIVE if x is not None),
    ),
    Case(
        "MaxPosition()",
        "per_symbol[SPY]",
        nothing,
        lambda s, v: MaxPosition(1, per_symbol={"SPY": v}),
        (5, "5", None, True, [1], {}, {"size": 1}),
    ),
    Case(
        "MaxPosition()",
        "per_symbol[SPY].max_quantity",
        nothing,
        lambda s, v: MaxPosition(1, per_symbol={"SPY": {"max_quantity": v}}),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "MaxPosition()",
        "per_symbol[SPY].max_notional",
        nothing,
        lambda s, v: MaxPosition(1, per_symbol={"SPY": {"max_notional": v}}),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "MaxGrossExposure()",
        "max_exposure",
        nothing,
        lambda s, v: MaxGrossExposure(v),
        tuple(BAD_POSITIVE),
    ),
    Case(
        "MaxGrossExposure()",
        "max_fraction_of_equity",
        nothing,
        lambda s, v: MaxGrossExposure(1, max_fraction_of_equity=v),
        tuple(x for x in BAD_POSITIVE if x is not None),
    ),
    Case("MaxOpenOrders()", "max_open", nothing, lambda s, v: MaxOpenOrders(v), tuple(BAD_COUNT)),
    Case(
        "DuplicateOrder()",
        "window_seconds",
        nothing,
        lambda s, v: DuplicateOrder(v),
        tuple(BAD_SECONDS),
    ),
    Case(
        "MessageThrottle()",
        "max_messages",
        nothing,
        lambda s, v: MessageThrottle(v, 1),
        tuple(BAD_COUNT),
    ),
    Case(
        "MessageThrottle()",
        "window_seconds",
        nothing,
        lambda s, v: MessageThrottle(10, v),
        tuple(BAD_SECONDS),
    ),
    Case(
        "ExecutionThrottle()",
        "max_orders",
        nothing,
        lambda s, v: ExecutionThrottle(v, 1),
        tuple(BAD_COUNT),
    ),
    Case(
        "ExecutionThrottle()",
        "window_seconds",
        nothing,
        lambda s, v: ExecutionThrottle(10, v),
        tuple(BAD_SECONDS),
    ),
    Case(
        "RestrictedSymbols()",
        "symbols",
        nothing,
        lambda s, v: RestrictedSymbols(v),
        ("SPY", b"SPY", 5, None, True, [""], ["SPY", 5], [None]),
    ),
    Case(
        "OrderContext()",
        "position",
        nothing,
        lambda s, v: OrderContext(position=v),
        (*BAD_NUMBER, None),
    ),
    Case(
        "OrderContext()",
        "reference_price",
        nothing,
        lambda s, v: OrderContext(reference_price=v),
        tuple(x for x in BAD_POSITIVE if x is not None),
    ),
    Case(
        "OrderContext()",
        "price_time",
        nothing,
        lambda s, v: OrderContext(reference_price=1, price_time=v),
        (datetime(2025, 1, 1), "2025-01-01T00:00:00+00:00", 0, START.date(), True),
    ),
    Case(
        "OrderContext()", "equity", nothing, lambda s, v: OrderContext(equity=v), tuple(BAD_NUMBER)
    ),
    Case(
        "OrderContext()",
        "open_orders",
        nothing,
        lambda s, v: OrderContext(open_orders=v),
        (
            "SPY",
            b"x",
            5,
            None,
            [1],
            [Order.make("SPY", 1, limit_price=100), "o-1"],
            Order.make("SPY", 1, limit_price=100),
        ),
    ),
    Case(
        "OrderContext()",
        "gross_exposure",
        nothing,
        lambda s, v: OrderContext(gross_exposure=v),
        (*BAD_NUMBER, None, -1, "-0.01"),
    ),
    Case(
        "manager.add_check",
        "check",
        checked,
        lambda m, v: m.add_check(v),
        (
            None,
            5,
            "max_order_quantity",
            MaxOrderQuantity,
            MaxOrderQuantity(5),
            ExecutionThrottle(1, 1),
        ),
    ),
    Case(
        "manager.remove_check",
        "name",
        checked,
        lambda m, v: m.remove_check(v),
        (*BAD_REQUIRED_TEXT, "nope"),
    ),
    Case("manager.check_order", "order", checked, lambda m, v: m.check_order(v), (None, "SPY", 5)),
    Case(
        "manager.check_order",
        "context",
        checked,
        lambda m, v: m.check_order(Order.make("SPY", 1, limit_price=100), v),
        ("ctx", 5, {"position": 1}),
    ),
    Case(
        "manager.admit_order",
        "order",
        checked,
        lambda m, v: m.admit_order(order=v),
        (None, "SPY", 5, {"symbol": "SPY"}),
    ),
    Case(
        "manager.admit_order",
        "context",
        checked,
        lambda m, v: m.admit_order(order=Order.make("SPY", 1, limit_price=100), context=v),
        ("ctx", 5, {"position": 1}),
    ),
    Case(
        "manager.record_message",
        "kind",
        checked,
        lambda m, v: m.record_message(v),
        ("submit", "", "  ", "CANCEL", None, 5, True),
    ),
    Case(
        "manager.guard",
        "context",
        checked,
        lambda m, v: m.guard(print, context=v),
        (5, "fn", True),
    ),
    Case(
        "manager.reset",
        "operator",
        checked,
        lambda m, v: m.reset("execution_throttle", operator=v),
        (*BAD_TEXT, None),
    ),
    Case("manager.reset_all", "operator", checked, lambda m, v: m.reset_all(operator=v), (None,)),
    # ManualClock -------------------------------------------------------------------------
    Case(
        "clock.advance",
        "seconds",
        the_clock,
        lambda c, v: c.advance(v),
        (*BAD_NUMBER, None, -1, "-0.000001", 1e20),
    ),
    Case(
        "clock.set",
        "dt",
        the_clock,
        lambda c, v: c.set(v),
        (datetime(2025, 1, 1), "2025-01-01T00:00:00+00:00", None, 0, START.date()),
    ),
]

PARAMS = [
    pytest.param(case, bad, id=f"{case.what}-{case.param}-{bad!r}"[:90])
    for case in CASES
    for bad in case.bad
]


@pytest.mark.parametrize(("case", "bad"), PARAMS)
def test_bad_input_is_refused_naming_the_parameter_and_changes_nothing(
    case: Case, bad: Any
) -> None:
    clock = ManualClock(START)
    subject = case.subject(clock)
    before = snapshot(subject)
    clock_before = snapshot(clock)
    with pytest.raises(HaltgateError) as info:
        case.call(subject, bad)
    err = info.value
    assert isinstance(err, ValueError | TypeError), type(err).__mro__
    assert case.param in str(err), str(err)
    if isinstance(err, InvalidInputError):
        assert err.parameter == case.param
    assert snapshot(subject) == before
    assert snapshot(clock) == clock_before


def test_every_case_list_is_non_empty() -> None:
    assert all(case.bad for case in CASES)
    assert len(PARAMS) > 500
