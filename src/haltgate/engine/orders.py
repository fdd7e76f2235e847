"""Orders live in :mod:`haltgate.orders` (a core module); kept importable here."""

from ..orders import Order, OrderRefusedError, OrderSide, OrderStatus, OrderType

__all__ = ["Order", "OrderRefusedError", "OrderSide", "OrderStatus", "OrderType"]
