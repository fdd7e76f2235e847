"""A breaker's parameters as the config spells them.

One rule for which constructor arguments are a breaker's settings: the config accepts
exactly these keys in a ``[[breakers]]`` entry (:func:`parameter_names`), and the process
registry shows their values for a running breaker (:func:`parameters_of`), so ``haltgate
status`` describes a live process's breaker in the words of the config file that would
make it.
"""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import BaseCircuitBreaker

__all__ = ["NOT_PARAMETERS", "parameter_names", "parameters_of"]

#: Constructor arguments that are not settings: the name is the entry's own key, a clock
#: is injected, and an exception filter (``ignore``) is code, not a value.
NOT_PARAMETERS = frozenset({"self", "name", "clock", "ignore"})

# A value longer than this is cut (a user's breaker may hold anything in an attribute).
_MAX_TEXT = 200


_NAMES: dict[type, tuple[str, ...]] = {}


def parameter_names(cls: type) -> tuple[str, ...]:
    """The settings of breaker class ``cls``: its constructor's named arguments, less
    :data:`NOT_PARAMETERS`, in the constructor's order (found once per class; none for a
    class whose signature cannot be read)."""
    names = _NAMES.get(cls)
    if names is None:
        try:
            parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
        except (TypeError, ValueError):
            parameters = ()  # type: ignore[assignment]
        names = tuple(
            p.name
            for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in NOT_PARAMETERS
        )
        _NAMES[cls] = names
    return names


def parameters_of(breaker: BaseCircuitBreaker) -> dict[str, Any]:
    """``{parameter: value}`` of a running breaker, spelled as in a config file (Decimals
    as strings, a calendar as its spec, numbers as numbers). Parameters the breaker does
    not keep under their own name, left unset (``None``) or of a type with no config
    spelling are left out."""
    found: dict[str, Any] = {}
    for name in parameter_names(type(breaker)):
        value = _spelled(getattr(breaker, name, None))
        if value is not None:
            found[name] = value
    return found


def _spelled(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    describe = getattr(value, "describe", None)  # calendars: "utc", "XNYS", "roll:..."
    if callable(describe):
        try:
            return str(describe())[:_MAX_TEXT]
        except Exception:  # a user's object: leave it out rather than fail a heartbeat
            return None
    return None
