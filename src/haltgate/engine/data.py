"""Bars and the data portal: where the engine and the paper broker get prices.

A :class:`DataPortal` reads bars from a CSV file or from any iterable (or async iterable)
of :class:`Bar` objects or mappings, and remembers the latest bar of each symbol. It also
says whether its bars are historical (a CSV file or a sync iterable that has bars) or a live
feed (an async iterable, or no bars of its own): the engine lets historical bars drive its
clock (see :class:`~haltgate.engine.live.LiveTradingEngine`).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..values import to_decimal, to_text

__all__ = ["Bar", "DataPortal", "parse_timestamp"]

DEFAULT_SYMBOL = "ASSET"


def parse_timestamp(value: Any, name: str = "timestamp") -> datetime:
    """An aware UTC datetime from a datetime, ISO-8601 text (naive = UTC) or epoch seconds."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        stamp = datetime.fromtimestamp(float(to_decimal(value, name)), UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            stamp = datetime.fromtimestamp(float(Decimal(text)), UTC)
        except (ArithmeticError, ValueError, OverflowError):
            try:
                stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInputError(
                    name, value, "not an ISO-8601 time or epoch seconds"
                ) from None
    else:
        raise InvalidTypeError(name, value, "must be a datetime, ISO-8601 text or epoch seconds")
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Bar:
    """One price bar of one symbol. ``open``/``high``/``low`` default to ``close``."""

    timestamp: datetime
    symbol: str
    close: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None

    @classmethod
    def of(
        cls,
        raw: Bar | Mapping[str, Any],
        *,
        default_symbol: str = DEFAULT_SYMBOL,
        where: str = "bar",
    ) -> Bar:
        """A validated bar from a :class:`Bar` or a mapping with ``timestamp``, ``close``
        (or ``price``) and optional ``symbol``, ``open``, ``high``, ``low``, ``volume``."""
        if isinstance(raw, Bar):
            return raw
        if not isinstance(raw, Mapping):
            raise InvalidTypeError(where, raw, "must be a Bar or a mapping")
        if "timestamp" not in raw:
            raise InvalidInputError(f"{where}.timestamp", None, "missing")
        price = raw.get("close", raw.get("price"))
        if price is None or price == "":
            raise InvalidInputError(f"{where}.close", price, "missing (column close or price)")
        close = _price(price, f"{where}.close")

        def optional(key: str) -> Decimal | None:
            value = raw.get(key)
            if value is None or value == "":
                return None
            return _price(value, f"{where}.{key}", allow_zero=key == "volume")

        symbol = raw.get("symbol") or default_symbol
        return cls(
            timestamp=parse_timestamp(raw["timestamp"], f"{where}.timestamp"),
            symbol=to_text(symbol, f"{where}.symbol"),
            close=close,
            open=optional("open"),
            high=optional("high"),
            low=optional("low"),
            volume=optional("volume"),
        )

    @property
    def low_price(self) -> Decimal:
        """The lowest traded price of the bar (``close`` when no low is given)."""
        return min(p for p in (self.low, self.open, self.close) if p is not None)

    @property
    def high_price(self) -> Decimal:
        """The highest traded price of the bar (``close`` when no high is given)."""
        return max(p for p in (self.high, self.open, self.close) if p is not None)

    @property
    def open_price(self) -> Decimal:
        """The first price of the bar (``close`` when no open is given)."""
        return self.open if self.open is not None else self.close


def _price(value: Any, name: str, *, allow_zero: bool = False) -> Decimal:
    number = to_decimal(value, name)
    if number < 0 or (number == 0 and not allow_zero):
        raise InvalidInputError(name, value, "must be greater than 0")
    return number


