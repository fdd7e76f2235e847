"""The call breaker against pybreaker, circuitbreaker and purgatory.

Overhead per call = protected call time - bare call time of the same function, both in the
same round. Sync cases: closed-success (``fn`` returns), closed-failure (``failing`` raises
``ValueError``; thresholds set so no breaker opens) and open-rejection (breakers opened by
one failure with a one-hour timeout; the protected function is never run). Failure and
rejection are measured against the bare *failing* call, so "rejection overhead ≤ failure
overhead" means a refused call costs no more than letting the failure happen.

Each peer is used through its own documented per-call API:
- haltgate: ``breaker.call_sync(fn)`` / ``await breaker.call(afn)``;
- pybreaker: ``breaker.call(fn)`` (its async form needs tornado);
- circuitbreaker: the decorated function (its ``call()`` does not check the open state);
- purgatory: ``with breaker:`` on a breaker obtained once from its factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Callable
from typing import Any

from .common import (
    Config,
    Result,
    Row,
    Skip,
    Target,
    async_batch,
    fmt_ns,
    fmt_ratio,
    interleave,
    median,
    median_ratio,
    overheads,
    sync_batch,
)

SECTION = "callbreaker"
HUGE = 10**9
HOUR = 3600

TRY = "try:\n    {}\nexcept Exception:\n    pass"


def fn() -> int:
    """The protected function of the success cases."""
    return 1


def failing() -> int:
    """The protected function of the failure and rejection cases."""
    raise ValueError("boom")


async def afn() -> int:
    """The protected coroutine function of the async case."""
    return 1


def _haltgate() -> Any:
    try:
        import haltgate
    except ImportError as exc:  # pragma: no cover - the package is always importable here
        raise Skip(f"haltgate not importable: {exc}") from exc
    if not hasattr(haltgate, "CircuitBreaker") or not hasattr(haltgate, "CircuitBreakerConfig"):
        raise Skip("haltgate.CircuitBreaker is not merged yet (branch callbreaker)")
    return haltgate


def _expect(call: Callable[[], Any], exc_type: Any) -> None:
    """Check a variant is in the state the case claims (e.g. open → it refuses)."""
    try:
        call()
    except exc_type:
        return
    except Exception as exc:
        raise AssertionError(f"{call} raised {exc!r}, expected {exc_type}") from exc
    raise AssertionError(f"{call} did not raise {exc_type}")


def _trip(call: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):
        call()


class Breakers:
    """One breaker per library and per case, configured alike."""

    def __init__(self) -> None:
        hg = _haltgate()
        self.hg_module = hg
        cfg = hg.CircuitBreakerConfig
        # Default config: the failure-rate window is on (minimum_calls=10, rate 0.5).
        self.hg_ok = hg.CircuitBreaker("bench-ok")
        self.hg_fail = hg.CircuitBreaker(
            "bench-fail", config=cfg(failure_threshold=HUGE, minimum_calls=HUGE)
        )
        self.hg_open = hg.CircuitBreaker(
            "bench-open",
            config=cfg(failure_threshold=1, open_timeout_seconds=HOUR, exponential_backoff=False),
        )
        _trip(lambda: self.hg_open.call_sync(failing))
        self.hg_async = hg.CircuitBreaker("bench-async")
        self.peers: dict[str, dict[str, Any]] = {}
        self.missing: dict[str, str] = {}
        for name, build in (
            ("pybreaker", self._pybreaker),
            ("circuitbreaker", self._circuitbreaker),
            ("purgatory", self._purgatory),
        ):
            if importlib.util.find_spec(name) is None:
                self.missing[name] = f"{name} is not installed (pip install 'haltgate[bench]')"
                continue
            self.peers[name] = build()

    @staticmethod
    def _pybreaker() -> dict[str, Any]:
        import pybreaker

        ok = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
        fail = pybreaker.CircuitBreaker(fail_max=HUGE, reset_timeout=HOUR)
        opened = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=HOUR)
        _trip(lambda: opened.call(failing))
        _expect(lambda: opened.call(fn), pybreaker.CircuitBreakerError)
        return {
            "version": pybreaker.__version__ if hasattr(pybreaker, "__version__") else "?",
            "ok": ("pyb_ok.call(fn)", {"pyb_ok": ok}),
            "fail": ("pyb_fail.call(failing)", {"pyb_fail": fail}),
            "open": ("pyb_open.call(failing)", {"pyb_open": opened}),
            "async": None,
            "async_reason": (
                "pybreaker's call_async needs tornado, which is not installed"
                if importlib.util.find_spec("tornado") is None
                else "pybreaker's call_async runs on tornado coroutines, not asyncio"
            ),
        }

    @staticmethod
    def _circuitbreaker() -> dict[str, Any]:
        import circuitbreaker  # type: ignore[import-untyped]

        ok = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60)(fn)
        fail = circuitbreaker.CircuitBreaker(failure_threshold=HUGE, recovery_timeout=HOUR)(failing)
        opened = circuitbreaker.CircuitBreaker(failure_threshold=1, recovery_timeout=HOUR)(failing)
        _trip(opened)
        _expect(opened, circuitbreaker.CircuitBreakerError)
        aok = circuitbreaker.CircuitBreaker(failure_threshold=5, recovery_timeout=60)(afn)
        return {
            "ok": ("cbk_ok()", {"cbk_ok": ok}),
            "fail": ("cbk_fail()", {"cbk_fail": fail}),
            "open": ("cbk_open()", {"cbk_open": opened}),
            "async": ("await cbk_async()", {"cbk_async": aok}),
        }

    @staticmethod
    def _purgatory() -> dict[str, Any]:
        import purgatory

        factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
        ok = factory.get_breaker("ok")
        fail = factory.get_breaker("fail", threshold=HUGE, ttl=HOUR)
        opened = factory.get_breaker("open", threshold=1, ttl=HOUR)

        def open_call() -> None:
            with opened:
                failing()

        _trip(open_call)
        from purgatory.domain.model import OpenedState

        _expect(open_call, OpenedState)
        return {
            "ok": ("with pur_ok:\n    fn()", {"pur_ok": ok}),
            "fail": ("with pur_fail:\n    failing()", {"pur_fail": fail}),
            "open": ("with pur_open:\n    failing()", {"pur_open": opened}),
            "async": "purgatory",  # built on the event loop in run_async
        }


def _ns(extra: dict[str, Any]) -> dict[str, Any]:
    return {"fn": fn, "failing": failing, "afn": afn, **extra}


def run_sync_success(b: Breakers, cfg: Config, result: Result) -> None:
    """Closed-success overhead against every peer."""
    variants = {
        "bare": sync_batch("fn()", _ns({})),
        "haltgate": sync_batch("hg.call_sync(fn)", _ns({"hg": b.hg_ok})),
    }
    for peer, spec in b.peers.items():
        stmt, ns = spec["ok"]
        variants[peer] = sync_batch(stmt, _ns(ns))
    times = interleave(variants, cfg.rounds, cfg.batch)
    over = overheads(times, "bare")
    result.data["sync_success"] = {"times": times}
    hg = median(over["haltgate"])
    result.rows.append(Row(SECTION, "bare fn() call", fmt_ns(median(times["bare"]))))
    ratios: dict[str, float] = {}
    for peer in b.peers:
        ratio, dropped = median_ratio(over["haltgate"], over[peer])
        ratios[peer] = ratio
        result.rows.append(
            Row(
                SECTION,
                f"sync closed-success overhead vs {peer}",
                fmt_ns(hg),
                fmt_ns(median(over[peer])),
                fmt_ratio(ratio),
                f"{dropped} noisy rounds dropped" if dropped else "",
            )
        )
    result.data["sync_success"]["ratios"] = ratios
    for peer, limit in (("circuitbreaker", 1.0), ("pybreaker", 0.4)):
        if peer in ratios:
            result.targets.append(
                Target(
                    f"call_sync closed-success overhead vs {peer}",
                    f"≤ {limit:.1f}x",
                    fmt_ratio(ratios[peer]),
                    ratios[peer] <= limit,
                )
            )


def run_sync_failure_and_rejection(b: Breakers, cfg: Config, result: Result) -> None:
    """Closed-failure and open-rejection overhead, all in one interleaved run."""
    variants = {
        "bare": sync_batch(TRY.format("failing()"), _ns({})),
        "haltgate/fail": sync_batch(TRY.format("hg.call_sync(failing)"), _ns({"hg": b.hg_fail})),
        "haltgate/open": sync_batch(TRY.format("hg.call_sync(failing)"), _ns({"hg": b.hg_open})),
    }
    hg_open_exc = b.hg_module.CircuitOpenException
    _expect(lambda: b.hg_open.call_sync(failing), hg_open_exc)
    _expect(lambda: b.hg_fail.call_sync(failing), ValueError)
    for peer, spec in b.peers.items():
        for case in ("fail", "open"):
            stmt, ns = spec[case]
            variants[f"{peer}/{case}"] = sync_batch(
                TRY.format(stmt.replace("\n", "\n    ")), _ns(ns)
            )
    times = interleave(variants, cfg.rounds, cfg.scaled(0.25))
    over = overheads(times, "bare")
    result.data["sync_failure_rejection"] = {"times": times}
    result.rows.append(
        Row(SECTION, "bare failing() call (raise + except)", fmt_ns(median(times["bare"])))
    )
    for case, label in (("fail", "closed-failure"), ("open", "open-rejection")):
        for peer in b.peers:
            ratio, dropped = median_ratio(over[f"haltgate/{case}"], over[f"{peer}/{case}"])
            result.rows.append(
                Row(
                    SECTION,
                    f"sync {label} overhead vs {peer}",
                    fmt_ns(median(over[f"haltgate/{case}"])),
                    fmt_ns(median(over[f"{peer}/{case}"])),
                    fmt_ratio(ratio),
                    f"{dropped} noisy rounds dropped" if dropped else "",
                )
            )
    # Each library's own rejection/failure ratio, for the analysis.
    own: dict[str, float] = {}
    for lib in ("haltgate", *b.peers):
        ratio, _ = median_ratio(over[f"{lib}/open"], over[f"{lib}/fail"])
        own[lib] = ratio
        result.rows.append(
            Row(
                SECTION,
                f"{lib}: open-rejection / closed-failure overhead",
                fmt_ratio(ratio) if lib == "haltgate" else "",
                "" if lib == "haltgate" else fmt_ratio(ratio),
            )
        )
    result.data["sync_failure_rejection"]["own_ratio"] = own
    result.targets.append(
        Target(
            "open-rejection overhead ≤ closed-failure overhead (haltgate)",
            "≤ 1.0x",
            fmt_ratio(own["haltgate"]),
            own["haltgate"] <= 1.0,
        )
    )


def run_async(b: Breakers, cfg: Config, result: Result) -> None:
    """Async closed-success overhead against the peers that support asyncio."""
    loop = asyncio.new_event_loop()
    try:
        variants = {
            "bare": async_batch("await afn()", _ns({}), loop),
            "haltgate": async_batch("await hg.call(afn)", _ns({"hg": b.hg_async}), loop),
        }
        skipped: dict[str, str] = {}
        for peer, spec in b.peers.items():
            entry = spec["async"]
            if entry is None:
                skipped[peer] = spec["async_reason"]
            elif entry == "purgatory":
                import purgatory

                factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
                brk = loop.run_until_complete(factory.get_breaker("ok"))
                variants[peer] = async_batch(
                    "async with pur:\n    await afn()", _ns({"pur": brk}), loop
                )
            else:
                stmt, ns = entry
                variants[peer] = async_batch(stmt, _ns(ns), loop)
        times = interleave(variants, cfg.rounds, cfg.batch)
    finally:
        loop.close()
    over = overheads(times, "bare")
    result.data["async_success"] = {"times": times, "skipped": skipped}
    result.rows.append(Row(SECTION, "bare await afn()", fmt_ns(median(times["bare"]))))
    ratios: dict[str, float] = {}
    for peer in variants:
        if peer in ("bare", "haltgate"):
            continue
        ratio, dropped = median_ratio(over["haltgate"], over[peer])
        ratios[peer] = ratio
        result.rows.append(
            Row(
                SECTION,
                f"async closed-success overhead vs {peer}",
                fmt_ns(median(over["haltgate"])),
                fmt_ns(median(over[peer])),
                fmt_ratio(ratio),
                f"{dropped} noisy rounds dropped" if dropped else "",
            )
        )
    for peer, why in skipped.items():
        result.rows.append(Row(SECTION, f"async vs {peer}", "", "", "", f"skipped: {why}"))
    if "circuitbreaker" in ratios:
        result.targets.append(
            Target(
                "async call overhead vs circuitbreaker",
                "≤ 1.0x",
                fmt_ratio(ratios["circuitbreaker"]),
                ratios["circuitbreaker"] <= 1.0,
            )
        )


def run(cfg: Config) -> Result:
    """Every call-breaker comparison, in this process."""
    result = Result(SECTION)
    b = Breakers()
    for name, why in b.missing.items():
        result.rows.append(Row(SECTION, f"peer {name}", "", "", "", f"skipped: {why}"))
    run_sync_success(b, cfg, result)
    run_sync_failure_and_rejection(b, cfg, result)
    run_async(b, cfg, result)
    return result
