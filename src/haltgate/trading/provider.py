"""PortfolioProvider: what :class:`~haltgate.TradingCircuitBreakers` asks the portfolio.

Each method may be a plain function or a coroutine function. Percentages have losses
negative, like the thresholds: ``get_daily_pnl_pct()`` → ``Decimal("-2.5")`` is a 2.5 %
loss today; ``get_max_drawdown()`` → ``Decimal("-12.0")`` is 12 % below the peak;
``get_position_concentration("SPY")`` → ``Decimal("18.0")`` is 18 % of the portfolio.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from ..errors import InvalidTypeError

__all__ = [
    "REQUIRED_METHODS",
    "PortfolioProvider",
    "ProviderError",
    "call_provider",
    "check_provider",
]

REQUIRED_METHODS = (
    "get_total_value",
    "get_daily_pnl",
    "get_daily_pnl_pct",
    "get_max_drawdown",
    "get_position_concentration",
)


@runtime_checkable
class PortfolioProvider(Protocol):
    """Implement (or subclass) this to feed your portfolio into the trading breakers.

    Every method may be sync or async. An optional ``get_market_price()`` (sync or async,
    returning a price or ``None``) feeds the volatility breaker on every monitoring check.
    """

    def get_total_value(self) -> Decimal | Awaitable[Decimal]:
        """Total portfolio value (money)."""
        ...

    def get_daily_pnl(self) -> Decimal | Awaitable[Decimal]:
        """Today's profit and loss (money, losses negative)."""
        ...

    def get_daily_pnl_pct(self) -> Decimal | Awaitable[Decimal]:
        """Today's P&L as a percentage of the start-of-day value (losses negative)."""
        ...

    def get_max_drawdown(self) -> Decimal | Awaitable[Decimal]:
        """Current drawdown from the peak as a percentage (``-12.0`` = 12 % below)."""
        ...

    def get_position_concentration(self, symbol: str) -> Decimal | Awaitable[Decimal]:
        """The position in ``symbol`` as a percentage of the portfolio."""
        ...


class ProviderError(Exception):
    """The provider failed, hung past its timeout or returned an unusable value."""

    def __init__(self, method: str, error: BaseException) -> None:
        self.method = method
        self.error = error
        super().__init__(f"{method}() failed: {error!r}")


def check_provider(portfolio: Any) -> None:
    """Refuse an object that lacks one of the required methods."""
    for method in REQUIRED_METHODS:
        if not callable(getattr(portfolio, method, None)):
            raise InvalidTypeError(
                "portfolio", portfolio, f"must implement PortfolioProvider (no {method}())"
            )


async def call_provider(fn: Callable[..., Any], *args: Any, timeout: float, method: str) -> Any:
    """Call a sync or async provider method with a time limit.

    A sync method runs in a worker thread so that one that hangs cannot stall the event
    loop (the thread is abandoned after the timeout). Any failure, including the timeout,
    is raised as :class:`ProviderError`.
    """
    try:
        if inspect.iscoroutinefunction(fn):
            return await asyncio.wait_for(fn(*args), timeout)
        result = await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, timeout)
        return result
    except asyncio.CancelledError:
        raise
    except TimeoutError as exc:
        raise ProviderError(method, TimeoutError(f"no answer within {timeout:g}s")) from exc
    except Exception as exc:
        raise ProviderError(method, exc) from exc
