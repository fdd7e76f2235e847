"""Replay: run the breakers over a historical equity series and show where they trip.

The CSV has a header with ``timestamp`` and ``portfolio_value`` and optional ``orders`` and
``errors`` columns (counts per row). Timestamps are ISO-8601 (naive = UTC) or epoch
seconds, and must not go backwards. The breakers run on a :class:`~haltgate.ManualClock`
set to each row's time, exactly as a live manager would see the series::

    clock.set(t); manager.can_trade(current_portfolio_value=v)
    manager.record_order() x orders; manager.record_error() x errors

The fast path gives the same events as that loop (a test compares them) while calling the
breakers only on rows that can change something. A row's value is compared in floating
point only to decide whether it *might* matter — with a safety margin, and always in the
direction of calling the breaker — and every decision is still made by the breakers on
``Decimal`` values. Latched breakers stay tripped: a replay has no operator to reset them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import Any

from ..breakers import (
    BaseCircuitBreaker,
    CircuitBreakerState,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from ..calendars import UTCDailyCalendar
from ..clock import ManualClock
from ..manager import CircuitBreakerManager
from ..windows import RollingMax
from .result import ReplayResult, _Collector
from .rows import ReplayError, Row, read_rows, row_time

_TRIPPED = CircuitBreakerState.TRIPPED
_NORMAL = CircuitBreakerState.NORMAL
# Relative margin of the float pre-checks: float parsing errs by ~1e-16, so any row within
# a billionth of a threshold goes to the breakers.
_MARGIN = 1e-9
_UP = 1.0 + _MARGIN
_DAY = 86400.0
_BLOCK = 8192  # rows read ahead; a later higher value is looked for within the block


def default_breakers() -> list[BaseCircuitBreaker]:
    """The guide's recommended minimum setup."""
    return [
        DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")),
        DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")),
        OrderRateCircuitBreaker(max_orders_per_minute=10),
        ManualCircuitBreaker(),
    ]


