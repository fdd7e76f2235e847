"""Exceptions raised by haltgate.

Every exception haltgate raises on purpose derives from :class:`HaltgateError`, so callers
can catch the library's refusals in one place while the built-in bases (``ValueError``,
``TypeError``) keep working for code that does not know haltgate.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditModeError",
    "AuthorizationError",
    "CircuitOpenError",
    "CircuitOpenException",
    "ConfigError",
    "HaltgateError",
    "InvalidInputError",
    "InvalidTypeError",
    "StoreUnavailableError",
    "UnknownBreakerError",
    "UnknownCheckError",
]


class HaltgateError(Exception):
    """Base class of every error haltgate raises on purpose."""


class InvalidInputError(HaltgateError, ValueError):
    """A value was refused. ``parameter`` names it and ``value`` holds what was given.

    A refused input never changes any state.
    """

    def __init__(self, parameter: str, value: Any, problem: str) -> None:
        self.parameter = parameter
        self.value = value
        self.problem = problem
        super().__init__(f"{parameter}={value!r}: {problem}")


class InvalidTypeError(InvalidInputError, TypeError):
    """A value of the wrong type was refused (also a ``TypeError``)."""


class UnknownBreakerError(InvalidInputError, KeyError):
    """No breaker has the given name. Also a ``KeyError`` (the manager's earlier contract)."""

    def __str__(self) -> str:
        # KeyError would show the message quoted like a dict key.
        return Exception.__str__(self)


class UnknownCheckError(InvalidInputError, KeyError):
    """No order check has the given name (also a ``KeyError``, like a missing breaker)."""

    def __str__(self) -> str:
        return Exception.__str__(self)


class CircuitOpenException(HaltgateError):
    """A call was refused because the call breaker is not admitting calls.

    ``CircuitOpenException(name, state, retry_after)``: ``retry_after`` is the number of
    seconds after which a call may be admitted again, or ``None`` when only an operator can
    re-admit calls (forced open).
    """

    # No Python-level __init__: refusals are raised on a hot path, and the attributes and
    # the message are derived from ``args`` only when someone looks at them.

    @property
    def name(self) -> str:
        """The refusing breaker's name."""
        return str(self.args[0])

    @property
    def state(self) -> Any:
        """The breaker's state when it refused (a :class:`~haltgate.CircuitState`)."""
        return self.args[1]

    @property
    def retry_after(self) -> float | None:
        """Seconds until a call may be admitted again; ``None`` when only an operator can."""
        value = self.args[2]
        return None if value is None else float(value)

    def __str__(self) -> str:
        if len(self.args) != 3:
            return super().__str__()
        state = self.args[1]
        state_text = getattr(state, "value", state)
        retry_after = self.args[2]
        when = "" if retry_after is None else f"; retry after {retry_after:.3f}s"
        return f"circuit {self.args[0]!r} is {state_text}{when}"


CircuitOpenError = CircuitOpenException


class AuthorizationError(HaltgateError):
    """An operator action was refused: wrong key, no key configured, or locked out."""


class StoreUnavailableError(HaltgateError):
    """The state store could not be reached within its timeout."""


class AuditModeError(StoreUnavailableError):
    """This writer's audit mode (keyed or not) is not the chain's: appending would break the
    chain, so nothing is written (a trading process then fails closed)."""


class ConfigError(HaltgateError, ValueError):
    """A configuration file or value is invalid; ``path`` is the dotted path of the field."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)
