"""PaperBroker: a simulated broker that fills orders against the data portal's prices."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..clock import Clock, SystemClock
from ..orders import Order, OrderSide, OrderStatus, OrderType
from ..values import DECIMAL_CONTEXT, Number, to_decimal
from .data import Bar, DataPortal

__all__ = ["Fill", "PaperBroker"]

logger = logging.getLogger("haltgate.engine.paper")

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution."""

    order_id: str
    symbol: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    timestamp: datetime | None


class PaperBroker:
    """Fills market orders at the current price and limit orders when the price reaches
    the limit; keeps cash and positions. Implements :class:`BrokerAdapter` (sync methods).

    - A MARKET order fills at once at the portal's latest close of its symbol.
    - A LIMIT order fills at once at the latest close if that is at or better than the
      limit; otherwise it works until a bar trades through the limit, then fills at the
      limit (or at the bar's open if the bar opened beyond it).
    - A buy needs the cash at fill time; a sell needs the position unless ``allow_short``.
      An order that cannot be filled is REJECTED by the broker with the reason.
    """

    def __init__(
        self,
        data_portal: DataPortal,
        *,
        cash: Number = 100_000,
        allow_short: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(data_portal, DataPortal):
            from ..errors import InvalidTypeError

            raise InvalidTypeError("data_portal", data_portal, "must be a DataPortal")
        start = to_decimal(cash, "cash")
        if start < _ZERO:
            from ..errors import InvalidInputError

            raise InvalidInputError("cash", cash, "must not be negative")
        self.data_portal = data_portal
        self.allow_short = bool(allow_short)
        self._clock = clock
        self._cash = start
        self._positions: dict[str, Decimal] = {}
        self._working: dict[str, Order] = {}
        self._lock = threading.Lock()
        self.fills: list[Fill] = []

    # ------------------------------------------------------------------ reading
    @property
    def cash(self) -> Decimal:
        """Cash not invested."""
        return self._cash

    def get_positions(self) -> dict[str, Decimal]:
        """``{symbol: signed quantity}`` of every open position."""
        with self._lock:
            return {s: q for s, q in self._positions.items() if q != _ZERO}

    def get_account_value(self) -> Decimal:
        """Cash plus every position at the portal's latest price."""
        with self._lock:
            value = self._cash
            for symbol, quantity in self._positions.items():
                if quantity == _ZERO:
                    continue
                price = self.data_portal.current_price(symbol)
                if price is None:
                    raise LookupError(f"no price for {symbol} to value the position")
                value = DECIMAL_CONTEXT.add(value, DECIMAL_CONTEXT.multiply(quantity, price))
            return value

    def get_open_orders(self) -> list[Order]:
        """Working orders, oldest first."""
        with self._lock:
            return list(self._working.values())

    # ------------------------------------------------------------------ orders
    def submit_order(self, order: Order) -> Order:
        """Fill, rest or reject ``order``; returns it (updated in place)."""
        with self._lock:
            price = self.data_portal.current_price(order.symbol)
            if price is None:
                order.reject([f"no price for {order.symbol} yet"], by="broker")
                return order
            if order.order_type is OrderType.MARKET or _marketable(order, price):
                self._fill_locked(order, price)
            else:
                order.status = OrderStatus.OPEN
                self._working[order.id] = order
            return order

    def cancel_order(self, order_id: str) -> bool:
        """Cancel a working order; False if it is not working (filled, unknown...)."""
        with self._lock:
            order = self._working.pop(order_id, None)
            if order is None:
                return False
            order.status = OrderStatus.CANCELLED
            return True

    def cancel_all(self) -> list[Order]:
        """Cancel every working order; returns them."""
        with self._lock:
            cancelled = list(self._working.values())
            self._working.clear()
            for order in cancelled:
                order.status = OrderStatus.CANCELLED
        if cancelled:
            logger.info("paper_orders_cancelled", extra={"count": len(cancelled)})
        return cancelled

    def on_bar(self, bar: Bar) -> list[Order]:
        """Fill the working limit orders of ``bar.symbol`` that the bar traded through;
        returns the orders filled (or rejected for lack of cash or position)."""
        done: list[Order] = []
        with self._lock:
            for order in list(self._working.values()):
                if order.symbol != bar.symbol or order.limit_price is None:
                    continue
                limit = order.limit_price
                if order.side is OrderSide.BUY and bar.low_price <= limit:
                    price = min(limit, bar.open_price)
                elif order.side is OrderSide.SELL and bar.high_price >= limit:
                    price = max(limit, bar.open_price)
                else:
                    continue
                del self._working[order.id]
                self._fill_locked(order, price, when=bar.timestamp)
                done.append(order)
        return done

    # ------------------------------------------------------------------ fills
    def _fill_locked(self, order: Order, price: Decimal, when: datetime | None = None) -> None:
        held = self._positions.get(order.symbol, _ZERO)
        if order.side is OrderSide.BUY:
            cost = DECIMAL_CONTEXT.multiply(order.quantity, price)
            if cost > self._cash:
                order.reject([f"insufficient cash: need {cost}, have {self._cash}"], by="broker")
                return
            self._cash = DECIMAL_CONTEXT.subtract(self._cash, cost)
            self._positions[order.symbol] = DECIMAL_CONTEXT.add(held, order.quantity)
        else:
            if not self.allow_short and order.quantity > held:
                order.reject(
                    [f"insufficient position: selling {order.quantity}, holding {held}"],
                    by="broker",
                )
                return
            proceeds = DECIMAL_CONTEXT.multiply(order.quantity, price)
            self._cash = DECIMAL_CONTEXT.add(self._cash, proceeds)
            self._positions[order.symbol] = DECIMAL_CONTEXT.subtract(held, order.quantity)
        stamp = when if when is not None else self._now()
        order.status = OrderStatus.FILLED
        order.filled_quantity = order.quantity
        order.fill_price = price
        order.filled_at = stamp
        self.fills.append(Fill(order.id, order.symbol, order.side, order.quantity, price, stamp))

    def _now(self) -> datetime:
        if self._clock is not None:
            return self._clock.now()
        bar = self.data_portal.last_bar
        return bar.timestamp if bar is not None else SystemClock().now()


def _marketable(order: Order, price: Decimal) -> bool:
    assert order.limit_price is not None
    if order.side is OrderSide.BUY:
        return price <= order.limit_price
    return price >= order.limit_price
