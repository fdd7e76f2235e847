"""What a breaker declares about itself, so the manager never has to guess.

Every breaker class carries a :class:`BreakerContract`: which observations its
``can_trade`` takes (and how each value is converted), whether it admits orders (an order
window) or counts errors, and whether time alone can trip or clear it. The manager routes
observations, finds its order windows and error counters, and keeps its fast path from
these declarations only.

haltgate's own breakers declare their contract. A user's subclass gets one derived once,
when the class is created:

* a subclass that overrides ``can_trade`` is *asked* on every manager check (its answer
  can change without telling the manager), and the observations it takes are the named
  parameters of its ``can_trade`` plus any it declares in ``observes = ("returns", ...)``;
  a ``**kwargs`` parameter accepts nothing that is not declared, so a typo such as
  ``current_portfolio_val=`` is refused instead of passing silently;
* a subclass that does not override ``can_trade`` inherits its parent's contract.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final

from ..errors import InvalidTypeError

__all__ = ["UNSET", "BreakerContract", "Converter", "derive_contract", "keep_value"]

Converter = Callable[[Any, str], Any]
"""``converter(value, parameter_name)``: the validated value, or a typed error."""


class _Unset:
    """The default of an observation that was not given (``None`` is a bad value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final[Any] = _Unset()
"""Marks an observation keyword that was left out (a state read)."""


def keep_value(value: Any, name: str) -> Any:
    """The converter of an observation haltgate knows nothing about: passed as given."""
    return value


@dataclass(frozen=True, slots=True)
class BreakerContract:
    """The declared behaviour of one breaker class (see the module docstring)."""

    #: Observation keyword -> converter (validates and converts the value once).
    observes: Mapping[str, Converter] = field(default_factory=dict)
    #: Observations ``can_trade`` cannot be called without.
    requires: frozenset[str] = frozenset()
    #: Has an order window: the manager's ``record_order`` admits through it.
    admits_orders: bool = False
    #: Counts errors: the manager's ``record_error`` reaches it.
    counts_errors: bool = False
    #: Time alone can trip it while NORMAL; ``next_deadline()`` says when.
    trips_by_time: bool = False
    #: Time alone can clear a trip (a window emptying, a cooldown, a new session).
    clears_by_time: bool = False
    #: Its ``can_trade`` is user code: the manager calls it on every check.
    asked: bool = False
    #: Only a named operator's reset clears it: ``reset(operator=None)`` is refused (and the
    #: manager's ``reset_all(operator=None)`` refuses before resetting anything).
    reset_needs_operator: bool = False
    #: Its trip stops every order, the position-reducing ones too (like a manual halt):
    #: ``admit_order(reduce_only=True)`` is refused while it is tripped.
    halts_all: bool = False
    #: Has an exact batch path, ``feed_batch(times, values, start, stop)``: many
    #: ``current_portfolio_value`` observations judged at once by the same predicate as
    #: ``can_trade`` (replay uses it; a breaker without one is fed row by row).
    batch: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "observes", MappingProxyType(dict(self.observes)))


def derive_contract(cls: type, inherited: BreakerContract) -> BreakerContract:
    """The contract of a user subclass ``cls`` that overrides ``can_trade``."""
    declared = cls.__dict__.get("observes", ())
    if isinstance(declared, str) or not all(isinstance(n, str) for n in declared):
        raise InvalidTypeError(
            f"{cls.__name__}.observes", declared, "must be a tuple of observation names"
        )
    observes: dict[str, Converter] = dict(inherited.observes)
    requires: set[str] = set()
    try:
        signature = inspect.signature(cls.__dict__["can_trade"])
    except (TypeError, ValueError):  # pragma: no cover - not a plain function
        signature = None
    if signature is not None:
        for param in list(signature.parameters.values())[1:]:
            if param.kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY,
            ):
                observes.setdefault(param.name, keep_value)
                if param.default is inspect.Parameter.empty:
                    requires.add(param.name)
    for name in declared:
        observes.setdefault(name, keep_value)
    # Its own can_trade decides now: an inherited batch path would bypass it.
    return replace(
        inherited, observes=observes, requires=frozenset(requires), asked=True, batch=False
    )
