"""Reading a replay CSV: rows, their times, and errors that name the line."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import TextIO

from ..errors import HaltgateError, InvalidInputError
from ..values import DECIMAL_CONTEXT, to_decimal


class ReplayError(HaltgateError, ValueError):
    """The CSV cannot be replayed; ``line`` is its line number (1 = the header)."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


Row = tuple[int, datetime | None, float, str, float, int, int]
"""``(line, when, ts, value_text, value, orders, errors)``; ``when`` is ``None`` for whole
epoch seconds (made on demand, exactly ``ts``)."""


def row_time(row: Row) -> datetime:
    """The row's aware UTC time."""
    when = row[1]
    return when if when is not None else datetime.fromtimestamp(row[2], UTC)


def open_csv(path: str | Path) -> TextIO:
    """Open a replay CSV for :func:`read_rows` (``utf-8-sig``: spreadsheets often start a
    CSV with a byte-order mark; ``newline=""`` as the csv module needs)."""
    return open(path, newline="", encoding="utf-8-sig")


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


class Chunk:
    """Consecutive rows in columns, as the batch paths take them.

    ``times`` are epoch seconds; ``values`` the exact ``Decimal`` of each row's text,
    validated as the breakers' observations are (:func:`~haltgate.values.to_decimal`);
    ``counts`` maps the index of each row with orders or errors to ``(orders, errors)``
    (``active``: those indices in order); ``whens`` holds the aware datetime of each row
    whose time is not a whole second (elsewhere :meth:`when` makes it, exactly, from
    ``times``).
    """

    __slots__ = ("active", "counts", "lines", "times", "values", "whens")

    def __init__(self) -> None:
        self.lines: Sequence[int] = []
        self.times: list[float] = []
        self.values: list[Decimal] = []
        self.whens: dict[int, datetime] = {}
        self.counts: dict[int, tuple[int, int]] = {}
        self.active: list[int] = []

    def __len__(self) -> int:
        return len(self.times)

    def when(self, index: int) -> datetime:
        """The aware UTC time of row ``index``."""
        when = self.whens.get(index)
        return when if when is not None else datetime.fromtimestamp(self.times[index], UTC)

    def row(self, index: int) -> Row:
        """Row ``index`` as a :data:`Row` tuple."""
        orders, errors = self.counts.get(index, (0, 0))
        value = self.values[index]
        return (
            self.lines[index],
            self.whens.get(index),
            self.times[index],
            str(value),
            float(value),
            orders,
            errors,
        )


def _value(text: str, line: int) -> Decimal:
    """The row's value, exactly as the breakers' converter takes it, or a ReplayError."""
    try:
        value = Decimal(text, DECIMAL_CONTEXT)
    except InvalidOperation:
        raise ReplayError(line, f"portfolio_value={text!r} is not a number") from None
    if not value.is_finite():
        raise ReplayError(line, f"portfolio_value={text!r} must be finite")
    try:
        return to_decimal(value, "portfolio_value")
    except InvalidInputError as exc:
        raise ReplayError(line, f"portfolio_value={text!r}: {exc.problem}") from None


def read_chunks(
    lines: Iterable[str],
    *,
    size: int = 8192,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Chunk]:
    """Parse CSV lines (header first) into chunks of up to ``size`` rows, naming the line
    of any error."""
    if size < 1:
        raise ValueError(f"size must be at least 1, not {size!r}")
    counter = _ByteCounter(lines) if on_progress is not None else None
    source: Iterator[str] = iter(counter if counter is not None else lines)
    header: list[str] | None = None
    for text in source:
        header = _split(text)
        break
    if header is None:
        raise ReplayError(None, "the CSV is empty (expected a header: timestamp,portfolio_value)")
    columns = [h.strip().lower() for h in header]
    for needed in ("timestamp", "portfolio_value"):
        if needed not in columns:
            raise ReplayError(1, f"the header has no {needed!r} column (found: {header})")
    state = _State(columns)
    line = 1
    while True:
        block = list(islice(source, size))
        if not block:
            break
        chunk = state.fast(block, line + 1)
        if chunk is None:
            chunk = state.slow(block, line + 1)
        line += len(block)
        if chunk.times:
            yield chunk
        if counter is not None:
            on_progress(counter.bytes)  # type: ignore[misc]
    if counter is not None:
        on_progress(counter.bytes)  # type: ignore[misc]


