"""Drawdown breaker: latches when the portfolio falls too far below its recent peak."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..clock import Clock
from ..events import BreakerEvent
from ..values import (
    DECIMAL_CONTEXT,
    RATIO_CONTEXT,
    Number,
    to_decimal,
    to_fraction,
    to_positive,
)
from ..windows import RollingMax
from .base import BaseCircuitBreaker
from .contract import UNSET, BreakerContract
from .state import BLOCKING_STATES, CircuitBreakerType

__all__ = ["DrawdownCircuitBreaker"]

_ZERO = Decimal(0)
_DAY = 86400.0


class DrawdownCircuitBreaker(BaseCircuitBreaker):
    """Trips when ``(peak - value) / peak`` is **greater than** ``max_drawdown_pct``.

    The peak is the highest value observed within the last ``lookback_days`` (wall time),
    kept as per-minute maxima so memory stays bounded. Latched: only :meth:`reset` clears
    it, and a reset restarts the peak window at the latest value (a fresh allowance).

    The decision is ``value < trip_line(peak)`` with ``trip_line(peak) = peak -
    max_drawdown_pct * peak``: the same exact comparison as ``(peak - value) / peak >
    max_drawdown_pct`` for a positive peak (multiply both sides by the peak; every product
    and difference is exact in ``DECIMAL_CONTEXT``). The line is computed once per peak,
    and :meth:`feed_batch` compares many rows against the same line.
    """

    contract = BreakerContract(
        observes={"current_portfolio_value": to_decimal}, requires=frozenset(), batch=True
    )

    def __init__(
        self,
        max_drawdown_pct: Number,
        lookback_days: Number = 30,
        *,
        name: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        limit = to_fraction(max_drawdown_pct, "max_drawdown_pct")
        days = to_positive(lookback_days, "lookback_days")
        super().__init__(CircuitBreakerType.DRAWDOWN, name=name, clock=clock)
        self.max_drawdown_pct = limit
        self.lookback_days = days
        self._window = RollingMax(float(days) * _DAY)
        self._current: Decimal | None = None
        self._drawdown = _ZERO
        # (peak, trip line) of the latest trip_line() call.
        self._line: tuple[Decimal, Decimal | None] | None = None

    def can_trade(self, current_portfolio_value: Number = UNSET) -> bool:
        """Observe ``current_portfolio_value`` (if given; ``None`` is refused); True unless
        tripped or halted."""
        if current_portfolio_value is not UNSET:
            self.update(to_decimal(current_portfolio_value, "current_portfolio_value"))
        return self._state not in BLOCKING_STATES

    def update(self, value: Number) -> Decimal:
        """Observe a portfolio value; returns the current drawdown as a fraction."""
        observed = to_decimal(value, "value")
        events: list[BreakerEvent] = []
        with self._lock:
            now = self._clock.now().timestamp()
            before = self._window.peak(now)
            # All the arithmetic comes before the window moves, so that nothing is changed
            # if it ever raised; the peak after add() is the higher of the two.
            peak = observed if before is None or observed > before else before
            # Decided on exact values (see trip_line); the reported fraction is rounded.
            line = self.trip_line(peak)
            breached = line is not None and observed < line
            drawdown = self._fraction(peak, observed)
            self._window.add(now, observed)
            self._current = observed
            self._drawdown = drawdown
            # Judged while halted too: a breach under a halt is recorded beneath it.
            if breached and self._condition is None:
                self._trip_locked(
                    f"Drawdown {drawdown:.4%} exceeds max {self.max_drawdown_pct:.2%} "
                    f"(peak {peak}, current {observed})",
                    {
                        "threshold": self.max_drawdown_pct,
                        "observed": drawdown,
                        "peak": peak,
                        "current": observed,
                        "lookback_days": self.lookback_days,
                    },
                    events,
                )
            elif peak != before:
                self._persist_soft()
        self._publish(events)
        return drawdown

    def trip_line(self, peak: Decimal) -> Decimal | None:
        """The value below which the drawdown from ``peak`` exceeds ``max_drawdown_pct``:
        ``peak - max_drawdown_pct * peak``, exact (``None`` for a peak at or below zero,
        where no drawdown is defined). ``value < trip_line(peak)`` iff ``peak - value >
        max_drawdown_pct * peak``, the rule of SPEC §3. Cached for the latest peak."""
        cached = self._line
        if cached is not None and cached[0] is peak:
            return cached[1]
        line = None
        if peak > _ZERO:
            line = DECIMAL_CONTEXT.subtract(
                peak, DECIMAL_CONTEXT.multiply(self.max_drawdown_pct, peak)
            )
        self._line = (peak, line)
        return line

    @staticmethod
    def _fraction(peak: Decimal, value: Decimal) -> Decimal:
        """The drawdown as a (rounded) fraction, 0 where none is defined."""
        if peak > _ZERO:
            return RATIO_CONTEXT.divide(DECIMAL_CONTEXT.subtract(peak, value), peak)
        return _ZERO

    def feed_batch(
        self, times: Sequence[float], values: Sequence[Decimal], start: int, stop: int
    ) -> int:
        """Observe ``values[start:stop]`` at ``times`` (see
        :meth:`BaseCircuitBreaker.feed_batch`): the same peak window
        (:meth:`RollingMax.add_until`, one add per row) and the same trip line as
        :meth:`update`; stops before the first row that trips. Emits nothing."""
        if start >= stop:
            return start
        with self._lock:
            # Tripped already: no row can trip again, every row still moves the window.
            line_of = self.trip_line if self._condition is None else None
            index, peak, rose = self._window.add_until(times, values, start, stop, line_of)
            if index > start:
                assert peak is not None
                last = values[index - 1]
                self._current = last
                self._drawdown = self._fraction(peak, last)
                if rose:
                    self._persist_soft()
            return index

    def new_peak_window(self) -> RollingMax:
        """An empty window of the same look-back and buckets as this breaker's (to chart
        the peak it judges by)."""
        return RollingMax(self._window.lookback_seconds, self._window.bucket_seconds)

    def get_current_drawdown(self) -> Decimal:
        """The drawdown at the latest observation, as a fraction (0 before any)."""
        return self._drawdown

    def get_peak(self) -> Decimal | None:
        """The highest value within the look-back, or ``None`` before any observation."""
        with self._lock:
            return self._window.peak(self._clock.now().timestamp())

    def _on_reset(self) -> None:
        if self._current is not None:
            self._window.restart(self._clock.now().timestamp(), self._current)
        self._drawdown = _ZERO

    def _export_data(self) -> dict[str, Any]:
        return {
            "window": self._window.export(),
            "current": None if self._current is None else str(self._current),
            "drawdown": str(self._drawdown),
        }

    def _import_data(self, data: Mapping[str, Any]) -> None:
        self._window.load(data.get("window", []))
        current = data.get("current")
        self._current = None if current is None else Decimal(current)
        self._drawdown = Decimal(data.get("drawdown", "0"))
