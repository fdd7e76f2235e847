"""What a replay found: events, halted periods, figures and the series for the plot."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..breakers import (
    CircuitBreakerState,
)
from ..events import BreakerEvent, EventKind

_NORMAL = CircuitBreakerState.NORMAL


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """A trip, halt or reset seen during the replay."""

    timestamp: datetime
    breaker: str
    kind: str
    reason: str | None
    #: Who acted (a halt or reset by an operator; ``"replay"`` for a simulated
    #: acknowledgement), ``None`` for a breaker's own trip or clear. Not in the JSON form.
    operator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"timestamp", "breaker", "kind", "reason"}``."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "breaker": self.breaker,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclass
class ReplayResult:
    """Events and figures of one replay (and the series, for the plot)."""

    events: list[ReplayEvent] = field(default_factory=list)
    rows: int = 0
    start: datetime | None = None
    end: datetime | None = None
    orders_admitted: int = 0
    orders_refused: int = 0
    errors_recorded: int = 0
    final_states: dict[str, str] = field(default_factory=dict)
    halted_periods: list[tuple[datetime, datetime]] = field(default_factory=list)
    times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))
    peaks: list[tuple[float, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts, halted time and final states."""
        trips: dict[str, int] = {}
        resets = 0
        for event in self.events:
            if event.kind in ("tripped", "halted"):
                trips[event.breaker] = trips.get(event.breaker, 0) + 1
            elif event.kind == "reset":
                resets += 1
        span = (self.end - self.start).total_seconds() if self.start and self.end else 0.0
        halted = sum((b - a).total_seconds() for a, b in self.halted_periods)
        return {
            "rows": self.rows,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "trips": sum(trips.values()),
            "trips_by_breaker": trips,
            "resets": resets,
            "halted_seconds": halted,
            "halted_fraction": (halted / span) if span > 0 else 0.0,
            "orders_admitted": self.orders_admitted,
            "orders_refused": self.orders_refused,
            "errors_recorded": self.errors_recorded,
            "final_states": self.final_states,
            "trading_allowed_at_end": all(
                s not in ("TRIPPED", "MANUALLY_HALTED") for s in self.final_states.values()
            ),
        }

    def to_json(self) -> dict[str, Any]:
        """``{"events": [...], "summary": {...}}``."""
        return {"events": [e.to_dict() for e in self.events], "summary": self.summary()}


class _Collector:
    """Turns breaker events into replay events and halted periods."""

    def __init__(self, result: ReplayResult) -> None:
        self.result = result
        self.blocking: set[str] = set()
        self.halted_since: datetime | None = None

    def __call__(self, event: BreakerEvent) -> None:
        kind = event.kind
        if kind is EventKind.ORDER_REFUSED or kind is EventKind.WARNING:
            return
        if kind is EventKind.RESET and event.state is CircuitBreakerState.RESETTING:
            return
        self.result.events.append(
            ReplayEvent(
                event.timestamp, event.breaker_name, str(kind), event.reason, event.operator
            )
        )
        if event.state in (CircuitBreakerState.TRIPPED, CircuitBreakerState.MANUALLY_HALTED):
            if not self.blocking:
                self.halted_since = event.timestamp
            self.blocking.add(event.breaker_name)
        elif event.state is _NORMAL and event.breaker_name in self.blocking:
            self.blocking.discard(event.breaker_name)
            if not self.blocking and self.halted_since is not None:
                self.result.halted_periods.append((self.halted_since, event.timestamp))
                self.halted_since = None
