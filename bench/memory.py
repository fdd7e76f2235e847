"""Memory growth of a runaway order loop: N ``record_order()`` attempts.

Each measurement runs in a fresh subprocess (``python -m bench.memory``) so earlier
sections' allocations cannot hide or inflate the growth. Two scenarios on the guide's
recommended setup (10 orders/min):
- "system clock": the real clock; after 10 admitted orders every attempt is refused
  (the breaker trips; each refusal builds and emits an ``order_refused`` event);
- "manual clock +1 ms": a ManualClock advanced 1 ms per attempt, so the window keeps
  expiring, admitting, tripping and clearing (N = 10⁶ spans 1000 simulated seconds).
Two instruments, in separate processes (tracemalloc itself costs memory): RSS from
/proc/self/status (growth of VmRSS, and of the high-water mark VmHWM over the starting
RSS), and tracemalloc (traced memory still held afterwards, and its peak). Growth is
measured after a 10,000-attempt warm-up and ``gc.collect()``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from .common import Config, Result, Row, Target

SECTION = "memory"
LIMIT_BYTES = 5 * 1024 * 1024
FULL_ATTEMPTS = 1_000_000
SMOKE_ATTEMPTS = 20_000
WARMUP = 10_000
ROOT = Path(__file__).resolve().parent.parent


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(attempts: int, scenario: str, instrument: str) -> dict[str, Any]:
    """Run the loop in this process and return the growth figures."""
    from haltgate import ManualClock

    from .setups import recommended_manager

    clock = ManualClock() if scenario == "manual" else None
    mgr = recommended_manager(clock=clock)
    record = mgr.record_order
    advance = clock.advance if clock is not None else None

    def loop(n: int) -> int:
        admitted = 0
        if advance is None:
            for _ in range(n):
                admitted += record()
        else:
            for _ in range(n):
                advance(0.001)
                admitted += record()
        return admitted

    loop(WARMUP)
    gc.collect()
    out: dict[str, Any] = {"attempts": attempts, "scenario": scenario, "instrument": instrument}
    if instrument == "tracemalloc":
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        out["admitted"] = loop(attempts)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["growth_bytes"] = current - base
        out["peak_growth_bytes"] = peak - base
    else:
        rss0 = _status_kib("VmRSS")
        out["admitted"] = loop(attempts)
        gc.collect()
        rss1 = _status_kib("VmRSS")
        hwm = _status_kib("VmHWM")
        out["growth_bytes"] = (rss1 - rss0) * 1024
        out["peak_growth_bytes"] = max(0, hwm - rss0) * 1024
    out["order_count_after"] = mgr.get_breaker("order_rate").get_order_count()  # type: ignore[union-attr]
    return out


def _spawn(attempts: int, scenario: str, instrument: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    cmd = [
        sys.executable,
        "-m",
        "bench.memory",
        "--attempts",
        str(attempts),
        "--scenario",
        scenario,
        "--instrument",
        instrument,
    ]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def run(cfg: Config) -> Result:
    """Spawn the four measurements (they measure memory, not time, so run side by side)."""
    if not Path("/proc/self/status").exists():
        from .common import Skip

        raise Skip("RSS needs /proc/self/status (Linux)")
    attempts = SMOKE_ATTEMPTS if cfg.smoke else FULL_ATTEMPTS
    result = Result(SECTION)
    jobs = {
        (scenario, instrument): _spawn(attempts, scenario, instrument)
        for scenario in ("system", "manual")
        for instrument in ("rss", "tracemalloc")
    }
    figures: dict[str, Any] = {}
    for (scenario, instrument), proc in jobs.items():
        stdout, _ = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"memory {scenario}/{instrument} exited {proc.returncode}")
        fig = json.loads(stdout)
        figures[f"{scenario}/{instrument}"] = fig
        label = "system clock" if scenario == "system" else "manual clock +1 ms"
        result.rows.append(
            Row(
                SECTION,
                f"{attempts:,} record_order() attempts, {label}: {instrument} growth",
                _mb(fig["growth_bytes"]),
                note=f"peak {_mb(fig['peak_growth_bytes'])}; {fig['admitted']:,} admitted",
            )
        )
        worst = max(fig["growth_bytes"], fig["peak_growth_bytes"])
        result.targets.append(
            Target(
                f"runaway loop memory growth, {label}, {instrument} (incl. peak)",
                "≤ 5.00 MB" + ("" if not cfg.smoke else f" (smoke: {attempts:,} attempts)"),
                _mb(worst),
                worst <= LIMIT_BYTES,
            )
        )
    result.data["figures"] = figures
    return result


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.2f} MB"


def main() -> None:
    """Subprocess entry: one measurement, printed as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=FULL_ATTEMPTS)
    parser.add_argument("--scenario", choices=("system", "manual"), default="system")
    parser.add_argument("--instrument", choices=("rss", "tracemalloc"), default="rss")
    args = parser.parse_args()
    print(json.dumps(measure(args.attempts, args.scenario, args.instrument)))


if __name__ == "__main__":
    main()
