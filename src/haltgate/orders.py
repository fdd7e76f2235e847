"""Orders as the engine, the gate and the brokers see them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .errors import HaltgateError, InvalidInputError
from .values import Number, to_decimal, to_text

__all__ = ["Order", "OrderRefusedError", "OrderSide", "OrderStatus", "OrderType"]

_ZERO = Decimal(0)
_ids = itertools.count(1)


class OrderSide(StrEnum):
    """Buy or sell."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """Market (fill at the current price) or limit (fill at the limit price or better)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"


class OrderStatus(StrEnum):
    """Where an order is in its life.

    ``REJECTED`` means it was refused before it could trade: by the gate (the circuit
    breakers, a paused or stopped engine, reduce-only mode) or by the broker (e.g. not
    enough cash); ``reject_reasons`` says why. ``FAILED`` means the broker raised while
    submitting it; the error is recorded with the breakers.
    """

    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    OPEN = "OPEN"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"

    @property
    def is_working(self) -> bool:
        """True while the order may still fill (SUBMITTED or OPEN)."""
        return self in (OrderStatus.SUBMITTED, OrderStatus.OPEN)


@dataclass(eq=False)
class Order:
    """One order. ``quantity`` is positive; the side says the direction.

    Brokers update ``status``, ``filled_quantity``, ``fill_price`` and ``filled_at`` in place.
    """

    symbol: str
    side: OrderSide
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    id: str = ""
    status: OrderStatus = OrderStatus.NEW
    reject_reasons: list[str] = field(default_factory=list)
    rejected_by: str | None = None
    error: str | None = None
    filled_quantity: Decimal = _ZERO
    fill_price: Decimal | None = None
    created_at: datetime | None = None
    filled_at: datetime | None = None

    def __post_init__(self) -> None:
        self.symbol = to_text(self.symbol, "symbol")
        try:
            self.side = OrderSide(str(self.side).upper())
        except ValueError:
            raise InvalidInputError("side", self.side, "must be BUY or SELL") from None
        try:
            self.order_type = OrderType(str(self.order_type).upper())
        except ValueError:
            raise InvalidInputError(
                "order_type", self.order_type, "must be MARKET or LIMIT"
            ) from None
        self.quantity = to_decimal(self.quantity, "quantity")
        if self.quantity <= _ZERO:
            raise InvalidInputError("quantity", self.quantity, "must be greater than 0")
        if self.order_type is OrderType.LIMIT:
            if self.limit_price is None:
                raise InvalidInputError("limit_price", None, "a LIMIT order needs a limit price")
            self.limit_price = to_decimal(self.limit_price, "limit_price")
            if self.limit_price <= _ZERO:
                raise InvalidInputError("limit_price", self.limit_price, "must be greater than 0")
        elif self.limit_price is not None:
            raise InvalidInputError("limit_price", self.limit_price, "a MARKET order has no limit")
        if not self.id:
            self.id = f"o-{next(_ids):06d}"

    @classmethod
    def make(cls, symbol: str, quantity: Number, *, limit_price: Number | None = None) -> Order:
        """An order from a signed quantity: positive buys, negative sells; a limit price
        makes it a LIMIT order."""
        amount = to_decimal(quantity, "quantity")
        if amount == _ZERO:
            raise InvalidInputError("quantity", quantity, "must not be 0")
        return cls(
            symbol=symbol,
            side=OrderSide.BUY if amount > _ZERO else OrderSide.SELL,
            quantity=amount.copy_abs(),  # exact: abs() rounds in the caller's context
            order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            limit_price=None if limit_price is None else to_decimal(limit_price, "limit_price"),
        )

    @property
    def signed_quantity(self) -> Decimal:
        """The quantity with the direction: positive for a buy, negative for a sell."""
        return self.quantity if self.side is OrderSide.BUY else self.quantity.copy_negate()

    @property
    def reject_reason(self) -> str | None:
        """The reasons of a rejection joined in one line, or ``None``."""
        return "; ".join(self.reject_reasons) if self.reject_reasons else None

    def reject(self, reasons: list[str], *, by: str) -> None:
        """Mark the order REJECTED (by ``"gate"`` or ``"broker"``) with its reasons."""
        self.status = OrderStatus.REJECTED
        self.reject_reasons = list(reasons)
        self.rejected_by = by

    def summary(self) -> dict[str, Any]:
        """What an ``order_refused`` event and the logs say about this order."""
        data: dict[str, Any] = {
            "order_id": self.id,
            "symbol": self.symbol,
            "side": self.side.value,
            "quantity": self.quantity,
            "order_type": self.order_type.value,
        }
        if self.limit_price is not None:
            data["limit_price"] = self.limit_price
        return data


class OrderRefusedError(HaltgateError):
    """An order was refused by the gate before it reached the broker.

    ``reasons`` lists what blocked it (``"name: reason"`` per breaker); ``order`` is the
    refused :class:`Order` when there was one.
    """

    def __init__(self, reasons: list[str], order: Order | None = None) -> None:
        self.reasons = list(reasons)
        self.order = order
        super().__init__("order refused: " + ("; ".join(self.reasons) or "trading is blocked"))
