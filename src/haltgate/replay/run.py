"""Replay: run the breakers over a historical equity series and show where they trip.

The CSV has a header with ``timestamp`` and ``portfolio_value`` and optional ``orders`` and
``errors`` columns (counts per row). Timestamps are ISO-8601 (naive = UTC) or epoch
seconds, and must not go backwards. The breakers run on a :class:`~haltgate.ManualClock`
set to each row's time, exactly as a live manager would see the series (the reference,
``fast=False``)::

    clock.set(t); manager.can_trade(current_portfolio_value=v)
    manager.record_order() x orders; manager.record_error() x errors

The fast path (the default) gives the same events and leaves every breaker in the same
state, with no second implementation of any rule: each breaker whose contract declares
``batch`` judges many rows at once in its own ``feed_batch`` (the same predicate as its
per-row path, in ``Decimal``, the same windows and session roll), and every row that would
change a state (a trip, a clear, a new session) goes through the breaker's own per-row
path and the executor. Rows with orders or errors, and rows at which time alone may change
a breaker that observes no values (``unchanged_by_time_until()``), are fed to the manager
exactly as the reference does. A breaker without a batch path (a user's own) is fed row by
row.

Latched breakers stay tripped unless a simulated operator acknowledges them:
``reset_after`` (a trip still in force that long after it tripped is reset) and
``reset_at_next_session`` (at the start of the next session of the breaker's calendar).
Those resets are ordinary operator resets by the operator ``"replay"``.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..breakers import (
    BaseCircuitBreaker,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from ..calendars import SessionTracker, TradingCalendar, UTCDailyCalendar
from ..clock import ManualClock
from ..errors import InvalidInputError
from ..events import BreakerEvent, EventKind
from ..manager import CircuitBreakerManager
from .result import ReplayResult, _Collector
from .rows import Chunk, ReplayError, Row, _value, open_csv, read_chunks

#: The operator name of the simulated acknowledgements.
REPLAY_OPERATOR = "replay"
_OBSERVATION = "current_portfolio_value"
_CHUNK = 8192


def default_breakers() -> list[BaseCircuitBreaker]:
    """The guide's recommended minimum setup."""
    return [
        DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")),
        DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")),
        OrderRateCircuitBreaker(max_orders_per_minute=10),
        ManualCircuitBreaker(),
    ]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"`` as a positive timedelta."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInputError(
            "reset_after", text, "expected a duration such as 30d, 12h, 90m or 45s"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise InvalidInputError("reset_after", text, "must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise InvalidInputError("reset_after", text, "is too long") from None


def _chunks_of_rows(rows: Iterable[Row]) -> Iterator[Chunk]:
    """Row tuples (see :func:`~haltgate.replay.read_rows`) as chunks."""
    chunk = Chunk()
    lines: list[int] = []
    chunk.lines = lines
    for line, when, ts, text, _value_float, orders, errors in rows:
        index = len(chunk.times)
        lines.append(line)
        chunk.times.append(ts)
        chunk.values.append(_value(text, line))
        if when is not None and when.microsecond:
            chunk.whens[index] = when
        if orders or errors:
            chunk.counts[index] = (orders, errors)
            chunk.active.append(index)
        if index + 1 >= _CHUNK:
            yield chunk
            chunk = Chunk()
            lines = []
            chunk.lines = lines
    if chunk.times:
        yield chunk


class _Pending:
    """A simulated operator's acknowledgement of one trip, due at ``due`` (epoch seconds;
    ``None``: found by asking the session tracker at each row)."""

    __slots__ = ("breaker", "due", "due_at", "label", "tracker", "tripped_at")

    def __init__(
        self,
        breaker: BaseCircuitBreaker,
        tripped_at: datetime,
        due_at: datetime | None,
        label: str,
        tracker: SessionTracker | None = None,
    ) -> None:
        self.breaker = breaker
        self.tripped_at = tripped_at
        self.due_at = due_at
        self.due = None if due_at is None else due_at.timestamp()
        self.label = label
        self.tracker = tracker


class _Operator:
    """Schedules the simulated acknowledgements from the trips it hears of."""

    def __init__(
        self,
        breakers: list[BaseCircuitBreaker],
        reset_after: timedelta | None,
        at_next_session: bool,
    ) -> None:
        self.by_name = {b.name: b for b in breakers}
        self.reset_after = reset_after
        self.at_next_session = at_next_session
        self.pending: list[_Pending] = []
        # For breakers without a calendar of their own: the replay's daily-loss calendar.
        self.fallback: TradingCalendar = UTCDailyCalendar()
        for breaker in breakers:
            calendar = getattr(breaker, "calendar", None)
            if isinstance(calendar, TradingCalendar):
                self.fallback = calendar
                break

    @property
    def active(self) -> bool:
        return self.reset_after is not None or self.at_next_session

    def __call__(self, event: BreakerEvent) -> None:
        if event.kind is not EventKind.TRIPPED or event.details.get("remote"):
            return
        breaker = self.by_name.get(event.breaker_name)
        if breaker is None:
            return
        when = event.timestamp
        if self.reset_after is not None:
            label = f"--reset-after {_fmt_delta(self.reset_after)}"
            try:
                due = when + self.reset_after
            except OverflowError:  # past the last datetime: never due
                due = None
            if due is not None:
                self.pending.append(_Pending(breaker, when, due, label))
        if self.at_next_session:
            calendar = getattr(breaker, "calendar", None)
            if not isinstance(calendar, TradingCalendar):
                calendar = self.fallback
            tracker = SessionTracker(calendar)
            tracker.roll(when, _accept, None)
            following = tracker.next_start()
            label = "--reset-at-next-session"
            self.pending.append(_Pending(breaker, when, following, label, tracker))

    def limit(self, breaker: BaseCircuitBreaker, times: list[float], start: int, stop: int) -> int:
        """How far ``breaker``'s batch path may run from ``start``: not past a row at which
        an acknowledgement of it is due (its reset needs its state as of that time)."""
        for item in self.pending:
            if item.breaker is breaker:
                if item.due is None:
                    return start
                stop = min(stop, bisect.bisect_left(times, item.due, start, stop))
        return stop

    def next_due(self) -> float:
        """The earliest due time (epoch seconds); ``-inf`` when one must be asked at each
        row, ``inf`` when none is pending."""
        due = math.inf
        for item in self.pending:
            if item.due is None:
                return -math.inf
            due = min(due, item.due)
        return due

    def act(self, clock: ManualClock, ts: float, when: datetime) -> None:
        """Reset every acknowledgement due at or before the row at ``ts`` (``when``), at
        its due time, in due order."""
        due: list[tuple[float, int, _Pending, datetime]] = []
        keep: list[_Pending] = []
        for order, item in enumerate(self.pending):
            if item.due is not None and item.due_at is not None:
                if item.due <= ts:
                    at = item.due_at if item.due_at <= when else when
                    due.append((item.due, order, item, at))
                    continue
            else:
                assert item.tracker is not None
                start = item.tracker.new_session(when)
                if start is not None:
                    due.append((start.timestamp(), order, item, start))
                    continue
            keep.append(item)
        self.pending = keep
        for _due, _order, item, at in sorted(due, key=lambda d: (d[0], d[1])):
            breaker = item.breaker
            details = breaker.get_trip_details()
            if details.get("tripped_at") != item.tripped_at or breaker.is_halted:
                continue  # that trip already cleared (or a halt is above it): nothing to do
            if at > clock.now():
                clock.set(at)
            breaker.reset(
                operator=REPLAY_OPERATOR,
                reason=f"simulated operator acknowledgement ({item.label})",
            )


def _accept(start: datetime, previous: datetime | None, context: None) -> bool:
    return True


def _fmt_delta(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def replay_rows(
    rows: Iterable[Row] | Iterable[Chunk],
    breakers: list[BaseCircuitBreaker] | None = None,
    *,
    fast: bool = True,
    keep_series: bool = False,
    reset_after: timedelta | None = None,
    reset_at_next_session: bool = False,
) -> ReplayResult:
    """Run ``breakers`` (default: the recommended minimum setup) over ``rows`` (row tuples
    from :func:`~haltgate.replay.read_rows`, or chunks from
    :func:`~haltgate.replay.rows.read_chunks`).

    The breakers must not have a clock of their own: they run on a fresh
    :class:`~haltgate.ManualClock` set to each row's time. ``fast=False`` calls the manager
    on every row (the reference the batch path is tested against). ``reset_after`` and
    ``reset_at_next_session`` simulate an operator who acknowledges a trip still in force
    that long after it tripped, or at the start of the next session of the breaker's
    calendar (a breaker without one: the first daily-loss breaker's, else midnight UTC).
    """
    if reset_after is not None and (
        not isinstance(reset_after, timedelta) or reset_after <= timedelta(0)
    ):
        raise InvalidInputError("reset_after", reset_after, "must be a positive timedelta")
    if breakers is None:
        breakers = default_breakers()
    for breaker in breakers:
        if breaker.has_own_clock:
            raise ReplayError(None, f"breaker {breaker.name!r} has its own clock; replay sets it")
    iterator = iter(rows)
    first = next(iterator, None)
    result = ReplayResult()
    if first is None:
        return result
    chunks: Iterator[Chunk]
    if isinstance(first, Chunk):
        chunks = _prepend(first, iterator)
    else:
        chunks = _chunks_of_rows(_prepend(first, iterator))
    chunk = next(chunks, None)
    while chunk is not None and not len(chunk):
        chunk = next(chunks, None)
    if chunk is None:
        return result
    start = chunk.when(0)
    clock = ManualClock(start)
    manager = CircuitBreakerManager(breakers=breakers, clock=clock)
    collector = _Collector(result)
    manager.add_listener(collector)
    ordered = manager.get_all_breakers()
    operator = _Operator(ordered, reset_after, reset_at_next_session)
    if operator.active:
        manager.add_listener(operator)
    run = _Run(manager, clock, result, ordered, operator, fast)
    last_chunk = chunk
    while chunk is not None:
        if len(chunk):
            run.chunk(chunk)
            if keep_series:
                result.times.extend(chunk.times)
                result.values.extend([float(v) for v in chunk.values])
            last_chunk = chunk
        chunk = next(chunks, None)
    end = last_chunk.when(len(last_chunk) - 1)
    if end > clock.now():
        clock.set(end)
    if keep_series:
        _plotted_peaks(result, ordered, collector)
    result.start = start
    result.end = end
    result.final_states = manager.get_status()
    if collector.halted_since is not None:
        result.halted_periods.append((collector.halted_since, end))
    return result


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


class _Run:
    """Feeds chunks of rows to the manager's breakers (see the module docstring)."""

    def __init__(
        self,
        manager: CircuitBreakerManager,
        clock: ManualClock,
        result: ReplayResult,
        ordered: list[BaseCircuitBreaker],
        operator: _Operator,
        fast: bool,
    ) -> None:
        self.manager = manager
        self.clock = clock
        self.result = result
        self.operator = operator
        self.feeds_value = manager.accepts_observation(_OBSERVATION)
        # The breakers the manager hands the value to, in its order, and the others.
        self.routed: list[BaseCircuitBreaker] = []
        self.others: list[BaseCircuitBreaker] = []
        for breaker in ordered:
            contract = type(breaker).contract
            if _OBSERVATION in contract.observes and contract.requires <= {_OBSERVATION}:
                self.routed.append(breaker)
            else:
                self.others.append(breaker)
        self.batch = [type(b).contract.batch for b in self.routed]
        # Of the others, those time can change at all (by their contracts): the rest read
        # the same at every row.
        self.timed = [_bound_of(b) for b in self.others if _timed(b)]
        # A breaker whose can_trade is user code is asked on every manager check: only the
        # reference feeds it exactly as a live manager would.
        self.fast = fast and not any(type(b).contract.asked for b in ordered)

    # ------------------------------------------------------------------ the reference
    def full_row(self, chunk: Chunk, index: int) -> None:
        """Row ``index`` exactly as the reference feeds it (a due acknowledgement first)."""
        when = chunk.when(index)
        if self.operator.pending:
            self.operator.act(self.clock, chunk.times[index], when)
        self.clock.set(when)
        if self.feeds_value:
            self.manager.can_trade(current_portfolio_value=chunk.values[index])
        else:
            self.manager.can_trade()
        self._counts(chunk, index)

    def _counts(self, chunk: Chunk, index: int) -> None:
        counts = chunk.counts.get(index)
        if counts is not None:
            self._record(counts)

    def _record(self, counts: tuple[int, int]) -> None:
        """A row's orders, then its errors, through the manager."""
        manager = self.manager
        result = self.result
        orders, errors = counts
        for _ in range(orders):
            if manager.record_order():
                result.orders_admitted += 1
            else:
                result.orders_refused += 1
        for _ in range(errors):
            if manager.record_error():
                result.errors_recorded += 1

    # ------------------------------------------------------------------ the batch path
    def chunk(self, chunk: Chunk) -> None:
        """Feed every row of ``chunk``.

        The value breakers run ahead through their batch paths to their next *step row*
        (one that changes a state or that a batch cannot judge); until then their state
        reads as it is now. The rest of each row (the reads of the other breakers where
        time may change them, orders, errors, due acknowledgements) is done in row order
        up to that step row; then the step row is fed to the breakers that stopped there,
        in the manager's order, and its rest follows."""
        size = len(chunk)
        self.result.rows += size
        if not self.fast:
            for index in range(size):
                self.full_row(chunk, index)
            return
        times, values = chunk.times, chunk.values
        routed, batch = self.routed, self.batch
        count = len(routed)
        position = [0] * count
        # A breaker whose batch path stopped at its position needs that row fed by hand
        # (through the same observation the manager would give it).
        feeds: list[Callable[..., bool]] = [b.can_trade for b in routed]
        stuck = [not b for b in batch]
        active = chunk.active
        upcoming = 0  # index into active
        row = 0  # the first row whose rest is not done yet
        quiet = self._quiet_until()
        operator = self.operator
        clock = self.clock
        while True:
            for j in range(count):
                if not stuck[j] and position[j] < size:
                    high = operator.limit(routed[j], times, position[j], size)
                    position[j] = routed[j].feed_batch(times, values, position[j], high)
                    stuck[j] = True
            frontier = min(position) if count else size
            while row < frontier:
                target = active[upcoming] if upcoming < len(active) else size
                bound = min(quiet, operator.next_due())
                if bound <= times[row]:
                    target = row
                elif target > row and bound <= times[target - 1]:
                    target = bisect.bisect_left(times, bound, row, target)
                if target >= frontier:
                    break
                when = chunk.when(target)
                if operator.pending:
                    operator.act(clock, times[target], when)
                    quiet = self._quiet_until()
                clock.set(when)
                quiet = self._rest(chunk, target, quiet)
                if upcoming < len(active) and active[upcoming] == target:
                    upcoming += 1
                row = target + 1
            if frontier >= size:
                return
            when = chunk.when(frontier)
            if operator.pending:
                operator.act(clock, times[frontier], when)
                quiet = self._quiet_until()
            clock.set(when)
            value = values[frontier]
            for j in range(count):
                if position[j] == frontier:
                    feeds[j](current_portfolio_value=value)
                    position[j] = frontier + 1
                    stuck[j] = not batch[j]
            if upcoming < len(active) and active[upcoming] == frontier:
                upcoming += 1
            quiet = self._rest(chunk, frontier, quiet)
            row = frontier + 1

    def _rest(self, chunk: Chunk, index: int, quiet: float) -> float:
        """What the reference does at row ``index`` besides feeding the value breakers (the
        clock already set): read the other breakers where time may change them, then the
        row's orders and errors. Returns the new quiet bound."""
        touched = False
        if quiet <= chunk.times[index]:
            # The reads of the reference's check; the value breakers are past this row
            # and read as they were at it (pure reads, no session can roll).
            self.manager.can_trade()
            touched = True
        counts = chunk.counts.get(index)
        if counts is not None:
            self._record(counts)
            touched = True
        return self._quiet_until() if touched else quiet

    def _quiet_until(self) -> float:
        """Epoch seconds before which time alone changes none of the breakers that observe
        no values (the manager would only read them)."""
        timed = self.timed
        if not timed:
            return math.inf
        until = timed[0]()
        for bound in timed[1:]:
            until = min(until, bound())
        if until == math.inf or until == -math.inf:
            return until
        # The ManualClock moves both readings by the same amount.
        clock = self.clock
        return clock.now().timestamp() + (until - clock.monotonic())


def _timed(breaker: BaseCircuitBreaker) -> bool:
    """Whether time alone may change ``breaker`` (else it reads the same at every row)."""
    contract = type(breaker).contract
    if contract.asked or contract.trips_by_time or contract.clears_by_time:
        return True
    # A user's class may change by time through hooks its contract does not declare.
    return not type(breaker).__module__.startswith("haltgate.")


def _never_quiet() -> float:
    return -math.inf


def _bound_of(breaker: BaseCircuitBreaker) -> Callable[[], float]:
    """``breaker.unchanged_by_time_until`` where it can be trusted: haltgate's own classes,
    or a class that defines it itself. A user's subclass of a haltgate breaker may clear or
    trip by rules of its own that the inherited bound knows nothing of: it is read at every
    row."""
    cls = type(breaker)
    owner = next(k for k in cls.__mro__ if "unchanged_by_time_until" in k.__dict__)
    if owner is cls or cls.__module__.startswith("haltgate."):
        return breaker.unchanged_by_time_until
    return _never_quiet


def _plotted_peaks(
    result: ReplayResult, ordered: list[BaseCircuitBreaker], collector: _Collector
) -> None:
    """The first drawdown breaker's peak at every row, on its own kind of window,
    restarted where it was reset (as its reset restarts it)."""
    source = next((b for b in ordered if isinstance(b, DrawdownCircuitBreaker)), None)
    if source is None:
        return
    window = source.new_peak_window()
    restarts = sorted(
        e.timestamp.timestamp()
        for e in result.events
        if e.breaker == source.name and e.kind == "reset"
    )
    following = 0
    shown: float | None = None
    last: Decimal | None = None
    for ts, value in zip(result.times, result.values, strict=True):
        while following < len(restarts) and restarts[following] <= ts:
            if last is not None:
                window.restart(restarts[following], last)
            following += 1
        last = Decimal(repr(value))
        peak = float(window.add(ts, last))
        if peak != shown:
            result.peaks.append((ts, peak))
            shown = peak


def replay_csv(
    path: str | Path,
    breakers: list[BaseCircuitBreaker] | None = None,
    *,
    keep_series: bool = False,
    on_progress: Callable[[int], None] | None = None,
    fast: bool = True,
    reset_after: timedelta | None = None,
    reset_at_next_session: bool = False,
) -> ReplayResult:
    """Replay a CSV file (see the module docstring for its format)."""
    with open_csv(path) as file:
        return replay_rows(
            read_chunks(file, on_progress=on_progress),
            breakers,
            fast=fast,
            keep_series=keep_series,
            reset_after=reset_after,
            reset_at_next_session=reset_at_next_session,
        )
