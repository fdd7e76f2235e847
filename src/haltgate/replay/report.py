"""The replay for a person: the report, the progress bar and the ``haltgate replay`` command."""

from __future__ import annotations

import io
import json
import sys
import time as _time
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from ..breakers import BaseCircuitBreaker, CircuitBreakerType
from ..config import breaker_settings
from .plot import plot_replay
from .result import ReplayResult
from .rows import ReplayError, open_csv, read_chunks
from .run import default_breakers, replay_rows
from .sparsity import record_chunk_times, sparse_rows

_DAY = 86400.0
_YEAR = 365.25 * _DAY


def _fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float) -> str:
    """A span for a person: seconds, minutes, hours up to 48 h, then days (and years from
    one year on): ``"9.0 h"``, ``"8,093.0 days (22.2 years)"``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    text = f"{seconds / _DAY:,.1f} days"
    if seconds >= _YEAR:
        text += f" ({seconds / _YEAR:,.1f} years)"
    return text


def _plain(value: Any) -> Any:
    """A setting as JSON shows it: Decimals as strings (money never becomes a float),
    whole floats as integers, anything else that is not a number as text."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    return str(value)


def replay_setup(
    breakers: Sequence[BaseCircuitBreaker],
    times: Sequence[float] = (),
    *,
    config: str | None = None,
) -> dict[str, Any]:
    """What a replay ran with, for the report and ``summary`` of ``--json``.

    ``{"config": FILE or None, "times": "UTC", "limits": [{"breaker", "type",
    "settings"}], "calendars": {breaker: calendar}, "warnings": [{"breaker", "message"}]}``.
    The settings are read back from the breakers themselves
    (:func:`~haltgate.config.breaker_settings`), the calendars are those of the breakers
    that follow sessions, and the warnings say which breakers ``times`` (the row times) are
    too sparse for (:func:`~haltgate.replay.sparsity.sparse_rows`).
    """
    limits = []
    calendars: dict[str, str] = {}
    for breaker in breakers:
        settings = {key: _plain(value) for key, value in breaker_settings(breaker).items()}
        limits.append(
            {"breaker": breaker.name, "type": breaker.breaker_type.value, "settings": settings}
        )
        if "calendar" in settings:
            calendars[breaker.name] = settings["calendar"]
    return {
        "config": config,
        "times": "UTC",
        "limits": limits,
        "calendars": calendars,
        "warnings": [w.to_dict() for w in sparse_rows(times, breakers)],
    }


def _print_setup(setup: Mapping[str, Any], out: IO[str]) -> None:
    if setup.get("config"):
        out.write(f"config:   {setup['config']}\n")
    else:
        out.write(
            "config:   none: the guide's recommended minimum setup (--config FILE for yours)\n"
        )
    out.write("limits in effect:\n")
    limits = setup.get("limits", [])
    labels = [
        item["breaker"] + ("" if item["type"] == item["breaker"] else f" ({item['type']})")
        for item in limits
    ]
    width = max((len(label) for label in labels), default=0)
    for label, item in zip(labels, limits, strict=True):
        settings = item["settings"]
        text = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "calendar")
        if not text:
            manual = item["type"] == CircuitBreakerType.MANUAL.value
            text = "no limit: halted only by an operator" if manual else "settings not known"
        out.write(f"  {label.ljust(width)}  {text}\n")
    calendars = setup.get("calendars", {})
    if calendars:
        shown = ", ".join(f"{cal} ({name})" for name, cal in calendars.items())
        out.write(f"calendar: {shown}\n")
    else:
        out.write("calendar: none (no breaker follows trading sessions)\n")
    out.write(f"times:    {setup.get('times', 'UTC')}\n\n")


def print_report(
    result: ReplayResult,
    out: IO[str],
    *,
    setup: Mapping[str, Any] | None = None,
    err: IO[str] | None = None,
) -> None:
    """Each trip and reset (when, which, why), then the summary, for a person.

    With ``setup`` (from :func:`replay_setup`) the limits and calendar in effect come
    first, and its warnings go to ``err`` (default ``out``)."""
    warnings = list(setup.get("warnings", [])) if setup is not None else []
    if setup is not None:
        _print_setup(setup, out)
        for warning in warnings:
            (err or out).write(f"warning: {warning['message']}\n")
    for event in result.events:
        out.write(
            f"{_fmt_time(event.timestamp)}  {event.kind.upper():<8} {event.breaker:<14} "
            f"{event.reason or ''}\n"
        )
    s = result.summary()
    if not result.events:
        out.write("no breaker tripped\n")
    out.write("\nsummary\n")
    span = (
        f" ({_fmt_time(result.start)} .. {_fmt_time(result.end)})"
        if result.start and result.end
        else ""
    )
    out.write(f"  rows:            {s['rows']:,}{span}\n")
    by = ", ".join(f"{k}: {v}" for k, v in s["trips_by_breaker"].items()) or "none"
    out.write(f"  trips:           {s['trips']} ({by})\n")
    out.write(f"  resets:          {s['resets']}\n")
    out.write(
        f"  halted:          {format_duration(s['halted_seconds'])} "
        f"({s['halted_fraction']:.1%} of the period)\n"
    )
    out.write(
        f"  orders:          {s['orders_admitted']:,} admitted, {s['orders_refused']:,} refused\n"
    )
    out.write(f"  errors:          {s['errors_recorded']:,}\n")
    states = ", ".join(f"{k}={v}" for k, v in s["final_states"].items())
    verdict = "TRADING ALLOWED" if s["trading_allowed_at_end"] else "TRADING HALTED"
    out.write(f"  at the end:      {verdict} ({states})\n")
    if warnings:
        names = ", ".join(w["breaker"] for w in warnings)
        out.write(f"  warnings:        {len(warnings)}: rows too sparse for {names}\n")


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
    times: array[float] = array("d")
    try:
        with open_csv(path) as file:
            chunks = record_chunk_times(read_chunks(file, on_progress=progress), times)
            result = replay_rows(
                chunks,
                breakers,
                keep_series=bool(args.plot),
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
    # A config always names itself: one parsed without a file (a caller's) is not "none".
    source = None if config is None else (getattr(config, "source", None) or "(no file name)")
    setup = replay_setup(breakers, times, config=source)
    if args.json:
        payload = result.to_json()
        payload["summary"].update(setup)
        print(json.dumps(payload, indent=None))
        for warning in setup["warnings"]:
            print(f"warning: {warning['message']}", file=sys.stderr)
    else:
        buffer = io.StringIO()
        print_report(result, buffer, setup=setup, err=sys.stderr)
        sys.stdout.write(buffer.getvalue())
    if args.plot:
        plot_replay(result, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    print(f"replayed {result.rows:,} rows in {elapsed:.2f}s", file=sys.stderr)
    return 0
