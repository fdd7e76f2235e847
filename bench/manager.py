"""The trading manager's hot path: ``can_trade()`` and ``record_order()``.

``can_trade()`` with no observations, on the guide's recommended minimum setup, against a
bare Python function call (``f()`` returning True). Both are net of the empty timing loop
(``pass``), measured in the same rounds.

``record_order()`` of *admitted* orders, two ways:
- "system clock": the recommended setup with the order-rate limit raised to 10⁹/min so
  every order is admitted, on the real clock;
- "manual clock": the recommended setup exactly (10/min) on a ManualClock advanced 6.001 s
  before each order, so each one is admitted; the cost of ``clock.advance`` alone is
  measured in the same rounds and subtracted.
Refused orders (a runaway loop against a full window) are timed too, for the analysis.
"""

from __future__ import annotations

import time

from .common import (
    Config,
    Result,
    Row,
    Target,
    fmt_ratio,
    fmt_us,
    interleave,
    median,
    median_ratio,
    overheads,
    sync_batch,
)
from .setups import recommended_manager

SECTION = "manager"
CAN_TRADE_LIMIT = 6.0
FACADE_CAN_TRADE_LIMIT = 10.0
RECORD_ORDER_LIMIT = 3e-6


def f() -> bool:
    """The bare Python function call of the comparison."""
    return True


def run_can_trade(cfg: Config, result: Result) -> None:
    """``manager.can_trade()`` against ``f()``."""
    mgr = recommended_manager()
    assert mgr.can_trade() is True
    variants = {
        "loop": sync_batch("pass", {}),
        "f()": sync_batch("f()", {"f": f}),
        "can_trade()": sync_batch("mgr.can_trade()", {"mgr": mgr}),
    }
    times = interleave(variants, cfg.rounds, cfg.batch * 4)
    assert mgr.can_trade() is True
    net = overheads(times, "loop")
    ratio, _ = median_ratio(net["can_trade()"], net["f()"])
    gross, _ = median_ratio(times["can_trade()"], times["f()"])
    result.data["can_trade"] = {"times": times, "ratio_net": ratio, "ratio_gross": gross}
    result.rows.append(
        Row(
            SECTION,
            "can_trade() (recommended setup, no observations) vs bare f()",
            f"{median(net['can_trade()']) * 1e9:.0f} ns",
            f"{median(net['f()']) * 1e9:.0f} ns",
            fmt_ratio(ratio),
            f"net of the empty loop; gross ratio {gross:.2f}x",
        )
    )
    result.targets.append(
        Target(
            "manager.can_trade() vs a bare function call",
            f"≤ {CAN_TRADE_LIMIT:.0f}x",
            fmt_ratio(ratio),
            ratio <= CAN_TRADE_LIMIT,
        )
    )


class _QuietPortfolio:
    """A provider with nothing to report (the facade's steady state)."""

    def get_daily_pnl_pct(self) -> int:
        return 0

    def get_max_drawdown(self) -> int:
        return 0

    def get_total_value(self) -> int:
        return 100_000

    def get_daily_pnl(self) -> int:
        return 0

    def get_position_concentration(self, symbol: str) -> int:
        return 0


def run_facade_can_trade(cfg: Config, result: Result) -> None:
    """``TradingCircuitBreakers.can_trade()`` in steady state against ``f()``: no trip, and
    the connection breaker's heartbeat deadline ahead (a day, so it stays ahead during the
    run on the system clock)."""
    from haltgate import TradingBreakerConfig, TradingCircuitBreakers

    facade = TradingCircuitBreakers(
        _QuietPortfolio(), TradingBreakerConfig(connection_timeout_seconds=86_400)
    )
    assert facade.can_trade() is True
    variants = {
        "loop": sync_batch("pass", {}),
        "f()": sync_batch("f()", {"f": f}),
        "facade.can_trade()": sync_batch("t.can_trade()", {"t": facade}),
    }
    times = interleave(variants, cfg.rounds, cfg.batch * 4)
    assert facade.can_trade() is True
    net = overheads(times, "loop")
    ratio, _ = median_ratio(net["facade.can_trade()"], net["f()"])
    result.data["facade_can_trade"] = {"times": times, "ratio_net": ratio}
    result.rows.append(
        Row(
            SECTION,
            "TradingCircuitBreakers.can_trade() (steady state) vs bare f()",
            f"{median(net['facade.can_trade()']) * 1e9:.0f} ns",
            f"{median(net['f()']) * 1e9:.0f} ns",
            fmt_ratio(ratio),
            "net of the empty loop; connection deadline ahead",
        )
    )
    result.targets.append(
        Target(
            "TradingCircuitBreakers.can_trade() vs a bare function call",
            f"≤ {FACADE_CAN_TRADE_LIMIT:.0f}x",
            fmt_ratio(ratio),
            ratio <= FACADE_CAN_TRADE_LIMIT,
        )
    )
    facade.close()