class _Drawdown:
    """Float shadow of one drawdown breaker, to skip rows that cannot matter.

    A row may be skipped only when (1) it cannot trip: its value is clearly above the trip
    line under a peak at least as high as the breaker's, and (2) the breaker's peak window
    would keep no trace of it: it is below the maximum already recorded for its minute, or
    a later row is higher and every row until that one is left out as well (the higher
    value displaces them all from the window before anything reads it).
    """

    __slots__ = ("breaker", "bucket", "bucket_max", "bucket_seconds", "floor_factor", "peak")

    def __init__(self, breaker: DrawdownCircuitBreaker) -> None:
        self.breaker = breaker
        self.bucket_seconds = breaker._window.bucket_seconds
        self.bucket = -1
        self.bucket_max = -math.inf
        self.peak = math.inf
        self.floor_factor = 1.0 - float(breaker.max_drawdown_pct)

    def skip(self, ts: float, value: float, has_higher: bool, seg_min: float) -> bool:
        """Whether the row can be left out; ``has_higher``: a later row of the block is
        higher, and ``seg_min`` is the lowest value from this row up to that one."""
        peak = self.peak
        high = value * _UP
        raised = high if high > peak else peak
        normal = self.breaker._state is _NORMAL
        # A tripped (latched) breaker cannot trip again; otherwise stay clear of the line.
        if normal and not (
            0.0 < raised < math.inf and value >= raised * self.floor_factor + _MARGIN * raised
        ):
            return False
        if value < self.bucket_max and int(ts // self.bucket_seconds) == self.bucket:
            return True
        # A later, higher row displaces this value from the window; every row until then is
        # left out too, so none of them may come near the trip line either.
        if has_higher and (not normal or seg_min >= raised * self.floor_factor + _MARGIN * raised):
            self.peak = raised
            return True
        return False

    def fed(self, ts: float, value: float, drawdown: Decimal) -> None:
        key = int(ts // self.bucket_seconds)
        if key != self.bucket:
            self.bucket = key
            self.bucket_max = value
        elif value > self.bucket_max:
            self.bucket_max = value
        dd = float(drawdown)
        if value > 0.0 and dd < 0.5:
            self.peak = value / (1.0 - dd) * _UP
        else:  # rare: ask the breaker rather than amplify rounding
            peak = self.breaker.get_peak()
            self.peak = math.inf if peak is None else float(peak) * _UP


class _DailyLoss:
    """Float shadow of one daily-loss breaker on the UTC calendar: within a session a row
    matters only when its loss is near or above the limit."""

    __slots__ = ("baseline", "breaker", "limit", "session_end")

    def __init__(self, breaker: DailyLossCircuitBreaker) -> None:
        self.breaker = breaker
        self.session_end = -math.inf
        self.baseline = 0.0
        self.limit = 0.0

    def skip(self, ts: float, value: float) -> bool:
        if ts >= self.session_end:
            return False  # a new session: the breaker sets its baseline and may clear
        if self.breaker._state is not _NORMAL:
            return True  # within a session nothing changes a trip or a halt
        loss = self.baseline - value
        margin = _MARGIN * (abs(self.baseline) + abs(value) + abs(self.limit))
        return loss < self.limit - margin

    def fed(self, when: datetime) -> None:
        breaker = self.breaker
        start = breaker.calendar.session_start(when)
        self.session_end = start.timestamp() + _DAY
        baseline = breaker.get_start_of_day_value()
        limit = breaker.limit()
        if baseline is None or limit is None:
            self.session_end = -math.inf  # unknown: call the breaker on every row
            return
        self.baseline = float(baseline)
        self.limit = float(limit)


def _fast_path_ok(breakers: list[BaseCircuitBreaker]) -> bool:
    known = (
        DrawdownCircuitBreaker,
        DailyLossCircuitBreaker,
        OrderRateCircuitBreaker,
        ErrorRateCircuitBreaker,
        ManualCircuitBreaker,
    )
    for breaker in breakers:
        if type(breaker) not in known:
            return False
        if type(breaker) is DailyLossCircuitBreaker and type(breaker.calendar) is not (
            UTCDailyCalendar
        ):
            return False
    return True


def replay_rows(
    rows: Iterable[Row],
    breakers: list[BaseCircuitBreaker] | None = None,
    *,
    fast: bool = True,
    keep_series: bool = False,
) -> ReplayResult:
    """Run ``breakers`` (default: the recommended minimum setup) over ``rows``.

    The breakers must not have a clock of their own: they run on a fresh
    :class:`~haltgate.ManualClock` set to each row's time. ``fast=False`` calls the manager
    on every row (the reference the fast path is tested against).
    """
    if breakers is None:
        breakers = default_breakers()
    result = ReplayResult()
    iterator = iter(rows)
    current = next(iterator, None)
    if current is None:
        return result
    for breaker in breakers:
        if breaker._clock_explicit:
            raise ReplayError(None, f"breaker {breaker.name!r} has its own clock; replay sets it")
    first = current
    clock = ManualClock(row_time(first))
    manager = CircuitBreakerManager(breakers=breakers, clock=clock)
    collector = _Collector(result)
    manager.add_listener(collector)
    ordered = manager.get_all_breakers()
    use_fast = fast and _fast_path_ok(ordered)
    feeds_value = any("current_portfolio_value" in _accepted(b) for b in ordered)
    drawdowns = [b for b in ordered if type(b) is DrawdownCircuitBreaker]
    peak_source = drawdowns[0] if drawdowns else None

    # One step per breaker that needs a call, in the manager's order (events keep it).
    dd_steps: list[_Drawdown] = []
    plan: list[tuple[int, Any]] = []
    for breaker in ordered:
        if type(breaker) is DrawdownCircuitBreaker:
            shadow = _Drawdown(breaker)
            dd_steps.append(shadow)
            plan.append((0, shadow))
        elif type(breaker) is DailyLossCircuitBreaker:
            plan.append((1, _DailyLoss(breaker)))
        elif type(breaker) is OrderRateCircuitBreaker:
            plan.append((2, breaker))
        elif type(breaker) is ErrorRateCircuitBreaker:
            plan.append((3, breaker))
    rate_breakers = [b for b in ordered if type(b) is OrderRateCircuitBreaker]
    watch_rate = False

    times = result.times
    values = result.values
    peaks = result.peaks
    set_clock = clock.set
    record_order = manager.record_order
    record_error = manager.record_error
    fromts = datetime.fromtimestamp
    utc = UTC
    n = 0
    last = first
    block = [first, *islice(iterator, _BLOCK - 1)]
    no_higher = [False] * _BLOCK
    zeros = [0.0] * _BLOCK
    while block:
        if use_fast and dd_steps:
            has_higher, seg_min = _next_higher([row[4] for row in block])
        else:
            has_higher, seg_min = no_higher, zeros
        for index, current in enumerate(block):
            n += 1
            _line, when, ts, _text, value, orders, errors = current
            if keep_series:
                times.append(ts)
                values.append(value)
            if not use_fast:
                set_clock(when if when is not None else fromts(ts, utc))
                if feeds_value:
                    manager.can_trade(current_portfolio_value=_dec(current))
                else:
                    manager.can_trade()
            else:
                higher = has_higher[index]
                low = seg_min[index]
                # Cheapest common case first: every shadow says the row cannot matter.
                quiet = not watch_rate and not orders and not errors
                if quiet:
                    for step, item in plan:
                        if step == 0:
                            if not item.skip(ts, value, higher, low):
                                quiet = False
                                break
                        elif step == 1:
                            if not item.skip(ts, value):
                                quiet = False
                                break
                        elif item._state is _TRIPPED:
                            quiet = False
                            break
                if not quiet:
                    set_clock(when if when is not None else fromts(ts, utc))
                    for step, item in plan:
                        if step == 0:
                            if not item.skip(ts, value, higher, low):
                                item.fed(ts, value, item.breaker.update(_dec(current)))
                        elif step == 1:
                            if not item.skip(ts, value):
                                item.breaker.can_trade(current_portfolio_value=_dec(current))
                                item.fed(clock.now())
                        elif step == 2:
                            if watch_rate:
                                item.can_trade()
                        elif item._state is _TRIPPED:  # error rate: may clear by itself
                            _ = item.is_tripped
            if orders or errors:
                for _ in range(orders):
                    if record_order():
                        result.orders_admitted += 1
                    else:
                        result.orders_refused += 1
                for _ in range(errors):
                    if record_error():
                        result.errors_recorded += 1
            if use_fast and (orders or watch_rate):
                watch_rate = any(
                    b._state is _TRIPPED or b.get_order_count() >= b.max_orders_per_minute
                    for b in rate_breakers
                )
        last = block[-1]
        block = list(islice(iterator, _BLOCK))
    end = row_time(last)
    set_clock(end)
    if keep_series and peak_source is not None:
        # The plotted peak is the drawdown look-back over every row, on the breaker's own
        # primitive (the breaker itself is not fed rows that cannot matter, so its peak
        # can lag inside a block). A replay never resets a latched breaker, so the two agree.
        window = RollingMax(
            peak_source._window.lookback_seconds, peak_source._window.bucket_seconds
        )
        shown: float | None = None
        for ts, value in zip(times, values, strict=True):
            peak = float(window.add(ts, Decimal(repr(value))))
            if peak != shown:
                peaks.append((ts, peak))
                shown = peak
    result.rows = n
    result.start = row_time(first)
    result.end = end
    result.final_states = manager.get_status()
    if collector.halted_since is not None:
        result.halted_periods.append((collector.halted_since, end))
    return result


def _next_higher(values: list[float]) -> tuple[list[bool], list[float]]:
    """For each value: is a later one strictly higher, and the lowest value from it up to
    (not including) the first higher one. One backward pass with a monotonic stack."""
    size = len(values)
    has = [False] * size
    lows = [0.0] * size
    stack_values: list[float] = []
    stack_lows: list[float] = []
    for i in range(size - 1, -1, -1):
        value = low = values[i]
        while stack_values and stack_values[-1] <= value:
            stack_values.pop()
            other = stack_lows.pop()
            if other < low:
                low = other
        has[i] = bool(stack_values)
        lows[i] = low
        stack_values.append(value)
        stack_lows.append(low)
    return has, lows


def _dec(row: Row) -> Decimal:
    try:
        return Decimal(row[3])
    except InvalidOperation:  # float() accepted it, Decimal did not
        raise ReplayError(row[0], f"portfolio_value={row[3]!r} is not a number") from None


def _accepted(breaker: BaseCircuitBreaker) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(breaker.can_trade).parameters)
    except (TypeError, ValueError):
        return set()


def replay_csv(
    path: str | Path,
    breakers: list[BaseCircuitBreaker] | None = None,
    *,
    keep_series: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay a CSV file (see the module docstring for its format)."""
    # utf-8-sig: spreadsheets often start a CSV with a byte-order mark.
    with open(path, newline="", encoding="utf-8-sig") as file:
        return replay_rows(
            read_rows(file, on_progress=on_progress), breakers, keep_series=keep_series
        )
