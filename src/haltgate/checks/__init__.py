"""Pre-trade order checks (SPEC §10): one file per check over :class:`OrderCheck`, asked
by the manager (:meth:`~haltgate.CircuitBreakerManager.admit_order`).

Breakers judge the account; order checks judge each order before the broker sees it:
fat-finger size and value limits, price collars, position and exposure limits, duplicate
orders, message throttles, a latched repeated-execution throttle and a restricted list.

======================  ==========================================
check                   deny code
======================  ==========================================
MaxOrderQuantity        ``max_order_quantity``
MaxOrderNotional        ``max_order_notional``
PriceCollar             ``price_collar``, ``stale_reference_price``
MaxPosition             ``max_position``
MaxGrossExposure        ``max_gross_exposure``
MaxOpenOrders           ``max_open_orders``
DuplicateOrder          ``duplicate_order``
MessageThrottle         ``message_throttle``
ExecutionThrottle       ``execution_throttle`` (trips the latched breaker)
RestrictedSymbols       ``restricted_symbol``
======================  ==========================================
"""

from .base import OrderCheck, WindowSpec
from .collar import PriceCollar
from .context import OrderContext, OrderDecision
from .duplicate import DuplicateOrder
from .execution_throttle import ExecutionThrottle
from .exposure import position_after, reduces_position, side_exposure
from .gross_exposure import MaxGrossExposure
from .message_throttle import MESSAGE_KINDS, MessageThrottle
from .notional import MaxOrderNotional
from .open_orders import MaxOpenOrders
from .position import MaxPosition
from .quantity import MaxOrderQuantity
from .restricted import RestrictedSymbols

__all__ = [
    "CHECK_TYPES",
    "DENY_CODES",
    "MESSAGE_KINDS",
    "DuplicateOrder",
    "ExecutionThrottle",
    "MaxGrossExposure",
    "MaxOpenOrders",
    "MaxOrderNotional",
    "MaxOrderQuantity",
    "MaxPosition",
    "MessageThrottle",
    "OrderCheck",
    "OrderContext",
    "OrderDecision",
    "PriceCollar",
    "RestrictedSymbols",
    "WindowSpec",
    "position_after",
    "reduces_position",
    "side_exposure",
]

CHECK_TYPES: dict[str, type[OrderCheck]] = {
    cls.name: cls
    for cls in (
        MaxOrderQuantity,
        MaxOrderNotional,
        PriceCollar,
        MaxPosition,
        MaxGrossExposure,
        MaxOpenOrders,
        DuplicateOrder,
        MessageThrottle,
        ExecutionThrottle,
        RestrictedSymbols,
    )
}
"""Each check class by its name (what a config file's ``[[checks]] type = ...`` names)."""

DENY_CODES: tuple[str, ...] = (*CHECK_TYPES, "stale_reference_price")
"""Every deny code of SPEC §10 (the label values of a per-code refusal counter)."""
