"""docs/engine.md's first example runs as written, from the repository root, and prints what
the page says; the bars it reads are the ones examples/make_bars.py makes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import haltgate

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "engine.md"
EXAMPLE = re.search(
    r"```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```\n",
    PAGE.read_text(encoding="utf-8"),
    re.S,
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(haltgate.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("HALTGATE_CONFIG", None)
    env.pop("HALTGATE_STORE", None)
    return env


def test_the_page_opens_with_an_example_and_what_it_prints() -> None:
    assert EXAMPLE is not None
    code, _ = EXAMPLE.groups()
    assert 'DataPortal.from_csv("examples/bars.csv")' in code
    assert "LiveTradingEngine(" in code and "circuit_breakers=coordinator" in code


def test_the_example_runs_as_written_from_the_repository_root() -> None:
    assert EXAMPLE is not None
    code, expected = EXAMPLE.groups()
    before = sorted(p.name for p in ROOT.iterdir())
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected
    # What it prints is the point: daily loss trips on the crash bar's date (and clears at
    # the next session), not on the day the example was run; the drawdown does not trip.
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    assert today not in done.stdout
    assert done.stdout.startswith("2025-08-04 daily_loss tripped:")
    assert "clock from bars" in done.stdout
    assert sorted(p.name for p in ROOT.iterdir()) == before  # it leaves no file behind


def test_the_shipped_bars_are_what_the_generator_makes(tmp_path: Path) -> None:
    target = tmp_path / "bars.csv"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_bars.py"), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    shipped = (ROOT / "examples" / "bars.csv").read_bytes()
    assert target.read_bytes() == shipped
    assert len(shipped.splitlines()) <= 500  # small: a header and 480 bars
