"""DataPortal: bars from CSV or any iterable; latest price per symbol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from haltgate import InvalidInputError
from haltgate.engine import Bar, DataPortal


def test_csv_bars_with_iso_and_epoch_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        "timestamp,symbol,open,high,low,close,volume\n"
        "2026-01-05T14:30:00,XYZ,100,101,99.5,100.5,1200\n"
        "1767623460,XYZ,100.5,100.7,98,99,800\n"
        "2026-01-05T14:32:00Z,ABC,20,20,20,20,\n"
    )
    portal = DataPortal.from_csv(path)
    bars = list(portal)
    assert [b.symbol for b in bars] == ["XYZ", "XYZ", "ABC"]
    assert bars[0].timestamp == datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    assert bars[1].timestamp == datetime(2026, 1, 5, 14, 31, tzinfo=UTC)
    assert bars[0].close == Decimal("100.5") and bars[0].low == Decimal("99.5")
    assert bars[2].volume is None
    assert portal.current_price("XYZ") == Decimal("99")
    assert portal.current_price("ABC") == Decimal("20")
    assert portal.current_price("NOPE") is None
    assert list(portal) == bars  # the file is read again on each iteration


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,price\n2026-01-05T14:30:00,100\n2026-01-05T14:31:00,NaN\n")
    portal = DataPortal.from_csv(path, symbol="BTC")
    with pytest.raises(InvalidInputError, match=r"bad\.csv line 3\.close"):
        list(portal)
    assert portal.current_price("BTC") == Decimal("100")
    header = tmp_path / "header.csv"
    header.write_text("when,value\n1,2\n")
    with pytest.raises(InvalidInputError, match="timestamp column"):
        list(DataPortal.from_csv(header))
    with pytest.raises(InvalidInputError, match="no such file"):
        DataPortal.from_csv(tmp_path / "missing.csv")


def test_any_iterable_of_mappings_or_bars() -> None:
    stamp = datetime(2026, 1, 5, tzinfo=UTC)
    portal = DataPortal(
        [
            {"timestamp": stamp, "close": 10},
            Bar(timestamp=stamp, symbol="ETH", close=Decimal("3000")),
            {"timestamp": "2026-01-05 00:01:00", "price": "10.5"},
        ]
    )
    bars = list(portal)
    assert [b.symbol for b in bars] == ["ASSET", "ETH", "ASSET"]
    assert portal.current_price("ASSET") == Decimal("10.5")
    with pytest.raises(InvalidInputError, match=r"bar\[1\]\.close"):
        list(DataPortal([{"timestamp": stamp, "close": -1}]))


def test_async_iterable_source() -> None:
    async def feed() -> AsyncIterator[dict[str, object]]:
        for i in range(3):
            yield {"timestamp": 1_767_600_000 + 60 * i, "close": 100 + i}

    async def collect() -> list[Bar]:
        return [bar async for bar in DataPortal(feed())]

    bars = asyncio.run(collect())
    assert [b.close for b in bars] == [100, 101, 102]


def test_bar_price_range_defaults_to_close() -> None:
    bar = Bar.of({"timestamp": 0, "close": 5})
    assert bar.low_price == bar.high_price == bar.open_price == Decimal(5)
