"""TradingBreakerConfig: the thresholds of :class:`~haltgate.TradingCircuitBreakers`.

Every field and default of the trader-ai README, plus ``kill_switch_key_hash``,
``provider_timeout_seconds`` and ``calendar``. Percent thresholds are percentages with
losses negative (``Decimal("-2.0")`` is a 2 % loss). Values are validated and converted
when the config is made, so a bad one is refused before any breaker exists.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from ..calendars import TradingCalendar, calendar_from_spec
from ..errors import InvalidInputError, InvalidTypeError
from ..keys import check_key_hash
from ..values import to_count, to_decimal, to_positive, to_seconds

__all__ = ["TradingBreakerConfig"]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
# A constant, not -_HUNDRED: unary minus rounds in the caller's decimal context.
_MINUS_HUNDRED = Decimal(-100)


def _loss_pct(value: Any, name: str) -> Decimal:
    """A loss threshold: a negative percentage in [-100, 0)."""
    result = to_decimal(value, name)
    if not _MINUS_HUNDRED <= result < _ZERO:
        raise InvalidInputError(
            name,
            value,
            "must be a negative percentage in [-100, 0): losses are negative, "
            "e.g. Decimal('-2.0') for a 2 % loss",
        )
    return result


def _warning_pct(value: Any, name: str, limit: Decimal, limit_name: str) -> Decimal | None:
    """A loss warning level: between the limit and 0 (or ``None`` for no warning)."""
    if value is None:
        return None
    result = _loss_pct(value, name)
    if result <= limit:
        raise InvalidInputError(
            name, value, f"must be above {limit_name}={limit} (a smaller loss than the limit)"
        )
    return result


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidTypeError(name, value, "must be True or False")
    return value


@dataclass(frozen=True)
class TradingBreakerConfig:
    """Thresholds of the six trading breakers, monitoring and recovery.

    ``auto_recovery`` and ``cooldown_seconds``: with ``auto_recovery=False`` (the default)
    the daily-loss and volatility breakers stay tripped until ``reset_breaker(name)`` (the
    daily-loss one also clears when a new session of ``calendar`` starts). With
    ``auto_recovery=True`` the daily-loss breaker clears by itself once the daily P&L % is
    back above the limit and ``cooldown_seconds`` have passed since it was last at or below
    it, and the volatility breaker ``cooldown_seconds`` after the last extreme return. The
    order-rate breakers always clear when orders age out of their windows, the connection
    breaker on the next success.

    ``require_manual_reset=True`` makes the max-drawdown breaker a kill switch: only
    ``reset_kill_switch(auth_key)`` clears it, checked against ``kill_switch_key_hash``
    (make one with ``haltgate.hash_key(secret)``; never put the secret itself here). With
    ``require_manual_reset=False`` it is an ordinary breaker (``reset_breaker``, and
    ``auto_recovery`` as for the daily loss).

    ``provider_timeout_seconds`` bounds each call to the portfolio provider; ``calendar``
    (default midnight UTC) says when a trading day starts for the daily-loss breaker.
    """

    # Daily Loss
    daily_loss_limit_pct: Decimal = Decimal("-2.0")
    daily_loss_warning_pct: Decimal | None = Decimal("-1.5")

    # Max Drawdown
    max_drawdown_pct: Decimal = Decimal("-10.0")
    drawdown_warning_pct: Decimal | None = Decimal("-7.0")

    # Position Concentration
    max_position_pct: Decimal = Decimal("20.0")
    position_warning_pct: Decimal | None = Decimal("15.0")

    # Volatility
    volatility_std_threshold: Decimal = Decimal("3.0")
    volatility_lookback_days: int = 20

    # Rate Limiting
    max_orders_per_minute: int = 10
    max_orders_per_hour: int = 100

    # Connection
    connection_failure_threshold: int = 3
    connection_timeout_seconds: float = 30

    # Monitoring
    check_interval_seconds: float = 1.0
    cooldown_seconds: float = 300

    # Recovery
    auto_recovery: bool = False
    require_manual_reset: bool = True  # For kill switch

    # Beyond the README
    kill_switch_key_hash: str | None = None
    provider_timeout_seconds: float = 5.0
    calendar: TradingCalendar | str | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("daily_loss_limit_pct", _loss_pct(self.daily_loss_limit_pct, "daily_loss_limit_pct"))
        put(
            "daily_loss_warning_pct",
            _warning_pct(
                self.daily_loss_warning_pct,
                "daily_loss_warning_pct",
                self.daily_loss_limit_pct,
                "daily_loss_limit_pct",
            ),
        )
        put("max_drawdown_pct", _loss_pct(self.max_drawdown_pct, "max_drawdown_pct"))
        put(
            "drawdown_warning_pct",
            _warning_pct(
                self.drawdown_warning_pct,
                "drawdown_warning_pct",
                self.max_drawdown_pct,
                "max_drawdown_pct",
            ),
        )
        position = to_positive(self.max_position_pct, "max_position_pct")
        if position > _HUNDRED:
            raise InvalidInputError(
                "max_position_pct", self.max_position_pct, "must be a percentage in (0, 100]"
            )
        put("max_position_pct", position)
        if self.position_warning_pct is not None:
            warn = to_positive(self.position_warning_pct, "position_warning_pct")
            if warn >= position:
                raise InvalidInputError(
                    "position_warning_pct",
                    self.position_warning_pct,
                    f"must be below max_position_pct={position}",
                )
            put("position_warning_pct", warn)
        put(
            "volatility_std_threshold",
            to_positive(self.volatility_std_threshold, "volatility_std_threshold"),
        )
        put(
            "volatility_lookback_days",
            to_count(self.volatility_lookback_days, "volatility_lookback_days", minimum=2),
        )
        put("max_orders_per_minute", to_count(self.max_orders_per_minute, "max_orders_per_minute"))
        put("max_orders_per_hour", to_count(self.max_orders_per_hour, "max_orders_per_hour"))
        put(
            "connection_failure_threshold",
            to_count(self.connection_failure_threshold, "connection_failure_threshold"),
        )
        put(
            "connection_timeout_seconds",
            to_seconds(self.connection_timeout_seconds, "connection_timeout_seconds"),
        )
        put(
            "check_interval_seconds",
            to_seconds(self.check_interval_seconds, "check_interval_seconds"),
        )
        put(
            "cooldown_seconds",
            to_seconds(self.cooldown_seconds, "cooldown_seconds", allow_zero=True),
        )
        put("auto_recovery", _flag(self.auto_recovery, "auto_recovery"))
        put("require_manual_reset", _flag(self.require_manual_reset, "require_manual_reset"))
        if self.kill_switch_key_hash is not None:
            check_key_hash(self.kill_switch_key_hash, "kill_switch_key_hash")
        put(
            "provider_timeout_seconds",
            to_seconds(self.provider_timeout_seconds, "provider_timeout_seconds"),
        )
        put("calendar", calendar_from_spec(self.calendar))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict (the key hash is reported only as configured or not)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "kill_switch_key_hash":
                out["kill_switch_key_configured"] = value is not None
            elif item.name == "calendar":
                describe = getattr(value, "describe", None)
                out["calendar"] = describe() if callable(describe) else repr(value)
            else:
                out[item.name] = value
        return out
