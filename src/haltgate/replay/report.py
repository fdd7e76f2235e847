"""The replay for a person: the report, the progress bar and the ``haltgate replay`` command."""

from __future__ import annotations

import io
import json
import sys
import time as _time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .plot import plot_replay
from .result import ReplayResult
from .rows import ReplayError
from .run import default_breakers, replay_csv


def _fmt_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def print_report(result: ReplayResult, out: IO[str]) -> None:
    """Each trip and reset (when, which, why), then the summary, for a person."""
    for event in result.events:
        out.write(
            f"{_fmt_time(event.timestamp)}  {event.kind.upper():<8} {event.breaker:<14} "
            f"{event.reason or ''}\n"
        )
    s = result.summary()
    if not result.events:
        out.write("no breaker tripped\n")
    out.write("\nsummary\n")
    out.write(f"  rows:            {s['rows']:,} ({s['start']} .. {s['end']})\n")
    by = ", ".join(f"{k}: {v}" for k, v in s["trips_by_breaker"].items()) or "none"
    out.write(f"  trips:           {s['trips']} ({by})\n")
    out.write(f"  resets:          {s['resets']}\n")
    out.write(
        f"  halted:          {s['halted_seconds'] / 3600:.1f} h "
        f"({s['halted_fraction']:.1%} of the period)\n"
    )
    out.write(
        f"  orders:          {s['orders_admitted']:,} admitted, {s['orders_refused']:,} refused\n"
    )
    out.write(f"  errors:          {s['errors_recorded']:,}\n")
    states = ", ".join(f"{k}={v}" for k, v in s["final_states"].items())
    verdict = "TRADING ALLOWED" if s["trading_allowed_at_end"] else "TRADING HALTED"
    out.write(f"  at the end:      {verdict} ({states})\n")


class _Progress:
    """A progress bar on stderr (only when it is a terminal)."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.last = -1

    def __call__(self, done: int) -> None:
        pct = min(100, done * 100 // self.total)
        if pct != self.last:
            self.last = pct
            bar = "#" * (pct // 4)
            self.stream.write(f"\rreplay [{bar:<25}] {pct:3d}%")
            self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def run_replay_command(args: Any, config: Any) -> int:
    """``haltgate replay FILE [--json] [--plot PNG]`` (``config`` may be ``None``)."""
    breakers = config.build_breakers() if config is not None else default_breakers()
    path = Path(args.file)
    if not path.exists():
        print(f"haltgate: no such file: {path}", file=sys.stderr)
        return 2
    progress = None
    if not args.no_progress and sys.stderr.isatty():
        progress = _Progress(path.stat().st_size, sys.stderr)
    started = _time.perf_counter()
    try:
        result = replay_csv(
            path,
            breakers,
            keep_series=bool(args.plot),
            on_progress=progress,
            reset_after=getattr(args, "reset_after", None),
            reset_at_next_session=bool(getattr(args, "reset_at_next_session", False)),
        )
    except ReplayError as exc:
        if progress is not None:
            progress.finish()
        print(f"haltgate: {path}: {exc}", file=sys.stderr)
        return 2
    if progress is not None:
        progress.finish()
    if result.rows == 0:
        print(f"haltgate: {path}: no data rows after the header", file=sys.stderr)
        return 2
    elapsed = _time.perf_counter() - started
    if args.json:
        print(json.dumps(result.to_json(), indent=None))
    else:
        buffer = io.StringIO()
        print_report(result, buffer)
        sys.stdout.write(buffer.getvalue())
    if args.plot:
        plot_replay(result, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    print(f"replayed {result.rows:,} rows in {elapsed:.2f}s", file=sys.stderr)
    return 0
