"""The one rule for "what the position would be": the position plus the working orders on
the order's side, and whether an order only reduces it; and the one rule for what an order
is worth (its price and notional).

Every check that exempts reducing orders (quantity, notional, collar, position, exposure,
open orders) and :class:`~haltgate.checks.MaxPosition` use these functions and no other
arithmetic of their own (SPEC §10: a position can always be closed). :func:`order_facts`
works all of it out once per judgement; the manager passes the result to every check that
reads it (``OrderCheck.uses_facts``), so an admission derives each value once however
many checks need it.
"""

from __future__ import annotations

from decimal import Decimal

from ..orders import Order, OrderSide
from ..values import DECIMAL_CONTEXT
from .context import OrderContext

__all__ = [
    "OrderFacts",
    "order_facts",
    "order_price",
    "position_after",
    "reduces_position",
    "side_exposure",
]

_ZERO = Decimal(0)
_BUY = OrderSide.BUY
_add = DECIMAL_CONTEXT.add
_subtract = DECIMAL_CONTEXT.subtract
_multiply = DECIMAL_CONTEXT.multiply


def side_exposure(order: Order, context: OrderContext) -> Decimal:
    """The position in ``order.symbol`` once every working order of ``context`` in that
    symbol *on the order's side* has filled (their unfilled part; ``order`` itself is not
    counted if the caller listed it among the working orders). Exact Decimal arithmetic."""
    return order_facts(order, context).exposure


class OrderFacts:
    """What several checks derive from one order and its context (see :func:`order_facts`):

    * ``exposure``: :func:`side_exposure` (the position with the working orders on the
      order's side);
    * ``after``: that position after the order (signed, :func:`position_after`);
    * ``reducing``: whether the order only reduces it (:func:`reduces_position`);
    * ``price``: the price the order is valued at (:func:`order_price`: the limit price,
      else the reference price, else ``None``);
    * ``notional``: ``quantity * price`` (exact), ``None`` without a price.
    """

    __slots__ = ("after", "exposure", "notional", "price", "reducing")

    exposure: Decimal
    after: Decimal
    reducing: bool
    price: Decimal | None
    notional: Decimal | None


_new_facts = object.__new__


def order_facts(order: Order, context: OrderContext) -> OrderFacts:
    """The :class:`OrderFacts` of ``order`` in ``context``: the one place where the
    position after the order, the reducing rule and the order's value are worked out."""
    exposure = context.position
    working = context.open_orders
    side = order.side
    if working:
        symbol = order.symbol
        for other in working:
            if other is order or other.side is not side or other.symbol != symbol:
                continue
            remaining = _subtract(other.quantity, other.filled_quantity)
            if remaining > _ZERO:
                exposure = (
                    _add(exposure, remaining) if side is _BUY else _subtract(exposure, remaining)
                )
    quantity = order.quantity
    if side is _BUY:
        after = _add(exposure, quantity)
        # Points against a short and does not take it past zero (flat is reducing).
        reducing = exposure < _ZERO and after <= _ZERO
    else:
        after = _subtract(exposure, quantity)
        reducing = exposure > _ZERO and after >= _ZERO
    price = order.limit_price
    if price is None:
        price = context.reference_price
    facts: OrderFacts = _new_facts(OrderFacts)
    facts.exposure = exposure
    facts.after = after
    facts.reducing = reducing
    facts.price = price
    facts.notional = None if price is None else _multiply(quantity, price)
    return facts


def position_after(order: Order, context: OrderContext) -> Decimal:
    """:func:`side_exposure` plus this order (signed)."""
    return order_facts(order, context).after


def reduces_position(order: Order, context: OrderContext) -> bool:
    """True when ``order`` only shrinks the position counted by :func:`side_exposure`:
    it points against it and does not take it past zero (flat is reducing; a flip or a
    growth is not)."""
    return order_facts(order, context).reducing


def order_price(order: Order, context: OrderContext) -> Decimal | None:
    """The price an order is valued at: its limit price, else the reference price (or
    ``None`` when there is neither)."""
    return order_facts(order, context).price
