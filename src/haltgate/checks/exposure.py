"""The one rule for "what the position would be": the position plus the working orders on
the order's side, and whether an order only reduces it.

Every check that exempts reducing orders (quantity, notional, collar, position, exposure,
open orders) and :class:`~haltgate.checks.MaxPosition` use these functions and no other
arithmetic of their own (SPEC §10: a position can always be closed).
"""

from __future__ import annotations

from decimal import Decimal

from ..orders import Order, OrderSide
from ..values import DECIMAL_CONTEXT
from .context import OrderContext

__all__ = ["order_price", "position_after", "reduces_position", "side_exposure"]

_ZERO = Decimal(0)
_BUY = OrderSide.BUY
_add = DECIMAL_CONTEXT.add
_subtract = DECIMAL_CONTEXT.subtract


def side_exposure(order: Order, context: OrderContext) -> Decimal:
    """The position in ``order.symbol`` once every working order of ``context`` in that
    symbol *on the order's side* has filled (their unfilled part; ``order`` itself is not
    counted if the caller listed it among the working orders). Exact Decimal arithmetic."""
    total = context.position
    working = context.open_orders
    if working:
        symbol, side = order.symbol, order.side
        for other in working:
            if other is order or other.side is not side or other.symbol != symbol:
                continue
            remaining = _subtract(other.quantity, other.filled_quantity)
            if remaining > _ZERO:
                total = _add(total, remaining) if side is _BUY else _subtract(total, remaining)
    return total


def position_after(order: Order, context: OrderContext) -> Decimal:
    """:func:`side_exposure` plus this order (signed)."""
    exposure = side_exposure(order, context) if context.open_orders else context.position
    if order.side is _BUY:
        return _add(exposure, order.quantity)
    return _subtract(exposure, order.quantity)


def reduces_position(order: Order, context: OrderContext) -> bool:
    """True when ``order`` only shrinks the position counted by :func:`side_exposure`:
    it points against it and does not take it past zero (flat is reducing; a flip or a
    growth is not)."""
    exposure = side_exposure(order, context) if context.open_orders else context.position
    if order.side is _BUY:
        return exposure < _ZERO and _add(exposure, order.quantity) <= _ZERO
    return exposure > _ZERO and _subtract(exposure, order.quantity) >= _ZERO


def order_price(order: Order, context: OrderContext) -> Decimal | None:
    """The price an order is valued at: its limit price, else the reference price (or
    ``None`` when there is neither)."""
    limit = order.limit_price
    return limit if limit is not None else context.reference_price
