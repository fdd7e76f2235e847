"""haltgate computes in its own decimal context: the caller's never changes a decision.

SPEC §2: a caller's ``prec=6`` or an ``Inexact`` trap changes no decision, and a value too
large or too precise to be computed with exactly is refused with a typed error.
"""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Clamped, Decimal, Inexact, Rounded
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haltgate import (
    CircuitBreakerState,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    InvalidInputError,
    ManualClock,
    PositionConcentrationCircuitBreaker,
    TradingBreakerConfig,
    TradingCircuitBreakers,
    VolatilityCircuitBreaker,
)
from haltgate.breakers.threshold import ThresholdCircuitBreaker
from haltgate.engine.orders import Order
from haltgate.values import to_decimal

BIG = Decimal("12345678901234567890123456789.5")  # 30 digits, above 1E+28, below 1E+30


@contextmanager
def caller_context(
    prec: int = 28, *, traps: tuple[type[decimal.DecimalException], ...] = ()
) -> Iterator[None]:
    """The caller's thread runs with its own precision and traps."""
    with decimal.localcontext() as ctx:
        ctx.prec = prec
        for trap in traps:
            ctx.traps[trap] = True
        yield


STRICT = (Inexact, Rounded, Clamped)


# ----------------------------------------------------------------------------- drawdown
def test_caller_precision_does_not_hide_a_drawdown_beyond_the_limit(clock: ManualClock) -> None:
    with caller_context(prec=6):
        breaker = DrawdownCircuitBreaker("0.10", clock=clock)
        breaker.update(Decimal("1000000"))
        assert not breaker.can_trade(current_portfolio_value=Decimal("899999.9"))
        assert breaker.state is CircuitBreakerState.TRIPPED
        assert breaker.get_current_drawdown() == Decimal("0.1000001")
        assert breaker.get_peak() == Decimal("1000000")


def test_exactly_the_limit_does_not_trip_under_a_coarse_caller_precision(
    clock: ManualClock,
) -> None:
    with caller_context(prec=3):
        breaker = DrawdownCircuitBreaker("0.1234567", clock=clock)
        breaker.update(Decimal("10000000"))
        assert breaker.can_trade(current_portfolio_value=Decimal("8765433"))
        assert breaker.get_current_drawdown() == Decimal("0.1234567")
        assert not breaker.can_trade(current_portfolio_value=Decimal("8765432.9"))


def test_an_inexact_trap_of_the_caller_neither_raises_nor_blocks_a_trip(
    clock: ManualClock,
) -> None:
    with caller_context(prec=6, traps=STRICT):
        breaker = DrawdownCircuitBreaker("0.10", clock=clock)
        breaker.update(3)
        assert not breaker.can_trade(current_portfolio_value=2)  # 33.3... %
        assert breaker.state is CircuitBreakerState.TRIPPED
        assert breaker.get_peak() == 3
    assert breaker.get_current_drawdown() == Decimal(1) / Decimal(3)


def test_a_thirty_digit_peak_is_computed_exactly(clock: ManualClock) -> None:
    # (BIG - 0.5) / BIG is just below 1 - 4E-29, so a limit of 1 - 5E-30 must not trip; in
    # 28 digits BIG - 0.5 rounds up to BIG + 0.5 and the drawdown to 1.
    breaker = DrawdownCircuitBreaker("0.999999999999999999999999999995", clock=clock)
    breaker.update(BIG)
    assert breaker.can_trade(current_portfolio_value=Decimal("0.5"))
    assert breaker.get_peak() == BIG
    assert breaker.get_trip_details() == {}


# ----------------------------------------------------------------------------- daily loss
def test_caller_precision_does_not_hide_a_daily_loss_beyond_an_amount(clock: ManualClock) -> None:
    with caller_context(prec=6):
        breaker = DailyLossCircuitBreaker(100, clock=clock)
        assert breaker.can_trade(current_portfolio_value=Decimal("1000000"))
        assert not breaker.can_trade(current_portfolio_value=Decimal("999899.9999999"))
        assert breaker.get_current_daily_loss() == Decimal("100.0000001")


