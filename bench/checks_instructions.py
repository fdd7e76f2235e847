"""Instructions per admitted order of ``bench/checks.py``'s setup, all ten checks and none,
counted by valgrind (load-independent, unlike the wall-clock figures of a shared machine).

    PYTHONPATH=src python bench/checks_instructions.py            # both, ~1-2 min
    python bench/checks_instructions.py --orders ten 1000         # one child run

Each configuration runs twice under ``valgrind --tool=callgrind`` (1,000 and 6,000 orders,
each after 200 warm-up orders); the difference divided by 5,000 is the cost of one order
with start-up and imports cancelled out. ``clock.advance`` is included in both figures, so
it cancels out of the difference too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT / "src"), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

SHORT, LONG, WARM = 1000, 6000, 200


def orders(which: str, n: int) -> None:
    """Admit ``n`` orders (after the warm-up) on the setup of ``bench/checks.py``."""
    from bench.checks import STEP, ten_checks
    from bench.setups import recommended_manager
    from haltgate import ManualClock, Order, OrderContext

    clock = ManualClock()
    manager = recommended_manager(clock=clock)
    if which == "ten":
        for check in ten_checks():
            manager.add_check(check)  # type: ignore[arg-type]
    order = Order.make("SPY", 10, limit_price="100.50")
    context = OrderContext(
        position=100,
        reference_price=100,
        price_time=clock.now(),
        equity=1_000_000,
        open_orders=[Order.make("QQQ", 5, limit_price=400)],
        gross_exposure=10_000,
    )
    advance, admit = clock.advance, manager.admit_order
    for _ in range(WARM):
        advance(STEP)
        admit(order=order, context=context)
    for _ in range(n):
        advance(STEP)
        if admit(order=order, context=context):
            raise SystemExit("the benchmark's order was refused")


def count(which: str, n: int) -> int:
    """Instructions valgrind counts for one child run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--orders",
                which,
                str(n),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        match = re.search(r"Collected : (\d+)", proc.stderr)
        if match is None:
            raise SystemExit(proc.stderr)
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", nargs=2, metavar=("WHICH", "N"))
    args = parser.parse_args()
    if args.orders:
        orders(args.orders[0], int(args.orders[1]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    per: dict[str, float] = {}
    for which in ("none", "ten"):
        per[which] = (count(which, LONG) - count(which, SHORT)) / (LONG - SHORT)
        print(f"{which:>4}: {per[which]:,.0f} instructions per admitted order")
    print(f"added: {per['ten'] - per['none']:+,.0f} instructions per admitted order")


if __name__ == "__main__":
    main()
