"""Run every haltgate benchmark and print one table with ratios and PASS/MISS per target.

    python bench/run.py [--smoke] [--json out.json] [--markdown out.md] [--only SECTION ...]

``--smoke`` uses tiny iteration counts (finishes in well under a minute) and still runs
every section; its timings mean nothing. Sections whose piece is not available print why
they were skipped. Exit status: 0 when everything ran (targets missed or not), 1 when a
section failed with an error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT / "src"), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench.common import Config, Result, Row, Skip  # noqa: E402

SECTIONS = {
    "callbreaker": "bench.callbreaker",
    "checks": "bench.checks",
    "manager": "bench.manager",
    "memory": "bench.memory",
    "redis": "bench.redis_rt",
    "replay": "bench.replay",
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    versions: dict[str, str] = {}
    for dist in ("pybreaker", "circuitbreaker", "purgatory", "redis"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    server = shutil.which("redis-server")
    if server is not None:
        try:
            out = subprocess.run(
                [server, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
            versions["redis-server"] = next(
                (w.removeprefix("v=") for w in out.split() if w.startswith("v=")), out.strip()
            )
        except (OSError, subprocess.SubprocessError):
            versions["redis-server"] = "?"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in load],
        "versions": versions,
    }


def render(results: list[Result]) -> str:
    """The result table and the target lines."""
    header = ("section", "case", "haltgate", "peer", "ratio", "note")
    rows: list[tuple[str, ...]] = []
    for res in results:
        if res.skipped:
            rows.append((res.section, "(section skipped)", "", "", "", res.skipped))
        for row in res.rows:
            rows.append((row.section, row.case, row.haltgate, row.peer, row.ratio, row.note))
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    widths[-1] = len(header[-1])

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out.append("")
    out.append("targets:")
    for res in results:
        for t in res.targets:
            verdict = "PASS" if t.passed else "MISS"
            out.append(f"  {verdict}  {t.name}: {t.measured} (target {t.limit})")
        if res.skipped:
            out.append(f"  SKIP  {res.section}: {res.skipped}")
    return "\n".join(out)


def render_markdown(results: list[Result], info: dict[str, Any], cfg: Config) -> str:
    """The same table and target lines as Markdown (for docs/benchmarks.md)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = [
        f"Machine: {info['nproc']} CPUs, {info['cpu']}, {info['implementation']} "
        f"{info['python']}, {info['platform']}; load average at start {info['loadavg']}; "
        f"{cfg.rounds} rounds{' (smoke)' if cfg.smoke else ''}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        + ".",
        "",
        "| section | case | haltgate | peer | ratio | note |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        if res.skipped:
            out.append(f"| {res.section} | (section skipped) | | | | {cell(res.skipped)} |")
        for r in res.rows:
            cells = (r.section, r.case, r.haltgate, r.peer, r.ratio, r.note)
            out.append("| " + " | ".join(cell(c) for c in cells) + " |")
    out += ["", "| target | limit | measured | verdict |", "|---|---|---|---|"]
    for res in results:
        for t in res.targets:
            verdict = "PASS" if t.passed else "**MISS**"
            out.append(f"| {cell(t.name)} | {t.limit} | {t.measured} | {verdict} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; print the table; optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny counts: check it all runs")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="run these only")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 31)")
    args = parser.parse_args(argv)
    if args.smoke:
        cfg = Config(smoke=True, rounds=args.rounds or 3, batch=300)
    else:
        cfg = Config(smoke=False, rounds=args.rounds or 31, batch=20_000)
    info = machine()
    print(
        f"haltgate benchmarks{' (smoke: timings meaningless)' if cfg.smoke else ''}: "
        f"{info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"load {info['loadavg']}; {cfg.rounds} rounds; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        flush=True,
    )
    results: list[Result] = []
    failed = False
    started = time.monotonic()
    for name in args.only or SECTIONS:
        t0 = time.monotonic()
        print(f"== {name} ...", flush=True)
        try:
            module = importlib.import_module(SECTIONS[name])
            res: Result = module.run(cfg)
        except Skip as skip:
            res = Result(name, skipped=str(skip))
        except Exception as exc:
            traceback.print_exc()
            res = Result(name, rows=[Row(name, "(section failed)", "", "", "", repr(exc))])
            failed = True
        res.data["seconds"] = round(time.monotonic() - t0, 2)
        results.append(res)
        print(
            f"   {name} done in {res.data['seconds']} s"
            + (f" (skipped: {res.skipped})" if res.skipped else ""),
            flush=True,
        )
    print()
    print(render(results))
    print(f"\ntotal {time.monotonic() - started:.1f} s")
    if args.json:
        payload = {"machine": info, "config": asdict(cfg), "results": [asdict(r) for r in results]}
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    if args.markdown:
        args.markdown.write_text(render_markdown(results, info, cfg))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