def test_caller_precision_does_not_move_a_percentage_daily_limit(clock: ManualClock) -> None:
    with caller_context(prec=6, traps=STRICT):
        breaker = DailyLossCircuitBreaker(max_daily_loss_pct="0.10", clock=clock)
        assert breaker.can_trade(current_portfolio_value=Decimal("1000000.1"))
        assert breaker.limit() == Decimal("100000.01")
        assert breaker.can_trade(current_portfolio_value=Decimal("900000.09"))
        assert not breaker.can_trade(current_portfolio_value=Decimal("900000.08"))
        assert breaker.get_trip_details()["observed"] == Decimal("100000.02")


def test_a_thirty_digit_daily_loss_is_exact(clock: ManualClock) -> None:
    # BIG - 0.5 is BIG's 29 integer digits; in 28 digits it rounds up past the limit.
    breaker = DailyLossCircuitBreaker("12345678901234567890123456789.2", clock=clock)
    breaker.can_trade(current_portfolio_value=BIG)
    assert breaker.can_trade(current_portfolio_value=Decimal("0.5"))
    assert breaker.get_current_daily_loss() == Decimal("12345678901234567890123456789.0")
    assert breaker.state is CircuitBreakerState.NORMAL


# ----------------------------------------------------------------------------- facade
class Portfolio:
    """A provider whose answers the test sets (plain Decimals, no arithmetic)."""

    def __init__(self) -> None:
        self.total = Decimal(100000)
        self.pnl_pct = Decimal(0)
        self.position_pct = Decimal(0)

    def get_total_value(self) -> Decimal:
        return self.total

    def get_daily_pnl(self) -> Decimal:
        return Decimal(0)

    def get_daily_pnl_pct(self) -> Decimal:
        return self.pnl_pct

    def get_max_drawdown(self) -> Decimal:
        return Decimal(0)

    def get_position_concentration(self, symbol: str) -> Decimal:
        return self.position_pct


def test_caller_precision_does_not_move_the_facade_threshold_after_a_reset(
    clock: ManualClock,
) -> None:
    portfolio = Portfolio()
    facade = TradingCircuitBreakers(portfolio, TradingBreakerConfig(), clock=clock)
    with caller_context(prec=6, traps=STRICT):
        portfolio.pnl_pct = Decimal("-12.3456789")
        assert asyncio.run(facade.check_once())
        assert facade.reset_breaker("daily_loss")
        daily = facade.get_breaker("daily_loss")
        assert isinstance(daily, ThresholdCircuitBreaker)
        # The fresh allowance is the limit's size below the value at the reset.
        assert daily.effective_limit() == Decimal("-14.3456789")
        portfolio.pnl_pct = Decimal("-14.34568")
        asyncio.run(facade.check_once())
        assert daily.state is CircuitBreakerState.TRIPPED


def test_caller_precision_does_not_admit_an_order_above_the_concentration_limit(
    clock: ManualClock,
) -> None:
    portfolio = Portfolio()
    facade = TradingCircuitBreakers(portfolio, TradingBreakerConfig(), clock=clock)
    portfolio.position_pct = Decimal("19.9999999")  # 19 999.99990 of 100 000
    with caller_context(prec=6, traps=STRICT):
        assert asyncio.run(facade.check_position_concentration("SPY", Decimal("0.0001")))
        assert not asyncio.run(facade.check_position_concentration("SPY", Decimal("0.00011")))


def test_a_high_precision_position_reaches_the_concentration_check(clock: ManualClock) -> None:
    # total x percentage has more digits than any one input may have: it is haltgate's own
    # value, judged as it is, never refused as "too precise".
    portfolio = Portfolio()
    portfolio.total = Decimal("123456.7890123456789")
    portfolio.position_pct = Decimal("10.12345678901234567")
    facade = TradingCircuitBreakers(portfolio, TradingBreakerConfig(), clock=clock)
    assert asyncio.run(facade.check_position_concentration("SPY", 1))


def test_concentration_is_judged_exactly_under_a_coarse_caller_precision() -> None:
    breaker = PositionConcentrationCircuitBreaker("0.2")
    with caller_context(prec=4, traps=STRICT):
        assert breaker.check_order("SPY", Decimal("0.0001"), 100000, Decimal("19999.9999"))
        assert not breaker.check_order("SPY", Decimal("0.00011"), 100000, Decimal("19999.9999"))


