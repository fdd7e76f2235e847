"""Shared measuring tools: interleaved batches, medians of per-round ratios, results.

Every comparison runs in one process. Each round times one batch of every variant, in an
order that rotates from round to round, so slow drifts of a shared machine (other
processes, frequency changes) hit every variant alike. Figures are medians over rounds of
per-round values (per-call times, overheads, ratios), never ratios of medians.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import timeit
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Config",
    "Result",
    "Row",
    "Skip",
    "Target",
    "async_batch",
    "interleave",
    "median",
    "median_ratio",
    "sync_batch",
]


@dataclass(frozen=True)
class Config:
    """How long to measure: ``rounds`` batches of ``batch`` calls per variant."""

    smoke: bool
    rounds: int
    batch: int

    def scaled(self, factor: float) -> int:
        """The batch size scaled for a slower operation (at least 1)."""
        return max(1, int(self.batch * factor))


@dataclass
class Row:
    """One line of the result table."""

    section: str
    case: str
    haltgate: str
    peer: str = ""
    ratio: str = ""
    note: str = ""


@dataclass
class Target:
    """One performance target and whether this run met it."""

    name: str
    limit: str
    measured: str
    passed: bool


@dataclass
class Result:
    """What one section measured."""

    section: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


class Skip(Exception):
    """A section cannot run here (its piece is not merged, a program is missing...)."""


BatchFn = Callable[[int], float]


def sync_batch(stmt: str, namespace: Mapping[str, Any], setup: str = "pass") -> BatchFn:
    """A function timing ``n`` executions of ``stmt`` (seconds per call), like ``timeit``
    (garbage collection off during the batch)."""
    timer = timeit.Timer(stmt, setup, globals=dict(namespace))

    def run(n: int) -> float:
        return timer.timeit(n) / n

    return run


def async_batch(
    stmt: str, namespace: Mapping[str, Any], loop: asyncio.AbstractEventLoop
) -> BatchFn:
    """A function timing ``n`` executions of the awaiting statement ``stmt`` inside one
    coroutine on ``loop`` (seconds per call, garbage collection off)."""
    body = "\n".join("        " + line for line in stmt.splitlines())
    source = (
        "async def _bench(_n):\n"
        "    _t0 = _perf()\n"
        "    for _ in _repeat(None, _n):\n"
        f"{body}\n"
        "    return _perf() - _t0\n"
    )
    scope: dict[str, Any] = dict(namespace)
    import itertools

    scope["_perf"] = time.perf_counter
    scope["_repeat"] = itertools.repeat
    exec(compile(source, "<bench>", "exec"), scope)
    coroutine_fn: Callable[[int], Awaitable[float]] = scope["_bench"]

    def run(n: int) -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return loop.run_until_complete(coroutine_fn(n)) / n
        finally:
            if enabled:
                gc.enable()

    return run


def interleave(
    variants: Mapping[str, BatchFn], rounds: int, batch: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Per-call seconds of every variant, one list entry per round. Batches alternate:
    each round runs every variant once, the order rotating (and reversing every other
    round) so no variant always runs first or last."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name](max(1, batch // 4))
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        order = names[k:] + names[:k]
        if (r // len(names)) % 2:
            order.reverse()
        for name in order:
            out[name].append(variants[name](batch))
    return out


def median(values: list[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def overheads(times: dict[str, list[float]], bare: str) -> dict[str, list[float]]:
    """Per-round overhead of every variant: its time minus the bare variant's, same round."""
    base = times[bare]
    return {
        name: [t - b for t, b in zip(values, base, strict=True)]
        for name, values in times.items()
        if name != bare
    }


def median_ratio(numerator: list[float], denominator: list[float]) -> tuple[float, int]:
    """Median over rounds of ``numerator / denominator`` (rounds where the denominator is not
    positive — noise swamped the peer's overhead — are dropped) and how many were dropped."""
    ratios = [n / d for n, d in zip(numerator, denominator, strict=True) if d > 0]
    return median(ratios), len(numerator) - len(ratios)


def fmt_ns(seconds: float) -> str:
    """Seconds per call as nanoseconds, for the table."""
    return f"{seconds * 1e9:,.0f} ns"


def fmt_us(seconds: float) -> str:
    """Seconds per call as microseconds."""
    return f"{seconds * 1e6:.2f} µs"


def fmt_ratio(value: float) -> str:
    """A ratio like ``0.42x``."""
    return f"{value:.2f}x"
