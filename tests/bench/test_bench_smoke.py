"""The benchmarks must run: ``bench/run.py --smoke`` completes and prints every section.

Timings are not asserted (the machine is shared and smoke counts are tiny); what is
asserted is that the command succeeds, every section ran (none skipped: every piece is
merged and CI installs redis-server), each target got a PASS/MISS verdict line, and the
JSON holds the same sections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("callbreaker", "checks", "manager", "memory", "redis", "replay")


@pytest.mark.timeout(180)
def test_bench_smoke_runs_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    text = proc.stdout
    for name in SECTIONS:
        assert f"== {name} ..." in text
        assert f"   {name} done in" in text
    assert "targets:" in text
    assert "(section failed)" not in text
    doc = json.loads(out.read_text())
    results = {r["section"]: r for r in doc["results"]}
    assert len(results) == len(SECTIONS)
    verdicts = [line for line in text.splitlines() if line.startswith(("  PASS", "  MISS"))]
    expected_targets = sum(len(r["targets"]) for r in results.values())
    assert expected_targets > 0
    assert len(verdicts) == expected_targets
    # Every piece is merged and CI installs redis-server: no section may be skipped, and
    # each one measured something.
    for res in results.values():
        assert res["skipped"] is None, (res["section"], res["skipped"])
        assert res["rows"], res["section"]
        assert res["targets"], res["section"]
    assert "  SKIP  " not in text
    checks = results["checks"]
    assert [t["name"] for t in checks["targets"]] == [
        "admit_order() admitted: all ten checks minus none"
    ]
    manager = results["manager"]
    names = {t["name"] for t in manager["targets"]}
    assert "manager.can_trade() vs a bare function call" in names
    assert sum(name.startswith("manager.record_order() admitted") for name in names) == 3