class _State:
    """The columns, the file's kind of timestamp (decided by its first row) and the last
    time read, across the blocks of one CSV."""

    def __init__(self, columns: list[str]) -> None:
        self.i_ts = columns.index("timestamp")
        self.i_val = columns.index("portfolio_value")
        self.i_ord = columns.index("orders") if "orders" in columns else -1
        self.i_err = columns.index("errors") if "errors" in columns else -1
        self.width = max(self.i_ts, self.i_val, self.i_ord, self.i_err) + 1
        self.ncols = len(columns)
        self.epoch: bool | None = None
        self.last_ts = -math.inf

    def fast(self, block: list[str], first: int) -> Chunk | None:
        """The block parsed column by column (the common case: no quotes, no blank lines,
        every value plain, times in order), or ``None``: then :meth:`slow` reads it row by
        row and names the line of any error. Changes nothing when it returns ``None``."""
        joined = "".join(block)
        if '"' in joined:
            return None
        if "\r" in joined:
            joined = joined.replace("\r\n", "\n")
            if "\r" in joined:
                return None
        # Every line with exactly the header's number of fields: then the fields of the
        # whole block, split at once, fall into columns by position (no list per row).
        ncols = self.ncols
        commas = [text.count(",") for text in block]
        if min(commas) != ncols - 1 or max(commas) != ncols - 1:
            return None
        fields = joined.replace("\n", ",").split(",")
        rows = len(block)
        if len(fields) == ncols * rows + 1 and fields[-1] == "":
            fields.pop()
        if len(fields) != ncols * rows:
            return None
        stamps = fields[self.i_ts :: ncols]
        cells = fields[self.i_val :: ncols]
        counted: list[tuple[int, str, str]] = []
        if self.i_ord >= 0 or self.i_err >= 0:
            order_cells = fields[self.i_ord :: ncols] if self.i_ord >= 0 else ["0"] * rows
            error_cells = fields[self.i_err :: ncols] if self.i_err >= 0 else ["0"] * rows
            for index, (order, error) in enumerate(zip(order_cells, error_cells, strict=True)):
                if order != "0" or error != "0":
                    counted.append((index, order, error))
        epoch = self.epoch
        if epoch is None:
            epoch = _is_epoch(stamps[0])
        whens: dict[int, datetime] = {}
        try:
            if epoch:
                if not all(map(str.isdigit, stamps)):
                    return None
                times = list(map(float, stamps))
            else:
                parsed = list(map(datetime.fromisoformat, stamps))
                if None in map(_TZINFO, parsed):
                    parsed = [
                        when.replace(tzinfo=UTC) if when.tzinfo is None else when for when in parsed
                    ]
                times = list(map(datetime.timestamp, parsed))
                for index, when in enumerate(parsed):
                    if when.microsecond:
                        whens[index] = when
            # Exact whatever the context (a constructor never rounds); a context that does
            # not trap a malformed string gives NaN, refused below.
            values = list(map(Decimal, cells))
        except (ValueError, OverflowError, OSError, InvalidOperation):
            return None
        # sorted() of rows in order is one linear pass (its runs are found, not sorted).
        if times[0] < self.last_ts or times != sorted(times):
            return None
        # Values as the breakers' converter takes them: few characters (so few digits),
        # finite, an exponent well inside the accepted range; anything else row by row.
        if max(map(len, cells)) > 25 or not all(map(Decimal.is_finite, values)):
            return None
        exponents = list(map(Decimal.adjusted, values))
        if min(exponents) <= -390 or max(exponents) >= 29:
            return None
        chunk = Chunk()
        counts = chunk.counts
        for index, order, error in counted:
            line = first + index
            orders = _parse_count(order, "orders", line)
            errors = _parse_count(error, "errors", line)
            if orders or errors:
                counts[index] = (orders, errors)
                chunk.active.append(index)
        chunk.lines = range(first, first + len(block))
        chunk.times = times
        chunk.values = values
        chunk.whens = whens
        self.epoch = epoch
        self.last_ts = times[-1]
        return chunk

    def slow(self, block: list[str], first: int) -> Chunk:
        """The block read row by row (quotes, blank lines, values and times checked one at a
        time), naming the line of the first error."""
        i_ts, i_val, i_ord, i_err, width = self.i_ts, self.i_val, self.i_ord, self.i_err, self.width
        chunk = Chunk()
        lines: list[int] = []
        chunk.lines = lines
        for offset, text in enumerate(block):
            line = first + offset
            record = text.rstrip("\r\n").split(",") if '"' not in text else _split(text)
            if len(record) < width:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                raise ReplayError(line, f"expected {width} columns, found {len(record)}")
            stamp = record[i_ts]
            if self.epoch is None:
                self.epoch = _is_epoch(stamp)
            epoch = self.epoch
            when: datetime | None = None
            try:
                if epoch:
                    if stamp.isdigit():
                        # Whole seconds: the float is exact and so is the datetime made later.
                        ts = float(stamp)
                    else:
                        when = datetime.fromtimestamp(float(stamp), UTC)
                        ts = when.timestamp()
                else:
                    when = datetime.fromisoformat(stamp.strip())
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=UTC)
                    ts = when.timestamp()
            except (ValueError, OverflowError, OSError):
                kind = "epoch seconds" if epoch else "an ISO-8601 time"
                raise ReplayError(line, f"timestamp {stamp!r} is not {kind}") from None
            if ts < self.last_ts:
                raise ReplayError(line, f"timestamp {stamp!r} goes backwards")
            self.last_ts = ts
            value = _value(record[i_val], line)
            orders = errors = 0
            if i_ord >= 0:
                orders = _parse_count(record[i_ord], "orders", line)
            if i_err >= 0:
                errors = _parse_count(record[i_err], "errors", line)
            index = len(chunk.times)
            if orders or errors:
                chunk.counts[index] = (orders, errors)
                chunk.active.append(index)
            if when is not None and when.microsecond:
                # Whole seconds are made again from ``ts``, exactly (Chunk.when).
                chunk.whens[index] = when
            lines.append(line)
            chunk.times.append(ts)
            chunk.values.append(value)
        return chunk


def _split(text: str) -> list[str]:
    """One CSV line's fields (quotes as the csv module reads them)."""
    return next(csv.reader([text]), [])


def read_rows(
    lines: Iterable[str], *, on_progress: Callable[[int], None] | None = None
) -> Iterator[Row]:
    """Parse CSV lines (header first) into rows, naming the line of any error."""
    for chunk in read_chunks(lines, on_progress=on_progress):
        for index in range(len(chunk)):
            yield chunk.row(index)


_TZINFO = attrgetter("tzinfo")


def _is_epoch(stamp: str) -> bool:
    """The first row decides: epoch seconds (a number) or ISO-8601 (naive = UTC)."""
    try:
        float(stamp)
    except ValueError:
        return False
    return True


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
