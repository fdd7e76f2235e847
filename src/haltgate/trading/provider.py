"""PortfolioProvider: what :class:`~haltgate.TradingCircuitBreakers` asks the portfolio.

Each method may be a plain function or a coroutine function. Percentages have losses
negative, like the thresholds: ``get_daily_pnl_pct()`` → ``Decimal("-2.5")`` is a 2.5 %
loss today; ``get_max_drawdown()`` → ``Decimal("-12.0")`` is 12 % below the peak;
``get_position_concentration("SPY")`` → ``Decimal("18.0")`` is 18 % of the portfolio.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from ..errors import InvalidTypeError

__all__ = [
    "REQUIRED_METHODS",
    "PortfolioProvider",
    "ProviderCaller",
    "ProviderError",
    "cancelled_by_caller",
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


def cancelled_by_caller() -> bool:
    """True when the running task itself is being cancelled (``task.cancel()``).

    Tells that apart from a ``CancelledError`` a provider raised on its own (a library
    cancelling an inner future): only the first must end what the task is doing.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def check_provider(portfolio: Any) -> None:
    """Refuse an object that lacks one of the required methods."""
    for method in REQUIRED_METHODS:
        if not callable(getattr(portfolio, method, None)):
            raise InvalidTypeError(
                "portfolio", portfolio, f"must implement PortfolioProvider (no {method}())"
            )


class ProviderCaller:
    """Calls a provider's methods (sync or async) with a time limit.

    A sync method runs in its own daemon thread so that one that hangs can stall neither
    the event loop nor its shutdown; the thread is abandoned after the timeout. At most
    ``max_stuck`` abandoned calls may be outstanding: beyond that, calls fail at once
    instead of piling up threads behind a provider that never answers. Every failure,
    including the timeout and a ``CancelledError`` the provider raised itself, is raised
    as :class:`ProviderError`; only cancelling the calling task propagates as
    ``CancelledError``.
    """

    def __init__(self, portfolio: Any, timeout: float, *, max_stuck: int = 4) -> None:
        self._portfolio = portfolio
        self.timeout = timeout
        self.max_stuck = max_stuck
        self._lock = threading.Lock()
        self._running = 0

    async def call(self, method: str, *args: Any) -> Any:
        """``portfolio.<method>(*args)``, awaited if it returns an awaitable."""
        fn = getattr(self._portfolio, method)
        try:
            if inspect.iscoroutinefunction(fn):
                return await asyncio.wait_for(fn(*args), self.timeout)
            result = await asyncio.wait_for(self._in_thread(fn, args), self.timeout)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self.timeout)
            return result
        except asyncio.CancelledError as exc:
            if cancelled_by_caller():
                raise
            # Not our cancellation: the provider failed (and must not end the monitoring).
            raise ProviderError(method, exc) from exc
        except TimeoutError as exc:
            raise ProviderError(
                method, TimeoutError(f"no answer within {self.timeout:g}s")
            ) from exc
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(method, exc) from exc

    def _in_thread(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._running >= self.max_stuck:
                raise ProviderError(
                    getattr(fn, "__name__", "provider"),
                    RuntimeError(f"{self._running} earlier calls have not returned"),
                )
            self._running += 1

        def settle(ok: bool, value: Any) -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def work() -> None:
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as exc:
                outcome = (False, exc)
            finally:
                with self._lock:
                    self._running -= 1
            # A closed loop means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(target=work, name="haltgate-provider-call", daemon=True).start()
        return future
