"""Value conversion and validation shared by every public method."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from haltgate import HaltgateError, InvalidInputError, InvalidTypeError
from haltgate.values import to_count, to_decimal, to_fraction, to_seconds, to_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.10"), Decimal("0.10")),
        (5, Decimal(5)),
        ("  12.50 ", Decimal("12.50")),
        (0.1, Decimal("0.1")),  # shortest repr, not 0.1000000000000000055...
        (1e-7, Decimal("1E-7")),
        (-3.25, Decimal("-3.25")),
        ("-0", Decimal("-0")),
        (10**29, Decimal(10**29)),
    ],
)
def test_to_decimal_accepts(value: Any, expected: Decimal) -> None:
    result = to_decimal(value, "amount")
    assert type(result) is Decimal
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        (True, InvalidTypeError),
        (False, InvalidTypeError),
        (None, InvalidTypeError),
        ([1], InvalidTypeError),
        (object(), InvalidTypeError),
        (math.nan, InvalidInputError),
        (math.inf, InvalidInputError),
        (-math.inf, InvalidInputError),
        ("nan", InvalidInputError),
        ("sNaN", InvalidInputError),
        ("Infinity", InvalidInputError),
        ("-inf", InvalidInputError),
        (Decimal("NaN"), InvalidInputError),
        (Decimal("-Infinity"), InvalidInputError),
        ("abc", InvalidInputError),
        ("", InvalidInputError),
        ("1,000", InvalidInputError),
        ("1e30", InvalidInputError),  # beyond any amount: would overflow later arithmetic
        (10**30, InvalidInputError),
        ("1e999999", InvalidInputError),
        ("1e-401", InvalidInputError),
    ],
)
def test_to_decimal_refuses(value: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc) as info:
        to_decimal(value, "amount")
    err = info.value
    assert isinstance(err, HaltgateError)
    assert isinstance(err, ValueError)
    assert str(err).startswith("amount=")
    assert err.parameter == "amount"  # type: ignore[attr-defined]
    if exc is InvalidTypeError:
        assert isinstance(err, TypeError)


def test_to_fraction_range() -> None:
    assert to_fraction("1", "pct") == 1
    assert to_fraction("0.0001", "pct") == Decimal("0.0001")
    for bad in (0, "-0.1", "1.0001", 10):
        with pytest.raises(InvalidInputError, match=r"pct=.*fraction in \(0, 1\]"):
            to_fraction(bad, "pct")


def test_to_count() -> None:
    assert to_count(3, "n") == 3
    assert to_count("4", "n") == 4
    assert to_count(5.0, "n") == 5
    assert to_count(Decimal("6"), "n") == 6
    assert to_count(2, "n", minimum=2) == 2
    for bad in (0, -1, "1.5", 2.5, True, None, "x", math.nan):
        with pytest.raises(HaltgateError, match=r"^n="):
            to_count(bad, "n")
    with pytest.raises(InvalidInputError, match="at least 2"):
        to_count(1, "n", minimum=2)


def test_to_seconds() -> None:
    assert to_seconds(60, "w") == 60.0
    assert to_seconds("0.5", "w") == 0.5
    assert to_seconds(0, "w", allow_zero=True) == 0.0
    for bad in (0, -1, math.inf, "1e400", True, None):
        with pytest.raises(HaltgateError, match=r"^w="):
            to_seconds(bad, "w")
    with pytest.raises(InvalidInputError, match="must not be negative"):
        to_seconds(-0.1, "w", allow_zero=True)


def test_to_text() -> None:
    assert to_text("  alice ", "operator") == "alice"
    for bad in ("", "   ", None, 3, b"x"):
        with pytest.raises(HaltgateError, match=r"^operator="):
            to_text(bad, "operator")
