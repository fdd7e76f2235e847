"""``haltgate replay`` of a long equity series with the recommended setup (no ``--config``).

The CSV (``timestamp,portfolio_value,orders``: one-minute bars with ISO-8601 UTC
timestamps; a seeded random walk with a few crashes that trip the daily-loss breaker and a
deep one near the end that latches the drawdown breaker; 0-1 orders per bar and a few
bursts of 15 that trip the order-rate breaker) is generated in a temporary directory and
not timed. What is timed is the whole CLI, end to end, as a user runs it:
``python -c 'from haltgate.cli import main; main()' replay FILE --json`` in a subprocess
(interpreter start, imports, parsing, every breaker, JSON output); the figure is the median
wall-clock time of ``repeats`` runs.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .common import Config, Result, Row, Skip, Target

SECTION = "replay"
FULL_ROWS = 1_000_000
SMOKE_ROWS = 20_000
LIMIT_SECONDS = 3.0
ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from haltgate.cli import main; sys.exit(main())"


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    """A reproducible equity series with occasional crashes and bursts of orders."""
    rng = random.Random(seed)
    t = datetime(2024, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=1)
    value = 100_000.0
    period = max(rows // 8, 100)  # a few crashes and order bursts, whatever the length
    with path.open("w", encoding="ascii") as fh:
        fh.write("timestamp,portfolio_value,orders\n")
        lines = []
        for i in range(rows):
            value *= 1.0 + rng.gauss(0.000002, 0.0002)  # ~0.8 % a day
            if i % period == period // 2:
                value *= 0.93  # a crash: the daily-loss breaker should trip
            if i == rows * 9 // 10:
                value *= 0.85  # a deep one near the end: drawdown trips and stays latched
            orders = 15 if i % period == period // 4 else rng.choice((0, 0, 0, 0, 0, 0, 1))
            lines.append(f"{t.isoformat()},{value:.2f},{orders}\n")
            t += step
            if len(lines) >= 10_000:
                fh.writelines(lines)
                lines.clear()
        fh.writelines(lines)


def _available() -> None:
    for module in ("haltgate.cli", "haltgate.replay"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise Skip(f"{module} is not merged yet (branch operators): {exc}") from exc


def run(cfg: Config) -> Result:
    """Time the CLI over a generated CSV."""
    _available()
    rows = SMOKE_ROWS if cfg.smoke else FULL_ROWS
    repeats = 1 if cfg.smoke else 3
    result = Result(SECTION)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory(prefix="haltgate-bench-replay-") as tmp:
        csv = Path(tmp) / "equity.csv"
        write_csv(csv, rows)
        walls: list[float] = []
        summary: Any = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", CLI, "replay", str(csv), "--json"],
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=600,
            )
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"haltgate replay exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
                )
            doc = json.loads(proc.stdout)
            summary = doc.get("summary")
            events = doc.get("events", [])
        # The interpreter alone, for the analysis.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import haltgate.cli"], env=env, check=True)
        startup = time.perf_counter() - t0
    best = min(walls)
    med = statistics.median(walls)
    result.data.update(
        {
            "rows": rows,
            "walls": walls,
            "startup": startup,
            "summary": summary,
            "events": len(events),
        }
    )
    result.rows.append(
        Row(
            SECTION,
            f"haltgate replay of {rows:,} rows, recommended setup (CLI wall time)",
            f"{med:.2f} s",
            note=(
                f"median of {repeats} (best {best:.2f} s); {len(events)} events; "
                f"{rows / med / 1e3:,.0f}k rows/s; start-up + import {startup:.2f} s"
            ),
        )
    )
    result.targets.append(
        Target(
            f"haltgate replay of {rows:,} rows (CLI, median)",
            f"≤ {LIMIT_SECONDS:.1f} s" + (" (smoke: small file)" if cfg.smoke else ""),
            f"{med:.2f} s",
            med <= LIMIT_SECONDS,
        )
    )
    return result
