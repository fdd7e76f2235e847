"""haltgate: stop automated trading before it does damage.

Circuit breakers on drawdown, daily loss, order rate, error rate, concentration, volatility
and connectivity; an operator kill switch; a resilient breaker for broker API calls; state
that survives crashes; a tamper-evident audit log; one kill switch shared by many processes.
"""

from __future__ import annotations

import logging

from .audit import AuditEntry, AuditVerification
from .breakers import (
    BaseCircuitBreaker,
    CircuitBreakerState,
    CircuitBreakerType,
    ConnectionCircuitBreaker,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
    PositionConcentrationCircuitBreaker,
    VolatilityCircuitBreaker,
)
from .calendars import DailyRollCalendar, ExchangeCalendar, TradingCalendar, UTCDailyCalendar
from .callbreaker import CircuitBreaker, CircuitBreakerConfig, CircuitState, CircuitType
from .checks import OrderContext, OrderDecision
from .clock import Clock, ManualClock, SystemClock
from .engine import (
    Bar,
    BrokerAdapter,
    DataPortal,
    LiveTradingEngine,
    Order,
    OrderRefusedError,
    OrderSide,
    OrderStatus,
    OrderType,
    PaperBroker,
)
from .errors import (
    AuditModeError,
    AuthorizationError,
    CircuitOpenError,
    CircuitOpenException,
    ConfigError,
    HaltgateError,
    InvalidInputError,
    InvalidTypeError,
    StoreUnavailableError,
    UnknownBreakerError,
    UnknownCheckError,
)
from .events import BreakerEvent, EventKind
from .keys import hash_key, new_token, verify_key
from .manager import CircuitBreakerManager
from .store import MemoryStore, Store, open_store
from .trading import PortfolioProvider, TradingBreakerConfig, TradingCircuitBreakers

__version__ = "0.1.0"

# A library never configures logging; the NullHandler only keeps Python's last-resort
# handler from printing haltgate's records when the application configured nothing.
logging.getLogger("haltgate").addHandler(logging.NullHandler())

__all__ = [
    "AuditEntry",
    "AuditModeError",
    "AuditVerification",
    "AuthorizationError",
    "Bar",
    "BaseCircuitBreaker",
    "BreakerEvent",
    "BrokerAdapter",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerManager",
    "CircuitBreakerState",
    "CircuitBreakerType",
    "CircuitOpenError",
    "CircuitOpenException",
    "CircuitState",
    "CircuitType",
    "Clock",
    "ConfigError",
    "ConnectionCircuitBreaker",
    "DailyLossCircuitBreaker",
    "DailyRollCalendar",
    "DataPortal",
    "DrawdownCircuitBreaker",
    "ErrorRateCircuitBreaker",
    "EventKind",
    "ExchangeCalendar",
    "HaltgateError",
    "InvalidInputError",
    "InvalidTypeError",
    "LiveTradingEngine",
    "ManualCircuitBreaker",
    "ManualClock",
    "MemoryStore",
    "Order",
    "OrderContext",
    "OrderDecision",
    "OrderRateCircuitBreaker",
    "OrderRefusedError",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PaperBroker",
    "PortfolioProvider",
    "PositionConcentrationCircuitBreaker",
    "Store",
    "StoreUnavailableError",
    "SystemClock",
    "TradingBreakerConfig",
    "TradingCalendar",
    "TradingCircuitBreakers",
    "UTCDailyCalendar",
    "UnknownBreakerError",
    "UnknownCheckError",
    "VolatilityCircuitBreaker",
    "__version__",
    "hash_key",
    "new_token",
    "open_store",
    "verify_key",
]
