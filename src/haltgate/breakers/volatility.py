"""Volatility breaker: trips on a return far outside the recent distribution."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Any

from ..clock import Clock
from ..errors import InvalidInputError
from ..events import BreakerEvent
from ..values import (
    MAX_MAGNITUDE,
    RATIO_CONTEXT,
    Number,
    to_count,
    to_decimal,
    to_positive,
    to_seconds,
)
from .base import BaseCircuitBreaker
from .contract import UNSET, BreakerContract
from .state import BLOCKING_STATES, CircuitBreakerType

__all__ = ["VolatilityCircuitBreaker"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_MAX_LOOKBACK = 100_000


class VolatilityCircuitBreaker(BaseCircuitBreaker):
    """Trips when the latest return is **more than** ``std_threshold`` sample standard
    deviations away from the mean of the previous ``lookback`` returns.

    Feed it prices (:meth:`record_price`; returns are computed as ``p / previous - 1``) or
    returns (:meth:`record_return`). It needs two returns in the look-back before it can
    judge. When the look-back has no spread at all, any return different from the mean
    counts as extreme. It clears by itself ``cooldown_seconds`` after the last extreme
    return.
    """

    contract = BreakerContract(
        observes={"price": to_positive, "last_return": to_decimal}, clears_by_time=True
    )

    def __init__(
        self,
        std_threshold: Number = 3,
        lookback: int = 20,
        cooldown_seconds: Number = 300,
        *,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        threshold = to_positive(std_threshold, "std_threshold")
        # Each return is judged in O(lookback): beyond this it is no longer "recent".
        size = to_count(lookback, "lookback", minimum=2, maximum=_MAX_LOOKBACK)
        cooldown = to_seconds(cooldown_seconds, "cooldown_seconds", allow_zero=True)
        super().__init__(CircuitBreakerType.VOLATILITY, name=name, clock=clock)
        self.std_threshold = threshold
        self.lookback = size
        self.cooldown_seconds = cooldown
        self._returns: deque[Decimal] = deque(maxlen=size)
        self._last_price: Decimal | None = None
        self._last_extreme = float("-inf")
        self._last_z: Decimal | None = None

    def can_trade(self, price: Number = UNSET, *, last_return: Number = UNSET) -> bool:
        """Observe a price and/or a return (optional; ``None`` is refused); True unless
        tripped or halted."""
        # Both are validated before either is recorded: a refused call changes nothing.
        checked_price = None if price is UNSET else to_positive(price, "price")
        checked_return = None if last_return is UNSET else to_decimal(last_return, "last_return")
        if checked_price is not None:
            self.record_price(checked_price)
        if checked_return is not None:
            self.record_return(checked_return)
        return not self.is_tripped

    def record_price(self, price: Number) -> Decimal | None:
        """Observe a price; returns the return it implies (``None`` for the first one)."""
        value = to_decimal(price, "price")
        if value <= _ZERO:
            raise InvalidInputError("price", price, "must be greater than 0")
        events: list[BreakerEvent] = []
        with self._lock:
            previous = self._last_price
            ret = (
                None
                if previous is None
                else RATIO_CONTEXT.subtract(RATIO_CONTEXT.divide(value, previous), _ONE)
            )
            if ret is not None and ret.copy_abs() >= MAX_MAGNITUDE:
                raise InvalidInputError("price", price, "implies a return out of range")
            self._last_price = value
            if ret is not None:
                # Under the same lock as the price: concurrent prices give returns in order.
                self._judge_locked(ret, events)
        if events:
            self._publish(events)
        return ret

    def record_return(self, value: Number) -> Decimal | None:
        """Observe a return; returns its distance from the look-back mean in standard
        deviations (``None`` while the look-back is too short or has no spread)."""
        ret = to_decimal(value, "value")
        events: list[BreakerEvent] = []
        with self._lock:
            z = self._judge_locked(ret, events)
        if events:
            self._publish(events)
        return z

    def _judge_locked(self, ret: Decimal, events: list[BreakerEvent]) -> Decimal | None:
        """Compare ``ret`` with the look-back, trip if extreme, then add it (lock held)."""
        z: Decimal | None = None
        self._refresh_locked(events)
        history = list(self._returns)
        if len(history) >= 2:
            n = len(history)
            # Statistics cannot be exact: one block in haltgate's context for them (cheaper
            # than a context method per term over a long look-back).
            with localcontext(RATIO_CONTEXT):
                mean = sum(history, _ZERO) / n
                variance = sum(((r - mean) ** 2 for r in history), _ZERO) / (n - 1)
                std = variance.sqrt()
                deviation = abs(ret - mean)
                extreme = deviation > self.std_threshold * std
                z = deviation / std if std > _ZERO else None
            self._last_z = z
            if extreme:
                self._last_extreme = self._clock.monotonic()
                if self._condition is None:
                    what = "inf" if z is None else f"{z:.2f}"
                    self._trip_locked(
                        f"Return {ret:.4%} is {what} standard deviations from the mean "
                        f"{mean:.4%} (max {self.std_threshold})",
                        {
                            "threshold": self.std_threshold,
                            "observed": z,
                            "return": ret,
                            "mean": mean,
                            "std": std,
                            "lookback": n,
                        },
                        events,
                    )
        self._returns.append(ret)
        return z

    def _refresh_locked(self, events: list[BreakerEvent]) -> None:
        if self._condition is None:
            return
        if self._clock.monotonic() - self._last_extreme >= self.cooldown_seconds:
            self._clear_locked("volatility cooldown elapsed", {"cause": "cooldown_elapsed"}, events)

    def _blocks(self) -> bool:
        return self.state in BLOCKING_STATES

    def _restore_hold_seconds(self) -> float:
        return self.cooldown_seconds

    def _export_data(self) -> dict[str, Any]:
        return {"returns": [str(r) for r in self._returns]}

    def _import_data(self, data: Mapping[str, Any]) -> None:
        self._returns.clear()
        self._returns.extend(Decimal(r) for r in data.get("returns", []))