class DataPortal:
    """Bars for the engine, and the latest price of each symbol for the paper broker.

    ``bars`` is any iterable or async iterable of :class:`Bar` objects or mappings; use
    :meth:`from_csv` for a file. Iterating the portal (``for`` or ``async for``) yields
    validated bars and records each one as the symbol's current bar before yielding it.
    Bars without a symbol get ``symbol`` (default ``"ASSET"``).

    ``historical`` says whether the bars are history (their timestamps are the time to run
    on) or a live feed (the system clock is the time). By default (``None``) a CSV file and
    a sync iterable that yields at least one bar are historical; an async iterable and a
    portal without bars of its own (bars pushed with :meth:`update` or
    ``engine.process_bar``) are live. Deciding it reads the first bar of a sync iterable
    (a one-shot iterator keeps that bar for the run): a blocking live feed should be an
    async iterable or pass ``historical=False``.
    """

    def __init__(
        self,
        bars: Iterable[Bar | Mapping[str, Any]] | AsyncIterable[Bar | Mapping[str, Any]] = (),
        *,
        symbol: str = DEFAULT_SYMBOL,
        historical: bool | None = None,
    ) -> None:
        if not isinstance(bars, (Iterable, AsyncIterable)):
            raise InvalidTypeError("bars", bars, "must be an iterable of bars")
        if historical is not None and not isinstance(historical, bool):
            raise InvalidTypeError("historical", historical, "must be True, False or None")
        self._source: Iterable[Any] | AsyncIterable[Any] = bars
        self.default_symbol = to_text(symbol, "symbol")
        self._latest: dict[str, Bar] = {}
        self._last: Bar | None = None
        self._historical = historical
        self._first: Any = _UNREAD

    @property
    def historical(self) -> bool:
        """Whether the bars are history (drive the engine's clock) rather than a live feed."""
        if self._historical is not None:
            return self._historical
        if not isinstance(self._source, Iterable):
            return False  # an async iterable: a live feed
        return self._peek() is not None

    def first_timestamp(self) -> datetime | None:
        """The timestamp of the first bar the portal will yield, or ``None`` (no bars, an
        async source, or a first bar too broken to read: iterating then raises naming it)."""
        first = self._peek()
        if first is None:
            return None
        try:
            return Bar.of(first, default_symbol=self.default_symbol).timestamp
        except (InvalidInputError, InvalidTypeError):
            return None

    def _peek(self) -> Any:
        """The first raw bar of a sync source (read once), or ``None``."""
        if self._first is not _UNREAD:
            return self._first
        source = self._source
        first: Any = None
        if isinstance(source, Sequence):
            first = source[0] if len(source) else None
        elif isinstance(source, Iterable):
            iterator = iter(source)
            first = next(iterator, None)
            if iterator is source:
                if first is not None:
                    # A one-shot iterator: the bar read here must still be yielded.
                    self._source = itertools.chain((first,), iterator)
            else:
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()  # e.g. the CSV file opened to read the first row
        self._first = first
        return first

    @classmethod
    def from_csv(cls, path: str | Path, *, symbol: str = DEFAULT_SYMBOL) -> DataPortal:
        """Bars from a CSV file with a header: ``timestamp`` and ``close`` (or ``price``),
        optional ``symbol``, ``open``, ``high``, ``low``, ``volume``. Timestamps are
        ISO-8601 (naive = UTC) or epoch seconds. The file is read as the portal is iterated;
        a bad row raises naming its line."""
        file = Path(path)
        if not file.is_file():
            raise InvalidInputError("path", str(path), "no such file")
        return cls(_CsvRows(file), symbol=symbol)

    # ------------------------------------------------------------------ prices
    def update(self, bar: Bar | Mapping[str, Any]) -> Bar:
        """Record ``bar`` as its symbol's current bar (for data pushed from elsewhere)."""
        checked = Bar.of(bar, default_symbol=self.default_symbol)
        self._latest[checked.symbol] = checked
        self._last = checked
        return checked

    def current_bar(self, symbol: str) -> Bar | None:
        """The latest bar of ``symbol``, or ``None`` before its first bar."""
        return self._latest.get(symbol)

    def current_price(self, symbol: str) -> Decimal | None:
        """The latest close of ``symbol``, or ``None`` before its first bar."""
        bar = self._latest.get(symbol)
        return None if bar is None else bar.close

    @property
    def symbols(self) -> list[str]:
        """Every symbol seen so far."""
        return list(self._latest)

    @property
    def last_bar(self) -> Bar | None:
        """The most recent bar of any symbol."""
        return self._last

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[Bar]:
        for bar, _where in self.validated():
            self.record(bar)
            yield bar

    async def __aiter__(self) -> AsyncIterator[Bar]:
        async for bar, _where in self.avalidated():
            self.record(bar)
            yield bar

    def validated(self) -> Iterator[tuple[Bar, str]]:
        """Each bar validated, with where it came from (``"bars.csv line 3"``,
        ``"bar[2]"``), *not* yet recorded: for a consumer (the engine) that checks a bar
        before it counts (then calls :meth:`record`)."""
        source = self._source
        if not isinstance(source, Iterable):
            raise InvalidTypeError("bars", source, "is async: use `async for`")
        for index, raw in enumerate(source, start=1):
            where = raw.where if isinstance(raw, _Row) else f"bar[{index}]"
            yield Bar.of(raw, default_symbol=self.default_symbol, where=where), where

    async def avalidated(self) -> AsyncIterator[tuple[Bar, str]]:
        """:meth:`validated` for ``async for`` (sync and async sources)."""
        source = self._source
        if isinstance(source, AsyncIterable):
            index = 0
            async for raw in source:
                index += 1
                where = f"bar[{index}]"
                yield Bar.of(raw, default_symbol=self.default_symbol, where=where), where
        else:
            for item in self.validated():
                yield item

    def record(self, bar: Bar) -> Bar:
        """Record a validated bar as its symbol's current bar."""
        self._latest[bar.symbol] = bar
        self._last = bar
        return bar

    def update_checked(self, raw: Bar | Mapping[str, Any], where: str) -> Bar:
        """Validate one raw bar (errors name ``where``) and record it."""
        return self.record(Bar.of(raw, default_symbol=self.default_symbol, where=where))


_UNREAD = object()


class _Row(dict[str, str]):
    """A CSV row that remembers its line for error messages."""

    where: str = ""


class _CsvRows:
    """Re-iterable rows of a CSV file, read lazily."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[_Row]:
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = {f.strip().lower() for f in reader.fieldnames or ()}
            if "timestamp" not in fields or not ({"close", "price"} & fields):
                raise InvalidInputError(
                    "csv header",
                    reader.fieldnames,
                    "needs a timestamp column and a close (or price) column",
                )
            for row in reader:
                clean = _Row(
                    {
                        (k or "").strip().lower(): (v or "").strip()
                        for k, v in row.items()
                        if k is not None
                    }
                )
                clean.where = f"{self.path.name} line {reader.line_num}"
                yield clean
