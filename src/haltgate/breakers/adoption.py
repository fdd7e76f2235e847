"""One rule for adopting a change that another process made to a breaker.

Both places that see other processes' changes — the stores' background watchers and the
admin server — hand the remote snapshot to :meth:`BaseCircuitBreaker.adopt_remote`, which
asks :func:`plan_adoption` what to do. The store has already checked that the snapshot is
newer than anything this process wrote itself and that it would not undo one of this
process's restrictive changes that is not durable yet.

The rule (SPEC §3):

* a remote halt or trip is adopted (restrictive: always safe). An adopted trip remembers
  the process it came from;
* an operator's reset (``change == "reset"``) is an order: it lifts what the remote
  snapshot no longer has (the halt, and the trip with this process's evidence);
* a self-clear (``change == "self_clear"``) is a local judgement of the process that has
  the evidence: it only lifts a trip this process imported from that same process, and
  never touches this process's own trip or evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AdoptionPlan", "plan_adoption"]


@dataclass(frozen=True, slots=True)
class AdoptionPlan:
    """What to apply of a remote snapshot (each flag independent)."""

    adopt_halt: bool = False
    lift_halt: bool = False
    adopt_condition: bool = False
    lift_condition: bool = False
    #: The lift is an operator's reset: drop this process's evidence too.
    drop_evidence: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to apply."""
        return not (
            self.adopt_halt or self.lift_halt or self.adopt_condition or self.lift_condition
        )


def plan_adoption(
    *,
    halted: bool,
    condition_origin: str | None,
    remote: Mapping[str, Any],
    remote_halt: object | None,
    remote_condition: object | None,
) -> AdoptionPlan:
    """Decide what a remote snapshot changes here.

    ``halted``: this breaker is manually halted. ``condition_origin``: the process that
    made this breaker's current trip (``None`` when not tripped).
    """
    change = remote.get("change")
    origin = remote.get("origin")
    operator_reset = change == "reset"
    adopt_halt = remote_halt is not None and not halted
    lift_halt = remote_halt is None and halted and operator_reset
    adopt_condition = remote_condition is not None and condition_origin is None
    lift_condition = False
    if remote_condition is None and condition_origin is not None:
        if operator_reset:
            lift_condition = True
        elif change == "self_clear" and origin is not None:
            # Only the process that has the evidence may clear by itself what it caused.
            lift_condition = condition_origin == origin
    return AdoptionPlan(
        adopt_halt=adopt_halt,
        lift_halt=lift_halt,
        adopt_condition=adopt_condition,
        lift_condition=lift_condition,
        drop_evidence=operator_reset and (lift_condition or lift_halt),
    )
