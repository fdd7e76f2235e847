"""Write ``examples/bars.csv``, the daily bars that ``docs/engine.md``'s example runs on.

Run it with ``python examples/make_bars.py`` (it rewrites the file; the output is the same
every time: a seeded generator, prices rounded to cents). 240 weekdays of one symbol
(``ASSET``) from Monday 2025-01-06, two bars a day: the open at 14:30 UTC, priced at the
previous close (no overnight gap, so a session's first value is the previous close), and
the close at 21:00 UTC:

- days 0-59: flat around 500;
- days 60-239: a slow slide of about 0.55 a day (over seven months the example's 100
  shares lose far more than 5,000, but no single day loses more than a few hundred);
- day 150 (2025-08-04): a one-day crash of 60 (6,000 on 100 shares), the only session whose
  loss exceeds the example's daily limit of 5,000.

So the example's daily-loss breaker must trip exactly once, on 2025-08-04, and clear at the
next session; the drawdown breaker (10 % over 30 days) must not trip.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

START = datetime(2025, 1, 6, 21, 0, tzinfo=UTC)  # the first close
DAYS = 240
CRASH_DAY = 150
CRASH = Decimal("60")
SEED = 20250106
CENT = Decimal("0.01")


def weekdays(start: datetime, count: int) -> list[datetime]:
    """``count`` weekday timestamps from ``start`` (a weekday) on."""
    days: list[datetime] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _row(stamp: datetime, opened: Decimal, close: Decimal, spread: Decimal) -> dict[str, str]:
    return {
        "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "symbol": "ASSET",
        "open": str(opened),
        "high": str(max(opened, close) + spread),
        "low": str(min(opened, close) - spread),
        "close": str(close),
    }


def rows() -> list[dict[str, str]]:
    """The bars, as CSV rows (timestamp, symbol, open, high, low, close)."""
    rng = random.Random(SEED)
    out: list[dict[str, str]] = []
    level = Decimal("500")
    previous = level
    for index, day in enumerate(weekdays(START, DAYS)):
        if index >= 60:
            level -= Decimal("0.55")
        if index == CRASH_DAY:
            level -= CRASH
        noise = Decimal(str(round(rng.uniform(-1.0, 1.0), 2)))
        close = (level + noise).quantize(CENT)
        spread = Decimal(str(round(rng.uniform(0.1, 1.5), 2)))
        out.append(_row(day.replace(hour=14, minute=30), previous, previous, spread))
        out.append(_row(day, previous, close, spread))
        previous = close
    return out


def write(path: Path) -> None:
    """Write the bars to ``path``."""
    data = rows()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("bars.csv")
    write(target)
    print(f"wrote {DAYS} days ({2 * DAYS} bars) to {target}")
