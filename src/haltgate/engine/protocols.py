"""What the engine expects of a broker and of a strategy. Methods may be sync or async."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from ..orders import Order
    from .data import Bar

__all__ = ["BrokerAdapter", "Strategy", "resolve"]

T = TypeVar("T")

BROKER_METHODS = (
    "submit_order",
    "cancel_order",
    "cancel_all",
    "get_positions",
    "get_account_value",
)


@runtime_checkable
class BrokerAdapter(Protocol):
    """A broker as the engine uses it. Every method may be a plain method or a coroutine.

    ``submit_order`` returns the order (updated in place or a new object with the broker's
    status) or ``None``; raising means the submission failed (recorded as an error).
    ``get_positions`` maps symbol to signed quantity (negative = short).
    An optional ``on_bar(bar)`` is called with every bar before the portfolio is valued
    (a paper broker fills its working orders there).
    """

    def submit_order(self, order: Order) -> Any:
        """Send ``order`` to the market."""
        ...

    def cancel_order(self, order_id: str) -> Any:
        """Cancel one working order; returns whether it was cancelled."""
        ...

    def cancel_all(self) -> Any:
        """Cancel every working order; returns the cancelled orders."""
        ...

    def get_positions(self) -> Any:
        """``{symbol: signed quantity}``."""
        ...

    def get_account_value(self) -> Any:
        """Cash plus the market value of every position."""
        ...


@runtime_checkable
class Strategy(Protocol):
    """A trading strategy: ``on_bar(context, bar)`` (sync or async) is called for every bar.

    It places orders with ``context.buy`` / ``context.sell`` / ``context.order`` (sent
    through the gate right after ``on_bar`` returns, in order) or ``await
    context.submit(order)`` (sent at once); it may also return an iterable of orders.
    Optional hooks: ``on_start(context)``, ``on_stop(context)``.
    """

    def on_bar(self, context: Any, bar: Bar) -> Any:
        """React to one bar."""
        ...


async def resolve(value: T | Any) -> Any:
    """``value``, awaited first if it is awaitable (so sync and async adapters look alike)."""
    if inspect.isawaitable(value):
        return await value
    return value


def to_positions(raw: Any) -> dict[str, Decimal]:
    """Normalise what ``get_positions`` returned to ``{symbol: Decimal}``."""
    from ..values import to_decimal

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"get_positions() must return a mapping of symbol to quantity, got {raw!r}")
    return {str(symbol): to_decimal(qty, f"positions[{symbol!r}]") for symbol, qty in raw.items()}
