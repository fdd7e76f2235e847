"""The manager's status reads: pure, never written to a store."""

from __future__ import annotations

from typing import Any

from ..breakers.base import BaseCircuitBreaker
from ..breakers.state import BLOCKING_STATES
from .state import ManagerState

__all__ = ["StatusReads"]


class StatusReads(ManagerState):
    """What blocks trading and why, per breaker."""

    def any_tripped(self) -> bool:
        """True if any breaker is TRIPPED or MANUALLY_HALTED."""
        return any(b.is_tripped for b in self._ordered)

    def get_tripped(self) -> list[BaseCircuitBreaker]:
        """The breakers that are TRIPPED or MANUALLY_HALTED."""
        return [b for b in self._ordered if b.is_tripped]

    def get_trip_reasons(self) -> dict[str, str]:
        """``{name: reason}`` for every tripped or halted breaker."""
        reasons: dict[str, str] = {}
        for breaker in self._ordered:
            reason = breaker.get_trip_reason()
            if reason is not None:
                reasons[breaker.name] = reason
        return reasons

    def get_blocking_reasons(self) -> list[str]:
        """Why trading is refused now: ``"name: reason"`` per tripped breaker, and full
        order windows."""
        reasons = [f"{name}: {why}" for name, why in self.get_trip_reasons().items()]
        store_reason = self._store_blocking()
        if store_reason is not None:
            reasons.insert(0, store_reason)
        for breaker in self._rate_breakers:
            if not breaker.is_tripped and breaker._blocks():
                reasons.append(f"{breaker.name}: order window full")
        return reasons

    def get_status(self) -> dict[str, str]:
        """``{name: state value}``, e.g. ``{'drawdown': 'NORMAL', 'daily_loss': 'TRIPPED'}``."""
        return {b.name: b.state.value for b in self._ordered}

    def get_details(self) -> list[dict[str, Any]]:
        """Per breaker: name, type, state, reason, since and operator (for status views;
        the operator of the last change, so a reset shows who reset it)."""
        rows = []
        for breaker in self._ordered:
            state = breaker.state
            info = breaker._trip_info if state in BLOCKING_STATES else None
            rows.append(
                {
                    "name": breaker.name,
                    "type": breaker.breaker_type.value,
                    "state": state.value,
                    "reason": None if info is None else info.reason,
                    "since": breaker.since,
                    # After a reset no trip is left: the operator who reset it is shown.
                    "operator": breaker._last_by if info is None else info.operator,
                }
            )
        return rows
