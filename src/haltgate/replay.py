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

import csv
import io
import json
import math
import sys
import time as _time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import IO, Any

from .breakers import (
    BaseCircuitBreaker,
    CircuitBreakerState,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from .calendars import UTCDailyCalendar
from .clock import ManualClock
from .errors import ConfigError, HaltgateError
from .events import BreakerEvent, EventKind
from .manager import CircuitBreakerManager
from .windows import RollingMax

__all__ = [
    "ReplayError",
    "ReplayEvent",
    "ReplayResult",
    "default_breakers",
    "plot_replay",
    "read_rows",
    "replay_csv",
    "replay_rows",
]

_TRIPPED = CircuitBreakerState.TRIPPED
_NORMAL = CircuitBreakerState.NORMAL
# Relative margin of the float pre-checks: float parsing errs by ~1e-16, so any row within
# a billionth of a threshold goes to the breakers.
_MARGIN = 1e-9
_UP = 1.0 + _MARGIN
_DAY = 86400.0
_BLOCK = 8192  # rows read ahead; a later higher value is looked for within the block


class ReplayError(HaltgateError, ValueError):
    """The CSV cannot be replayed; ``line`` is its line number (1 = the header)."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


def default_breakers() -> list[BaseCircuitBreaker]:
    """The guide's recommended minimum setup."""
    return [
        DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")),
        DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")),
        OrderRateCircuitBreaker(max_orders_per_minute=10),
        ManualCircuitBreaker(),
    ]


# --------------------------------------------------------------------------- reading
Row = tuple[int, datetime | None, float, str, float, int, int]
"""``(line, when, ts, value_text, value, orders, errors)``; ``when`` is ``None`` for whole
epoch seconds (made on demand, exactly ``ts``)."""


def row_time(row: Row) -> datetime:
    """The row's aware UTC time."""
    when = row[1]
    return when if when is not None else datetime.fromtimestamp(row[2], UTC)


def _parse_count(text: str, column: str, line: int) -> int:
    text = text.strip()
    if not text:
        return 0
    try:
        count = int(text)
    except ValueError:
        raise ReplayError(line, f"{column}={text!r} is not a whole number") from None
    if count < 0:
        raise ReplayError(line, f"{column}={text!r} must not be negative")
    return count


def read_rows(
    lines: Iterable[str], *, on_progress: Callable[[int], None] | None = None
) -> Iterator[Row]:
    """Parse CSV lines (header first) into rows, naming the line of any error."""
    counter = _ByteCounter(lines) if on_progress is not None else None
    reader = csv.reader(counter if counter is not None else lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ReplayError(
            None, "the CSV is empty (expected a header: timestamp,portfolio_value)"
        ) from None
    columns = [h.strip().lower() for h in header]
    for needed in ("timestamp", "portfolio_value"):
        if needed not in columns:
            raise ReplayError(1, f"the header has no {needed!r} column (found: {header})")
    i_ts = columns.index("timestamp")
    i_val = columns.index("portfolio_value")
    i_ord = columns.index("orders") if "orders" in columns else -1
    i_err = columns.index("errors") if "errors" in columns else -1
    width = max(i_ts, i_val, i_ord, i_err) + 1
    epoch: bool | None = None
    last_ts = -math.inf
    fromiso = datetime.fromisoformat
    fromts = datetime.fromtimestamp
    isfinite = math.isfinite
    utc = UTC
    seen = 0
    for record in reader:
        if len(record) < width:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            raise ReplayError(reader.line_num, f"expected {width} columns, found {len(record)}")
        stamp = record[i_ts]
        if epoch is None:
            try:
                float(stamp)
                epoch = True
            except ValueError:
                epoch = False
        when: datetime | None
        try:
            if epoch:
                if stamp.isdigit():
                    # Whole seconds: the float is exact and so is the datetime made later.
                    ts = float(stamp)
                    when = None
                else:
                    when = fromts(float(stamp), utc)
                    ts = when.timestamp()
            else:
                when = fromiso(stamp.strip())
                if when.tzinfo is None:
                    when = when.replace(tzinfo=utc)
                ts = when.timestamp()
        except (ValueError, OverflowError, OSError):
            kind = "epoch seconds" if epoch else "an ISO-8601 time"
            raise ReplayError(reader.line_num, f"timestamp {stamp!r} is not {kind}") from None
        if ts < last_ts:
            raise ReplayError(reader.line_num, f"timestamp {stamp!r} goes backwards")
        last_ts = ts
        text = record[i_val]
        try:
            value = float(text)
        except ValueError:
            raise ReplayError(
                reader.line_num, f"portfolio_value={text!r} is not a number"
            ) from None
        if not isfinite(value):
            raise ReplayError(reader.line_num, f"portfolio_value={text!r} must be finite")
        orders = errors = 0
        if i_ord >= 0:
            cell = record[i_ord]
            if cell != "0":
                orders = _parse_count(cell, "orders", reader.line_num)
        if i_err >= 0:
            cell = record[i_err]
            if cell != "0":
                errors = _parse_count(cell, "errors", reader.line_num)
        yield (reader.line_num, when, ts, text, value, orders, errors)
        if counter is not None:
            seen += 1
            if not seen & 0x3FFF:
                on_progress(counter.bytes)  # type: ignore[misc]
    if counter is not None:
        on_progress(counter.bytes)  # type: ignore[misc]


class _ByteCounter:
    """Iterates lines and counts their characters (for a progress bar)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.bytes = 0

    def __iter__(self) -> _ByteCounter:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.bytes += len(line)
        return line


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """A trip, halt or reset seen during the replay."""

    timestamp: datetime
    breaker: str
    kind: str
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"timestamp", "breaker", "kind", "reason"}``."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "breaker": self.breaker,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclass
class ReplayResult:
    """Events and figures of one replay (and the series, for the plot)."""

    events: list[ReplayEvent] = field(default_factory=list)
    rows: int = 0
    start: datetime | None = None
    end: datetime | None = None
    orders_admitted: int = 0
    orders_refused: int = 0
    errors_recorded: int = 0
    final_states: dict[str, str] = field(default_factory=dict)
    halted_periods: list[tuple[datetime, datetime]] = field(default_factory=list)
    times: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))
    peaks: list[tuple[float, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts, halted time and final states."""
        trips: dict[str, int] = {}
        resets = 0
        for event in self.events:
            if event.kind in ("tripped", "halted"):
                trips[event.breaker] = trips.get(event.breaker, 0) + 1
            elif event.kind == "reset":
                resets += 1
        span = (self.end - self.start).total_seconds() if self.start and self.end else 0.0
        halted = sum((b - a).total_seconds() for a, b in self.halted_periods)
        return {
            "rows": self.rows,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "trips": sum(trips.values()),
            "trips_by_breaker": trips,
            "resets": resets,
            "halted_seconds": halted,
            "halted_fraction": (halted / span) if span > 0 else 0.0,
            "orders_admitted": self.orders_admitted,
            "orders_refused": self.orders_refused,
            "errors_recorded": self.errors_recorded,
            "final_states": self.final_states,
            "trading_allowed_at_end": all(
                s not in ("TRIPPED", "MANUALLY_HALTED") for s in self.final_states.values()
            ),
        }

    def to_json(self) -> dict[str, Any]:
        """``{"events": [...], "summary": {...}}``."""
        return {"events": [e.to_dict() for e in self.events], "summary": self.summary()}


# --------------------------------------------------------------------------- engine
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


class _Collector:
    """Turns breaker events into replay events and halted periods."""

    def __init__(self, result: ReplayResult) -> None:
        self.result = result
        self.blocking: set[str] = set()
        self.halted_since: datetime | None = None

    def __call__(self, event: BreakerEvent) -> None:
        kind = event.kind
        if kind is EventKind.ORDER_REFUSED or kind is EventKind.WARNING:
            return
        if kind is EventKind.RESET and event.state is CircuitBreakerState.RESETTING:
            return
        self.result.events.append(
            ReplayEvent(event.timestamp, event.breaker_name, str(kind), event.reason)
        )
        if event.state in (CircuitBreakerState.TRIPPED, CircuitBreakerState.MANUALLY_HALTED):
            if not self.blocking:
                self.halted_since = event.timestamp
            self.blocking.add(event.breaker_name)
        elif event.state is _NORMAL and event.breaker_name in self.blocking:
            self.blocking.discard(event.breaker_name)
            if not self.blocking and self.halted_since is not None:
                self.result.halted_periods.append((self.halted_since, event.timestamp))
                self.halted_since = None


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


# --------------------------------------------------------------------------- output
def _fmt_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def print_report(result: ReplayResult, out: IO[str]) -> None:
    """Each trip and reset (when, which, why), then the summary, for a person."""
    for event in result.events:
        out.write(
            f"{_fmt_time(event.timestamp)}  {event.kind.upper():<8} {event.breaker:<14} "
            f"{event.reason or ''}\n"
        )
    s = result.summary()
    if not result.events:
        out.write("no breaker tripped\n")
    out.write("\nsummary\n")
    out.write(f"  rows:            {s['rows']:,} ({s['start']} .. {s['end']})\n")
    by = ", ".join(f"{k}: {v}" for k, v in s["trips_by_breaker"].items()) or "none"
    out.write(f"  trips:           {s['trips']} ({by})\n")
    out.write(f"  resets:          {s['resets']}\n")
    out.write(
        f"  halted:          {s['halted_seconds'] / 3600:.1f} h "
        f"({s['halted_fraction']:.1%} of the period)\n"
    )
    out.write(
        f"  orders:          {s['orders_admitted']:,} admitted, {s['orders_refused']:,} refused\n"
    )
    out.write(f"  errors:          {s['errors_recorded']:,}\n")
    states = ", ".join(f"{k}={v}" for k, v in s["final_states"].items())
    verdict = "TRADING ALLOWED" if s["trading_allowed_at_end"] else "TRADING HALTED"
    out.write(f"  at the end:      {verdict} ({states})\n")


def plot_replay(result: ReplayResult, path: str | Path, *, title: str | None = None) -> None:
    """Draw equity, peak, halted periods (shaded) and trip markers to a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plot", "--plot needs the 'plot' extra: pip install 'haltgate[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np

    times = np.frombuffer(result.times, dtype=np.float64)
    values = np.frombuffer(result.values, dtype=np.float64)
    days = times / _DAY
    epoch = float(mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC)))  # type: ignore[no-untyped-call]
    x = days + epoch
    # Down-sample to a min/max envelope so a million points draw quickly and spikes show.
    if len(x) > 8000:
        step = len(x) // 4000
        cut = (len(x) // step) * step
        xs = x[:cut].reshape(-1, step)
        vs = values[:cut].reshape(-1, step)
        px = np.repeat(xs[:, 0], 2)
        pv = np.column_stack([vs.max(axis=1), vs.min(axis=1)]).ravel()
    else:
        px, pv = x, values
    fig, ax = plt.subplots(figsize=(13, 6.5), dpi=110)
    ax.plot(px, pv, color="#1f4e9c", linewidth=1.0, label="portfolio value")
    if result.peaks:
        pk = np.array(result.peaks)
        ax.plot(
            pk[:, 0] / _DAY + epoch,
            pk[:, 1],
            color="#7a7a7a",
            linestyle="--",
            linewidth=1.0,
            drawstyle="steps-post",
            label="peak (drawdown look-back)",
        )
    first_span = True
    for start, end in result.halted_periods:
        ax.axvspan(
            mdates.date2num(start),  # type: ignore[no-untyped-call]
            mdates.date2num(end),  # type: ignore[no-untyped-call]
            color="#d62728",
            alpha=0.18,
            label="trading halted" if first_span else None,
        )
        first_span = False
    trips = [e for e in result.events if e.kind in ("tripped", "halted")]
    if trips:
        tx = np.array([e.timestamp.timestamp() for e in trips])
        idx = np.clip(np.searchsorted(times, tx), 0, len(values) - 1)
        ax.scatter(
            tx / _DAY + epoch,
            values[idx],
            marker="v",
            s=90,
            color="#d62728",
            edgecolor="black",
            zorder=5,
            label="trip",
        )
        labelled: set[str] = set()
        stacked: dict[float, int] = {}
        for e, xv, yv in zip(trips, tx / _DAY + epoch, values[idx], strict=True):
            if e.breaker in labelled:
                continue  # name each breaker once: repeated labels pile up unreadably
            labelled.add(e.breaker)
            # Trips at the same moment get their labels stacked, not printed over each other.
            level = stacked.get(xv, 0)
            stacked[xv] = level + 1
            ax.annotate(
                e.breaker,
                (xv, yv),
                textcoords="offset points",
                xytext=(0, 12 + 13 * level),
                ha="center",
                fontsize=9,
                color="#8b0000",
            )
    s = result.summary()
    ax.set_title(
        title
        or f"haltgate replay: {s['rows']:,} rows, {s['trips']} trip(s), "
        f"halted {s['halted_fraction']:.1%} of the time",
        fontsize=13,
    )
    ax.set_ylabel("portfolio value")
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------- command
class _Progress:
    """A progress bar on stderr (only when it is a terminal)."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.last = -1

    def __call__(self, done: int) -> None:
        pct = min(100, done * 100 // self.total)
        if pct != self.last:
            self.last = pct
            bar = "#" * (pct // 4)
            self.stream.write(f"\rreplay [{bar:<25}] {pct:3d}%")
            self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def run_replay_command(args: Any, config: Any) -> int:
    """``haltgate replay FILE [--json] [--plot PNG]`` (``config`` may be ``None``)."""
    breakers = config.build_breakers() if config is not None else default_breakers()
    path = Path(args.file)
    if not path.exists():
        print(f"haltgate: no such file: {path}", file=sys.stderr)
        return 2
    progress = None
    if not args.no_progress and sys.stderr.isatty():
        progress = _Progress(path.stat().st_size, sys.stderr)
    started = _time.perf_counter()
    try:
        result = replay_csv(path, breakers, keep_series=bool(args.plot), on_progress=progress)
    except ReplayError as exc:
        if progress is not None:
            progress.finish()
        print(f"haltgate: {path}: {exc}", file=sys.stderr)
        return 2
    if progress is not None:
        progress.finish()
    if result.rows == 0:
        print(f"haltgate: {path}: no data rows after the header", file=sys.stderr)
        return 2
    elapsed = _time.perf_counter() - started
    if args.json:
        print(json.dumps(result.to_json(), indent=None))
    else:
        buffer = io.StringIO()
        print_report(result, buffer)
        sys.stdout.write(buffer.getvalue())
    if args.plot:
        plot_replay(result, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    print(f"replayed {result.rows:,} rows in {elapsed:.2f}s", file=sys.stderr)
    return 0
