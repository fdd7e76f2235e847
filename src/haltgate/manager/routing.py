"""How the manager hands observations to its breakers: from their declared contracts only.

A plan per set of observation keywords is worked out once (rebuilt when breakers change):
which keywords each breaker takes, and which converter validates each value. Every value is
validated before any breaker sees any of them, so a refused observation changes nothing.
An explicit ``None`` is refused like any bad value (SPEC §2): a feed that lost its value
must never read as "no news".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..breakers.base import BaseCircuitBreaker
from ..breakers.contract import Converter
from ..errors import InvalidInputError, InvalidTypeError

__all__ = ["ObservationRouter", "Routed"]

Routed = list[tuple[BaseCircuitBreaker, dict[str, Any]]]
"""Each breaker that takes some of the observations, with its converted values."""

_Plan = tuple[tuple[BaseCircuitBreaker, tuple[tuple[str, Converter], ...]], ...]


class ObservationRouter:
    """Routes observation keywords to breakers by their contracts (immutable; the manager
    builds a new one whenever its breakers change)."""

    __slots__ = ("_breakers", "_known", "_plans")

    def __init__(self, breakers: Sequence[BaseCircuitBreaker]) -> None:
        self._breakers = tuple(breakers)
        self._known = frozenset(name for b in self._breakers for name in type(b).contract.observes)
        self._plans: dict[frozenset[str], _Plan] = {}

    def accepts(self, name: str) -> bool:
        """True if some breaker declares the observation ``name``."""
        return name in self._known

    def route(self, observations: Mapping[str, Any]) -> Routed:
        """Validate and convert every observation, then pair each breaker with the ones it
        takes. Raises (changing nothing) for an unknown keyword or a bad value."""
        keys = frozenset(observations)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plan_for(keys, observations)
            self._plans[keys] = plan
        converted: dict[tuple[str, Converter], Any] = {}
        routed: Routed = []
        for breaker, takes in plan:
            given: dict[str, Any] = {}
            for key, convert in takes:
                slot = (key, convert)
                if slot in converted:
                    given[key] = converted[slot]
                    continue
                value = observations[key]
                if value is None:
                    raise InvalidTypeError(
                        key, value, "an observation must be a value (leave it out to read state)"
                    )
                given[key] = converted[slot] = convert(value, key)
            routed.append((breaker, given))
        return routed

    def _plan_for(self, keys: frozenset[str], observations: Mapping[str, Any]) -> _Plan:
        unknown = sorted(keys - self._known)
        if unknown:
            name = unknown[0]
            raise InvalidInputError(
                name, observations[name], "no breaker in this manager accepts this observation"
            )
        plan = []
        for breaker in self._breakers:
            observes = type(breaker).contract.observes
            takes = tuple((key, observes[key]) for key in sorted(keys) if key in observes)
            plan.append((breaker, takes))
        return tuple(plan)
