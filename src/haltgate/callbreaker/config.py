"""CircuitBreakerConfig: every setting of the call breaker, validated once when it is made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..filters import FilterSpec, normalize_filter
from ..values import Number, to_count, to_decimal, to_fraction, to_seconds

__all__ = ["CircuitBreakerConfig", "ExceptionFilter", "ResultFilter"]

ExceptionFilter = FilterSpec
"""Which exceptions a setting selects: one type, several types, or a predicate."""

ResultFilter = Callable[[Any], bool]
"""A predicate on a protected function's return value; True marks the call a failure."""

# A constant, not -Decimal(100): unary minus rounds in the caller's decimal context.
_MINUS_HUNDRED = Decimal(-100)


def _loss_pct(value: Any, name: str) -> Decimal:
    """A percentage written as a loss: negative, not below -100 (``Decimal("-2.0")``)."""
    result = to_decimal(value, name)
    if not _MINUS_HUNDRED <= result < 0:
        raise InvalidInputError(
            name, value, "must be a negative percentage in [-100, 0), e.g. Decimal('-2.0')"
        )
    return result


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """Settings of a :class:`~haltgate.CircuitBreaker` (the README's fields and defaults).

    Every value is checked when the config is made; a bad one raises
    :class:`~haltgate.InvalidInputError` (a ``ValueError``/``TypeError``) naming the field.
    The config is frozen: derive a changed copy with :func:`dataclasses.replace`.

    Seconds accept ``int``, ``float``, ``Decimal`` or ``str`` and are stored as ``float``;
    ``failure_rate_threshold`` and the trading fields are stored as ``Decimal``.
    """

    # Failure thresholds
    failure_threshold: int = 5
    """Consecutive failures that open the circuit."""
    failure_rate_threshold: Number = Decimal("0.5")
    """Failure rate in (0, 1] over ``failure_window_seconds`` that opens the circuit."""
    success_threshold: int = 3
    """Successful probes in HALF_OPEN that close the circuit."""

    # Time windows
    failure_window_seconds: float = 60
    """Window over which the failure rate is measured."""
    open_timeout_seconds: float = 60
    """How long the circuit first stays OPEN before it probes."""
    half_open_timeout_seconds: float = 30
    """A probe still running after this long re-opens the circuit."""

    # Recovery behaviour
    exponential_backoff: bool = True
    """Multiply the open timeout by ``backoff_multiplier`` on each re-open from HALF_OPEN."""
    max_backoff_seconds: float = 300
    """Cap of the open timeout under exponential backoff."""
    backoff_multiplier: float = 2.0
    """Factor (>= 1) applied to the open timeout on each re-open from HALF_OPEN."""

    # Trading thresholds (carried for the README's trading setups; the call breaker
    # itself does not read them)
    daily_loss_limit_pct: Number = Decimal("-2.0")
    """Daily loss limit in percent, losses negative."""
    max_drawdown_pct: Number = Decimal("-10.0")
    """Drawdown limit in percent, losses negative."""
    position_limit: Number = Decimal("0.20")
    """Largest single position as a fraction of the portfolio, in (0, 1]."""

    # Beyond the README
    half_open_max_calls: int | None = None
    """Probe calls admitted at once in HALF_OPEN; ``None`` means ``success_threshold``."""
    minimum_calls: int = 10
    """Calls that must have finished in the window before the failure rate can open it."""
    slow_call_seconds: float | None = None
    """A call that takes longer than this counts as a failure (``None``: never)."""
    record_exceptions: ExceptionFilter = (Exception,)
    """Exceptions that count as failures; any other exception is an ignored outcome."""
    ignore_exceptions: ExceptionFilter = ()
    """Exceptions that count neither as success nor failure (checked first)."""
    failure_result: ResultFilter | None = None
    """Predicate on a return value that marks the call a failure (e.g. an HTTP 5xx)."""

    def __post_init__(self) -> None:
        # Validate into locals first so a refused value leaves nothing half-set.
        values: dict[str, Any] = {
            "failure_threshold": to_count(self.failure_threshold, "failure_threshold"),
            "failure_rate_threshold": to_fraction(
                self.failure_rate_threshold, "failure_rate_threshold"
            ),
            "success_threshold": to_count(self.success_threshold, "success_threshold"),
            "failure_window_seconds": to_seconds(
                self.failure_window_seconds, "failure_window_seconds"
            ),
            "open_timeout_seconds": to_seconds(self.open_timeout_seconds, "open_timeout_seconds"),
            "half_open_timeout_seconds": to_seconds(
                self.half_open_timeout_seconds, "half_open_timeout_seconds"
            ),
            "max_backoff_seconds": to_seconds(self.max_backoff_seconds, "max_backoff_seconds"),
            "daily_loss_limit_pct": _loss_pct(self.daily_loss_limit_pct, "daily_loss_limit_pct"),
            "max_drawdown_pct": _loss_pct(self.max_drawdown_pct, "max_drawdown_pct"),
            "position_limit": to_fraction(self.position_limit, "position_limit"),
            "minimum_calls": to_count(self.minimum_calls, "minimum_calls"),
            "record_exceptions": normalize_filter(
                self.record_exceptions, "record_exceptions", allow_empty=True
            ),
            "ignore_exceptions": normalize_filter(
                self.ignore_exceptions, "ignore_exceptions", allow_empty=True
            ),
        }
        if not isinstance(self.exponential_backoff, bool):
            raise InvalidTypeError(
                "exponential_backoff", self.exponential_backoff, "must be True or False"
            )
        multiplier = to_decimal(self.backoff_multiplier, "backoff_multiplier")
        if multiplier < 1:
            raise InvalidInputError(
                "backoff_multiplier", self.backoff_multiplier, "must be at least 1"
            )
        values["backoff_multiplier"] = float(multiplier)
        if (
            self.exponential_backoff
            and values["max_backoff_seconds"] < values["open_timeout_seconds"]
        ):
            raise InvalidInputError(
                "max_backoff_seconds",
                self.max_backoff_seconds,
                f"must not be below open_timeout_seconds ({values['open_timeout_seconds']:g})",
            )
        values["half_open_max_calls"] = (
            values["success_threshold"]
            if self.half_open_max_calls is None
            else to_count(self.half_open_max_calls, "half_open_max_calls")
        )
        values["slow_call_seconds"] = (
            None
            if self.slow_call_seconds is None
            else to_seconds(self.slow_call_seconds, "slow_call_seconds")
        )
        if self.failure_result is not None and not callable(self.failure_result):
            raise InvalidTypeError(
                "failure_result", self.failure_result, "must be a predicate on the return value"
            )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (Decimals as strings, filters by name)."""
        result: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = [getattr(v, "__qualname__", repr(v)) for v in value]
            elif isinstance(value, type) or callable(value):
                value = getattr(value, "__qualname__", repr(value))
            result[item.name] = value
        return result
