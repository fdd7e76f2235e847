"""A breaker's stored form: its two layers (halt, condition) as JSON, and back.

One snapshot format for every store and every reader (a restart, another process, the
admin server, the CLI): ``state`` (the view: MANUALLY_HALTED, TRIPPED or NORMAL),
``trip`` (what is shown: the halt, else the trip), ``condition`` (the breaker's own trip
underneath a halt), ``change`` (what the last change was: ``trip``, ``halt``, ``reset``,
``self_clear``), ``by`` (the operator who made that change; ``None`` for a breaker's own
trip or self-clear), ``origin`` (the store instance, i.e. the process, that wrote it) and
``data`` (breaker-specific progress), all through :mod:`haltgate.codec`. Snapshots
written before ``by`` existed read as ``by = None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .. import codec
from ..events import BreakerEvent
from .state import CircuitBreakerState

if TYPE_CHECKING:
    from .base import BaseCircuitBreaker

__all__ = [
    "LOCAL_ORIGIN",
    "BreakerSink",
    "TripInfo",
    "build_snapshot",
    "changed_by",
    "layers_of",
    "view_of",
]

#: The origin of trips made by a breaker with no store (there is no other process).
LOCAL_ORIGIN = "local"

NORMAL = CircuitBreakerState.NORMAL
TRIPPED = CircuitBreakerState.TRIPPED
HALTED = CircuitBreakerState.MANUALLY_HALTED


class BreakerSink(Protocol):
    """Where a breaker makes its state durable (implemented by the stores)."""

    origin: str

    def save(
        self,
        breaker: BaseCircuitBreaker,
        events: list[BreakerEvent],
        snapshot: Mapping[str, Any] | None = None,
    ) -> None:
        """Write ``snapshot`` (default: the breaker's current one) and audit ``events``
        atomically, or raise :class:`~haltgate.StoreUnavailableError`."""
        ...

    def save_soft(self, breaker: BaseCircuitBreaker) -> None:
        """Write non-audited progress (peak window, baseline); never raises."""
        ...

    def request_refresh(self, breaker: BaseCircuitBreaker) -> None:
        """A read saw that time may have changed ``breaker``: run its refresh step soon
        (never on the reading thread when that would mean I/O)."""
        ...


class TripInfo:
    """Why a breaker is tripped or halted: reason, details, operator, when, and which
    process made it (``origin``; ``restored`` when it was read back at start-up)."""

    __slots__ = ("at", "details", "operator", "origin", "reason", "restored")

    def __init__(
        self,
        reason: str,
        details: dict[str, Any],
        operator: str | None,
        at: datetime,
        origin: str = LOCAL_ORIGIN,
        restored: bool = False,
    ) -> None:
        self.reason = reason
        self.details = details
        self.operator = operator
        self.at = at
        self.origin = origin
        self.restored = restored

    def to_json(self) -> dict[str, Any]:
        """The stored form (see :mod:`haltgate.codec`)."""
        return {
            "reason": self.reason,
            "details": codec.encode(self.details),
            "operator": self.operator,
            "at": self.at.isoformat(),
            "origin": self.origin,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, restored: bool = False) -> TripInfo:
        """Read back what :meth:`to_json` wrote (older snapshots have no origin)."""
        details = codec.decode(data.get("details") or {})
        return cls(
            str(data.get("reason") or ""),
            dict(details) if isinstance(details, dict) else {},
            data.get("operator"),
            datetime.fromisoformat(data["at"]),
            str(data.get("origin") or "unknown"),
            restored,
        )


def view_of(halt: TripInfo | None, condition: TripInfo | None) -> CircuitBreakerState:
    """The state a reader sees of the two layers."""
    return HALTED if halt is not None else TRIPPED if condition is not None else NORMAL


def build_snapshot(
    *,
    name: str,
    breaker_type: str,
    halt: TripInfo | None,
    condition: TripInfo | None,
    since: datetime | None,
    change: str | None,
    origin: str,
    data: Mapping[str, Any],
    by: str | None = None,
) -> dict[str, Any]:
    """The stored form of a breaker with these layers; ``by`` is who made ``change``."""
    shown = halt or condition
    return {
        "name": name,
        "type": breaker_type,
        "state": view_of(halt, condition).value,
        "since": since.isoformat() if since else None,
        "trip": None if shown is None else shown.to_json(),
        # The breaker's own trip underneath a halt (the halt is under "trip").
        "condition": None if halt is None or condition is None else condition.to_json(),
        "change": change,
        "by": by,
        "origin": origin,
        "data": codec.encode(dict(data)),
    }


def changed_by(snapshot: Mapping[str, Any]) -> str | None:
    """The operator of a stored snapshot's last change (``None`` in older snapshots)."""
    by = snapshot.get("by")
    return by if isinstance(by, str) and by else None


def layers_of(
    snapshot: Mapping[str, Any], *, restored: bool
) -> tuple[TripInfo | None, TripInfo | None]:
    """``(halt, condition)`` of a stored snapshot (any version: older ones have no
    ``condition`` and no origins)."""
    state = CircuitBreakerState(snapshot.get("state") or "NORMAL")
    trip = snapshot.get("trip")
    shown = TripInfo.from_json(trip, restored=restored) if trip else None
    if state is HALTED:
        below = snapshot.get("condition")
        condition = TripInfo.from_json(below, restored=restored) if below else None
        return shown, condition
    if state is TRIPPED:
        return None, shown
    return None, None
