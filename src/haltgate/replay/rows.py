"""Reading a replay CSV: rows, their times, and errors that name the line."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..errors import HaltgateError


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
