"""Position-concentration breaker: refuses orders that over-concentrate one symbol."""

from __future__ import annotations

from decimal import Decimal

from ..clock import Clock
from ..errors import InvalidInputError
from ..values import DECIMAL_CONTEXT, RATIO_CONTEXT, Number, to_decimal, to_fraction, to_text
from .base import BaseCircuitBreaker
from .contract import BreakerContract
from .state import BLOCKING_STATES, CircuitBreakerType

__all__ = ["PositionConcentrationCircuitBreaker"]

_ZERO = Decimal(0)


def _checked(
    proposed_value: Number, portfolio_value: Number, current_position_value: Number
) -> tuple[Decimal, Decimal, Decimal]:
    """The three amounts of an order check as Decimals (the portfolio must be positive)."""
    proposed = to_decimal(proposed_value, "proposed_value")
    portfolio = to_decimal(portfolio_value, "portfolio_value")
    current = to_decimal(current_position_value, "current_position_value")
    if portfolio <= _ZERO:
        raise InvalidInputError("portfolio_value", portfolio_value, "must be greater than 0")
    return proposed, portfolio, current


class PositionConcentrationCircuitBreaker(BaseCircuitBreaker):
    """Refuses an order that would leave one symbol above ``max_position_pct`` of the
    portfolio (a fraction in (0, 1]). It does not latch: each order is judged alone.

    An order that shrinks the position (without crossing zero) is always allowed, even when
    the position stays above the limit: refusing it would keep the portfolio more
    concentrated.
    """

    contract = BreakerContract()

    def __init__(
        self, max_position_pct: Number, *, name: str | None = None, clock: Clock | None = None
    ) -> None:
        limit = to_fraction(max_position_pct, "max_position_pct")
        super().__init__(CircuitBreakerType.POSITION_CONCENTRATION, name=name, clock=clock)
        self.max_position_pct = limit

    def concentration(
        self, proposed_value: Number, portfolio_value: Number, current_position_value: Number = 0
    ) -> Decimal:
        """The fraction of the portfolio the position would be after the order."""
        proposed, portfolio, current = _checked(
            proposed_value, portfolio_value, current_position_value
        )
        return RATIO_CONTEXT.divide(DECIMAL_CONTEXT.add(current, proposed).copy_abs(), portfolio)

    def check_order(
        self,
        symbol: str,
        proposed_value: Number,
        portfolio_value: Number,
        current_position_value: Number = 0,
    ) -> bool:
        """True if the order may go; False (with an ``order_refused`` event) if it would
        push ``symbol`` above the limit, or when the breaker is halted."""
        symbol = to_text(symbol, "symbol")
        proposed, portfolio, current = _checked(
            proposed_value, portfolio_value, current_position_value
        )
        return self._judge_order(symbol, proposed, portfolio, current)

    def _judge_order(
        self, symbol: str, proposed: Decimal, portfolio: Decimal, current: Decimal
    ) -> bool:
        """:meth:`check_order` on values already checked (``portfolio`` > 0). For callers
        whose own exact arithmetic may carry more digits than an input may have."""
        resulting = DECIMAL_CONTEXT.add(current, proposed)
        size = resulting.copy_abs()
        # A reduction does not grow the position and does not cross zero: flipping a long into a
        # short (or back) opens a new position, judged against the limit like any other.
        reduces = size <= current.copy_abs() and (
            resulting == _ZERO or (resulting > _ZERO) == (current > _ZERO)
        )
        if self.is_tripped:
            self._refused(
                f"Order for {symbol} refused: breaker {self.name} is {self._state.value}",
                {"symbol": symbol},
            )
            return False
        # Exact: size / portfolio > limit, without rounding a quotient.
        if size > DECIMAL_CONTEXT.multiply(self.max_position_pct, portfolio) and not reduces:
            after = RATIO_CONTEXT.divide(size, portfolio)
            self._refused(
                f"Position in {symbol} would be {after:.2%} of the portfolio "
                f"(max {self.max_position_pct:.2%})",
                {
                    "symbol": symbol,
                    "threshold": self.max_position_pct,
                    "observed": after,
                    "proposed_value": proposed,
                    "portfolio_value": portfolio,
                },
            )
            return False
        return True

    def can_trade(self) -> bool:
        """True unless halted (concentration is judged per order by :meth:`check_order`)."""
        return self._state not in BLOCKING_STATES
