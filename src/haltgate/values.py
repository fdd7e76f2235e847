"""Validation and conversion of the numbers haltgate is given.

Money, ratios and percentages become :class:`~decimal.Decimal`. ``int`` and ``str`` are
parsed exactly; a ``float`` goes through its shortest ``repr`` so ``0.1`` becomes
``Decimal("0.1")``. ``bool``, ``None``, NaN, infinities and non-numeric strings are refused
with an :class:`~haltgate.errors.InvalidInputError` naming the parameter.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InvalidInputError, InvalidTypeError

__all__ = [
    "Number",
    "to_count",
    "to_decimal",
    "to_fraction",
    "to_seconds",
    "to_text",
]

Number = Decimal | int | float | str
"""What every public method that takes an amount, a ratio or a percentage accepts."""

_ZERO = Decimal(0)
_ONE = Decimal(1)
# No amount, ratio or duration haltgate handles comes near this; refusing larger values
# keeps every later Decimal operation (differences, squares, ratios) from overflowing
# the default context and escaping as a bare ``decimal.Overflow`` after state changed.
MAX_MAGNITUDE = Decimal("1e30")
# Below every float; only a Decimal or a string can be this small, and dividing by it
# could overflow the same way.
MIN_MAGNITUDE = Decimal("1e-400")


def to_decimal(value: Any, name: str) -> Decimal:
    """Convert ``value`` to a finite ``Decimal`` (magnitude below ``MAX_MAGNITUDE``) or raise
    naming ``name``."""
    kind = type(value)
    if kind is Decimal:
        result: Decimal = value
    elif kind is int:
        result = Decimal(value)
    elif kind is str:
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidInputError(name, value, "not a number") from None
    elif kind is float:
        if not math.isfinite(value):
            raise InvalidInputError(name, value, "must be a finite number")
        result = Decimal(repr(value))
    elif isinstance(value, bool) or value is None:
        raise InvalidTypeError(name, value, "must be a number (Decimal, int, str or float)")
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(int(value))
    elif isinstance(value, float):
        return to_decimal(float(value), name)
    else:
        raise InvalidTypeError(name, value, "must be a number (Decimal, int, str or float)")
    if not result.is_finite():
        raise InvalidInputError(name, value, "must be a finite number")
    magnitude = abs(result)
    if magnitude >= MAX_MAGNITUDE or (magnitude and magnitude < MIN_MAGNITUDE):
        raise InvalidInputError(
            name, value, "out of range (must be 0 or between 1E-400 and 1E+30 in magnitude)"
        )
    return result


def to_positive(value: Any, name: str) -> Decimal:
    """A finite Decimal strictly greater than zero."""
    result = to_decimal(value, name)
    if result <= _ZERO:
        raise InvalidInputError(name, value, "must be greater than 0")
    return result


def to_non_negative(value: Any, name: str) -> Decimal:
    """A finite Decimal greater than or equal to zero."""
    result = to_decimal(value, name)
    if result < _ZERO:
        raise InvalidInputError(name, value, "must not be negative")
    return result


def to_fraction(value: Any, name: str) -> Decimal:
    """A fraction in (0, 1]: ``Decimal("0.10")`` is 10 %."""
    result = to_decimal(value, name)
    if not _ZERO < result <= _ONE:
        raise InvalidInputError(
            name, value, "must be a fraction in (0, 1], e.g. Decimal('0.10') for 10 %"
        )
    return result


def to_count(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number ``>= minimum`` (and ``<= maximum``, by default below 1E+30); ``bool``
    and non-integral values are refused."""
    if isinstance(value, bool) or value is None:
        raise InvalidTypeError(name, value, "must be a whole number")
    if isinstance(value, int):
        result = int(value)
    elif isinstance(value, (Decimal, float, str)):
        number = to_decimal(value, name)
        if number != number.to_integral_value():
            raise InvalidInputError(name, value, "must be a whole number")
        result = int(number)
    else:
        raise InvalidTypeError(name, value, "must be a whole number")
    if result < minimum:
        raise InvalidInputError(name, value, f"must be at least {minimum}")
    if maximum is not None and result > maximum:
        raise InvalidInputError(name, value, f"must be at most {maximum}")
    if result >= MAX_MAGNITUDE:
        raise InvalidInputError(name, value, "out of range (must be below 1E+30)")
    return result


def to_seconds(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite duration in seconds, ``> 0`` (or ``>= 0`` with ``allow_zero``)."""
    number = to_decimal(value, name)
    if number < _ZERO or (number == _ZERO and not allow_zero):
        bound = "must not be negative" if allow_zero else "must be greater than 0"
        raise InvalidInputError(name, value, bound)
    return float(number)


def to_text(value: Any, name: str) -> str:
    """A non-empty string (surrounding white space is removed)."""
    if not isinstance(value, str):
        raise InvalidTypeError(name, value, "must be a non-empty string")
    text = value.strip()
    if not text:
        raise InvalidInputError(name, value, "must be a non-empty string")
    return text
