"""Two deterministic equity series to try ``haltgate replay`` and its plot on.

Run ``python examples/replay_series.py OUTDIR``: it writes to OUTDIR

* ``monthly-30y.csv``: month ends 1995-2024 of a 1,000,000 portfolio that follows the
  shape of a broad stock index (a 2000-2002 slide of about 45 %, 2008, a short 2020 drop,
  2022), with a burst of orders in a few months;
* ``monthly-30y.toml``: a drawdown breaker with a one-year look-back (the default 30 days
  is shorter than the spacing of monthly rows, which the replay warns about) and an
  order-rate breaker;
* ``daily-1y.csv``: weekday closes of 2024 with three sharp falls and a few order bursts;
* ``monthly-30y.png`` and ``daily-1y.png``: the replay plots (needs the ``plot`` extra),

and prints each replay's report. Nothing is random at run time: the noise is seeded.
"""

from __future__ import annotations

import io
import math
import random
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

MONTHLY_CONFIG = """\
[[breakers]]
type = "drawdown"
max_drawdown_pct = "0.20"
lookback_days = 365

[[breakers]]
type = "order_rate"
max_orders_per_minute = 10
"""

# (year, month, yearly drift while it lasts): the index's broad moves, month by month.
_REGIMES = [
    (1995, 1, 0.20),
    (2000, 9, -0.22),  # the 2000-2002 slide
    (2002, 10, 0.14),
    (2007, 10, -0.40),  # 2008
    (2009, 3, 0.18),
    (2020, 2, -2.0),  # a sharp, short drop
    (2020, 4, 0.25),
    (2022, 1, -0.22),
    (2022, 10, 0.17),
]


def _month_end(year: int, month: int) -> datetime:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return datetime.combine(first_next - timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def monthly_30y() -> str:
    """The monthly CSV text (``timestamp,portfolio_value,orders``)."""
    rng = random.Random(1995)
    value = 1_000_000.0
    lines = ["timestamp,portfolio_value,orders"]
    drift = _REGIMES[0][2]
    for year in range(1995, 2025):
        for month in range(1, 13):
            for y, m, d in _REGIMES:
                if (y, m) == (year, month):
                    drift = d
            value *= math.exp(drift / 12 + rng.gauss(0, 0.03))
            # A runaway order loop in three months: the order-rate breaker trips each time.
            orders = 25 if (year, month) in ((1998, 6), (2005, 3), (2016, 11)) else 1
            lines.append(f"{_month_end(year, month).date().isoformat()},{value:.2f},{orders}")
    return "\n".join(lines) + "\n"


def daily_1y() -> str:
    """The daily CSV text: weekday closes (21:00 UTC) of 2024."""
    rng = random.Random(2024)
    value = 250_000.0
    lines = ["timestamp,portfolio_value,orders"]
    day = date(2024, 1, 1)
    crashes = {date(2024, 3, 14): 0.09, date(2024, 8, 5): 0.07, date(2024, 8, 6): 0.06}
    bursts = {date(2024, 2, 2), date(2024, 2, 5), date(2024, 10, 15)}
    while day.year == 2024:
        if day.weekday() < 5:
            value *= 1 + rng.gauss(0.0004, 0.009)
            value *= 1 - crashes.get(day, 0.0)
            orders = 12 if day in bursts else rng.choice((0, 1, 2))
            stamp = datetime.combine(day, datetime.min.time()) + timedelta(hours=21)
            lines.append(f"{stamp.isoformat()},{value:.2f},{orders}")
        day += timedelta(days=1)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Write the series (and their plots) to the directory ``argv[0]``."""
    import tomllib

    from haltgate.config import parse_config
    from haltgate.replay import (
        default_breakers,
        plot_replay,
        print_report,
        read_rows,
        replay_rows,
    )
    from haltgate.replay.report import replay_setup

    out = Path(argv[0] if argv else ".")
    out.mkdir(parents=True, exist_ok=True)
    (out / "monthly-30y.toml").write_text(MONTHLY_CONFIG)
    config = parse_config(tomllib.loads(MONTHLY_CONFIG), source=str(out / "monthly-30y.toml"))
    for name, text, breakers, source in (
        ("monthly-30y", monthly_30y(), config.build_breakers(), config.source),
        ("daily-1y", daily_1y(), default_breakers(), None),
    ):
        (out / f"{name}.csv").write_text(text)
        rows = list(read_rows(io.StringIO(text)))
        result = replay_rows(rows, breakers, keep_series=True)
        setup = replay_setup(breakers, [row[2] for row in rows], config=source)
        print(f"== {name}")
        print_report(result, sys.stdout, setup=setup)
        try:
            plot_replay(result, out / f"{name}.png", title=f"haltgate replay: {name}")
        except Exception as exc:  # the plot extra is optional
            print(f"(no plot: {exc})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
