"""The order gate lives in :mod:`haltgate.gate` (a core module); kept importable here."""

from ..gate import Admitter, OrderGate, guard

__all__ = ["Admitter", "OrderGate", "guard"]