# ----------------------------------------------------------------------------- engine
def test_an_order_keeps_its_exact_quantity_under_a_coarse_caller_precision() -> None:
    with caller_context(prec=4, traps=STRICT):
        order = Order.make("SPY", Decimal("-1234567.5"))
        assert order.quantity == Decimal("1234567.5")
        assert order.signed_quantity == Decimal("-1234567.5")


# ----------------------------------------------------------------------------- refusals
def test_conversion_never_rounds_under_the_callers_traps() -> None:
    with caller_context(prec=3, traps=STRICT):
        assert to_decimal("1234567.891", "amount") == Decimal("1234567.891")
        assert to_decimal(BIG, "amount") == BIG


def test_a_value_with_too_many_significant_digits_is_refused_naming_it(
    clock: ManualClock,
) -> None:
    from haltgate.values import MAX_DIGITS

    breaker = DrawdownCircuitBreaker("0.10", clock=clock)
    breaker.update(100)
    precise = "1." + "1" * 59  # 60 significant digits
    with pytest.raises(InvalidInputError, match=r"current_portfolio_value=.*too precise") as info:
        breaker.can_trade(current_portfolio_value=precise)
    assert info.value.parameter == "current_portfolio_value"  # type: ignore[attr-defined]
    assert breaker.get_peak() == 100
    assert breaker.get_current_drawdown() == 0
    with pytest.raises(InvalidInputError, match="too precise"):
        to_decimal(Decimal("1" * (MAX_DIGITS + 1) + "E-5"), "amount")


def test_trailing_zeros_are_not_significant_digits() -> None:
    from haltgate.values import MAX_DIGITS

    assert to_decimal("1." + "0" * 60, "amount") == 1
    exact = "0." + "9" * MAX_DIGITS
    assert str(to_decimal(exact, "amount")) == exact


# ----------------------------------------------------------------------------- property
VALUES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e12"), places=4)
RETURNS = st.decimals(min_value=Decimal("-0.5"), max_value=Decimal("0.5"), places=7)
CONTEXTS = st.tuples(
    st.integers(min_value=1, max_value=28),
    st.lists(st.sampled_from(STRICT), unique=True, max_size=3),
)


Triple = tuple[Decimal, Decimal, Decimal]


def _scenario(orders: list[Triple], returns: list[Triple]) -> list[Any]:
    """Feed every breaker; only haltgate computes here (the inputs are made beforehand)."""
    clock = ManualClock()
    drawdown = DrawdownCircuitBreaker("0.0500001", clock=clock)
    daily = DailyLossCircuitBreaker(max_daily_loss_pct="0.0300001", clock=clock)
    threshold = ThresholdCircuitBreaker("drawdown", "-2.5", warning="-1.25", clock=clock)
    volatility = VolatilityCircuitBreaker(2, lookback=5, clock=clock)
    concentration = PositionConcentrationCircuitBreaker("0.25", clock=clock)
    seen: list[Any] = []
    for value, portfolio, current in orders:
        clock.advance(61)
        seen.append((drawdown.update(value), drawdown.state, drawdown.get_peak()))
        seen.append((daily.update(value), daily.get_current_daily_loss(), daily.limit()))
        seen.append(concentration.check_order("X", value, portfolio, current))
    for ret, price, pct in returns:
        seen.append((volatility.record_return(ret), volatility.record_price(price)))
        seen.append((volatility.state, threshold.observe(pct)))
        if threshold.is_tripped:
            threshold.reset()
            seen.append(threshold.effective_limit())
    return seen


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(VALUES, min_size=1, max_size=12),
    returns=st.lists(RETURNS, max_size=12),
    context=CONTEXTS,
)
def test_decisions_do_not_depend_on_the_callers_context(
    values: list[Decimal],
    returns: list[Decimal],
    context: tuple[int, list[type[decimal.DecimalException]]],
) -> None:
    # Each value as an order on a portfolio of the previous and this value, holding the
    # previous one.
    orders = [(v, p + v, p) for p, v in zip([values[0], *values], values, strict=False)]
    # Each return also as a price, and as a percentage for the threshold breaker.
    feed = [(r, r + 1, r * 10) for r in returns]
    expected = _scenario(orders, feed)
    prec, traps = context
    with caller_context(prec, traps=tuple(traps)):
        got = _scenario(orders, feed)
    assert got == expected
