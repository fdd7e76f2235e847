"""The facade's trip and warning callbacks: the two forms a callback may take.

A callback takes the :class:`~haltgate.BreakerEvent` (``cb(event)``) or the original
component's two arguments (``cb(breaker_name, reason)``). Which one is decided once, from
its signature, when it is registered; a callback that fits neither is refused then, because
an alert hook that cannot be called would otherwise fail only at the moment it is needed,
inside listener isolation, where nobody may be looking.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidTypeError
from ..events import BreakerEvent, Listener

__all__ = ["adapt_callback"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_FORMS = "must take (event) or (breaker_name, reason)"


@dataclass(frozen=True, slots=True)
class _NameReasonCallback:
    """Calls a ``cb(breaker_name, reason)`` callback with an event's two fields.

    Equal to another wrapper of the same callback, so registering it twice still has no
    effect (``ListenerSet`` compares listeners)."""

    callback: Callable[[str, str | None], Any]

    def __call__(self, event: BreakerEvent) -> Any:
        # The result is passed on so that an async callback's coroutine is scheduled.
        return self.callback(event.breaker_name, event.reason)


def _required_and_most(signature: inspect.Signature) -> tuple[int, float, list[str]]:
    """Required positionals, most positionals accepted (inf with ``*args``), and required
    keyword-only names."""
    required = 0
    most: float = 0
    keyword_only: list[str] = []
    for param in signature.parameters.values():
        if param.kind in _POSITIONAL:
            most += 1
            if param.default is inspect.Parameter.empty:
                required += 1
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            most = float("inf")
        elif (
            param.kind is inspect.Parameter.KEYWORD_ONLY
            and param.default is inspect.Parameter.empty
        ):
            keyword_only.append(param.name)
    return required, most, keyword_only


def adapt_callback(callback: Any, parameter: str = "callback") -> Listener:
    """The listener that calls ``callback`` in its own form, or a refusal.

    Two required positional parameters: the ``(breaker_name, reason)`` form. One, or none
    but more accepted (defaults, ``*args``): the event form. Anything else (not callable, no
    positional parameter accepted, three or more required, a required keyword-only one) is
    refused with :class:`~haltgate.InvalidTypeError` (a ``TypeError``), as is a callable
    whose signature cannot be inspected (some builtins, e.g. ``max``): haltgate cannot be
    sure it takes either form, and an alert hook must not be a guess; wrap it in a
    ``lambda event: ...``.
    """
    if not callable(callback):
        raise InvalidTypeError(parameter, callback, f"must be callable; it {_FORMS}")
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            parameter,
            callback,
            f"its signature cannot be inspected; it {_FORMS} (wrap it in a function)",
        ) from None
    required, most, keyword_only = _required_and_most(signature)
    if keyword_only:
        raise InvalidTypeError(
            parameter,
            callback,
            f"requires keyword-only parameter(s) {', '.join(keyword_only)}; it {_FORMS}",
        )
    if required == 2:
        return _NameReasonCallback(callback)
    if required <= 1 <= most:
        return callback  # type: ignore[no-any-return]
    raise InvalidTypeError(parameter, callback, f"has signature {signature}; it {_FORMS}")
