"""Trading-loop integration: the order gate, brokers, data and the live engine (stdlib only)."""

from __future__ import annotations

from ..gate import OrderGate, guard
from ..orders import Order, OrderRefusedError, OrderSide, OrderStatus, OrderType
from .data import Bar, DataPortal, parse_timestamp
from .live import ON_TRIP_MODES, BarClock, LiveTradingEngine, TradingContext
from .paper import Fill, PaperBroker
from .protocols import BrokerAdapter, Strategy

__all__ = [
    "ON_TRIP_MODES",
    "Bar",
    "BarClock",
    "BrokerAdapter",
    "DataPortal",
    "Fill",
    "LiveTradingEngine",
    "Order",
    "OrderGate",
    "OrderRefusedError",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PaperBroker",
    "Strategy",
    "TradingContext",
    "guard",
    "parse_timestamp",
]