def run_record_order(cfg: Config, result: Result) -> None:
    """Admitted ``record_order()`` on the system clock and on manual clocks; refusals."""
    from haltgate import ManualClock

    wide = recommended_manager(max_orders_per_minute=10**9)
    roomy_clock, edge_clock = ManualClock(), ManualClock()
    roomy = recommended_manager(clock=roomy_clock)
    edge = recommended_manager(clock=edge_clock)
    runaway = recommended_manager()
    while runaway.record_order():
        pass  # fill the 10/min window: every later attempt is refused
    rate_wide = wide.get_breaker("order_rate")
    assert rate_wide is not None
    before = rate_wide.get_order_count()  # type: ignore[attr-defined]
    batch = cfg.scaled(0.5)
    ok = {"ok": _admitted}
    variants = {
        "system": sync_batch("mgr.record_order()", {"mgr": wide}),
        # A whole window between orders: the window never holds more than one.
        "advance 60": sync_batch("advance(60)\nok(True)", {"advance": roomy_clock.advance, **ok}),
        "manual roomy": sync_batch(
            "advance(60)\nok(mgr.record_order())",
            {"advance": roomy_clock.advance, "mgr": roomy, **ok},
        ),
        # Exactly at the limit: after every order the 10/min window is full again.
        "advance 6": sync_batch("advance(6.001)\nok(True)", {"advance": edge_clock.advance, **ok}),
        "manual edge": sync_batch(
            "advance(6.001)\nok(mgr.record_order())",
            {"advance": edge_clock.advance, "mgr": edge, **ok},
        ),
        "refused": sync_batch("mgr.record_order()", {"mgr": runaway}),
        # A yardstick of the machine's speed in the same rounds (absolute microseconds move
        # with the load of a shared machine; this ratio much less).
        "f()": sync_batch("f()", {"f": f}),
    }
    started = time.monotonic()
    times = interleave(variants, cfg.rounds, batch)
    elapsed = time.monotonic() - started
    admitted = rate_wide.get_order_count() - before  # type: ignore[attr-defined]
    attempts = max(1, batch // 4) + cfg.rounds * batch  # the warm-up batch included
    if elapsed < 55:  # nothing aged out of the 60 s window yet: every attempt was admitted
        assert admitted == attempts, (admitted, attempts)
    roomy_net = [m - a for m, a in zip(times["manual roomy"], times["advance 60"], strict=True)]
    edge_net = [m - a for m, a in zip(times["manual edge"], times["advance 6"], strict=True)]
    figures = {
        "system clock, limit 10^9/min": median(times["system"]),
        "ManualClock +60 s, 10/min (window never full)": median(roomy_net),
        "ManualClock +6.001 s, 10/min (every order fills the window)": median(edge_net),
    }
    result.data["record_order"] = {
        "times": times,
        "admitted_system": admitted,
        "roomy_net": roomy_net,
        "edge_net": edge_net,
        "medians": figures,
    }
    bare = times["f()"]
    in_calls = {
        "system": median_ratio(times["system"], bare)[0],
        "roomy": median_ratio(roomy_net, bare)[0],
        "edge": median_ratio(edge_net, bare)[0],
    }
    result.data["record_order"]["in_bare_calls"] = in_calls
    notes = [
        f"{admitted:,} attempts, all admitted; = {in_calls['system']:.0f} bare f() calls "
        f"(f() {median(bare) * 1e9:.0f} ns in the same rounds)",
        f"net of clock.advance ({fmt_us(median(times['advance 60']))}); each checked "
        f"admitted; = {in_calls['roomy']:.0f} bare f() calls",
        f"net of clock.advance ({fmt_us(median(times['advance 6']))}); each checked "
        f"admitted; = {in_calls['edge']:.0f} bare f() calls",
    ]
    for (label, value), note in zip(figures.items(), notes, strict=True):
        result.rows.append(
            Row(SECTION, f"record_order() admitted, {label}", fmt_us(value), note=note)
        )
        result.targets.append(
            Target(
                f"manager.record_order() admitted, {label}",
                "≤ 3.00 µs",
                fmt_us(value),
                value <= RECORD_ORDER_LIMIT,
            )
        )
    result.rows.append(
        Row(
            SECTION,
            "record_order() refused (runaway loop, full window)",
            fmt_us(median(times["refused"])),
            note="no target; see docs/benchmarks.md",
        )
    )


def _admitted(ok: bool) -> None:
    if not ok:
        raise AssertionError("an order the benchmark expected to be admitted was refused")


def run(cfg: Config) -> Result:
    """The manager's hot path."""
    result = Result(SECTION)
    run_can_trade(cfg, result)
    run_facade_can_trade(cfg, result)
    run_record_order(cfg, result)
    return result
