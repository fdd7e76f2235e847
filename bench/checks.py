"""Pre-trade order checks (SPEC §10): ``admit_order`` of an admitted order with all ten
checks configured, against the same call on a manager with none, in one run.

Both managers are the guide's recommended minimum setup (drawdown, daily loss, order rate
10/min, manual) on their own ManualClock, advanced 60.001 s before each order so every
window (the order rate's and the checks' duplicate, message and execution windows) holds
at most one entry and each order is admitted. The cost of ``clock.advance`` alone is timed
in the same rounds and subtracted from both. The order is a non-reducing limit buy, so
every check judges it (none takes its reducing exemption); the context has a working
order, a position, equity and gross exposure, so every check reads what it would read in
production. The price collar's age limit is set far above the clock's run so the one
context built before timing stays fresh (the comparison is the same whatever the age).

The target is on the difference per round (all ten minus none): at most 5 µs. A bare
function call ``f()`` is timed in the same rounds as a yardstick of the machine's speed:
the added cost in bare calls moves much less with the load of a shared machine than the
microseconds do.
"""

from __future__ import annotations

from .common import Config, Result, Row, Target, fmt_us, interleave, median, sync_batch
from .setups import recommended_manager

SECTION = "checks"
CHECKS_LIMIT = 5e-6
STEP = 60.001


def ten_checks() -> list[object]:
    """All ten checks with limits an ordinary order passes."""
    from haltgate.checks import (
        DuplicateOrder,
        ExecutionThrottle,
        MaxGrossExposure,
        MaxOpenOrders,
        MaxOrderNotional,
        MaxOrderQuantity,
        MaxPosition,
        MessageThrottle,
        PriceCollar,
        RestrictedSymbols,
    )

    return [
        MaxOrderQuantity(1000, per_symbol={"BRK.A": 5}),
        MaxOrderNotional("1000000"),
        PriceCollar("0.05", max_price_age_seconds=10**12),
        MaxPosition(5000, max_notional="2000000"),
        MaxGrossExposure(max_exposure="5000000", max_fraction_of_equity=2),
        MaxOpenOrders(100),
        DuplicateOrder(1),
        MessageThrottle(100, 1),
        ExecutionThrottle(20, 60),
        RestrictedSymbols(["XYZ"]),
    ]


def f() -> bool:
    """The bare Python function call of the yardstick."""
    return True


def _admitted(reasons: list[str]) -> None:
    if reasons:
        raise AssertionError(f"the benchmark's order was refused: {reasons}")


def run(cfg: Config) -> Result:
    """All ten checks vs none on ``admit_order(order=, context=)``."""
    from haltgate import ManualClock, Order, OrderContext

    result = Result(SECTION)
    none_clock, ten_clock, bare_clock = ManualClock(), ManualClock(), ManualClock()
    none = recommended_manager(clock=none_clock)
    ten = recommended_manager(clock=ten_clock)
    for check in ten_checks():
        ten.add_check(check)  # type: ignore[arg-type]
    assert len(ten.get_checks()) == 10 and not none.get_checks()
    order = Order.make("SPY", 10, limit_price="100.50")
    working = Order.make("QQQ", 5, limit_price=400)
    context = OrderContext(
        position=100,
        reference_price=100,
        price_time=ten_clock.now(),
        equity=1_000_000,
        open_orders=[working],
        gross_exposure=10_000,
    )
    # Every check judges this order: it grows the position, so no reducing exemption.
    assert ten.check_order(order, context).allowed
    ok = {"ok": _admitted, "order": order, "context": context, "STEP": STEP}
    call = "advance(STEP)\nok(mgr.admit_order(order=order, context=context))"
    batch = cfg.scaled(0.25)
    variants = {
        "advance": sync_batch("advance(STEP)\nok([])", {"advance": bare_clock.advance, **ok}),
        "none": sync_batch(call, {"advance": none_clock.advance, "mgr": none, **ok}),
        "ten": sync_batch(call, {"advance": ten_clock.advance, "mgr": ten, **ok}),
        "f()": sync_batch("f()", {"f": f}),
    }
    times = interleave(variants, cfg.rounds, batch)
    none_net = [n - a for n, a in zip(times["none"], times["advance"], strict=True)]
    ten_net = [t - a for t, a in zip(times["ten"], times["advance"], strict=True)]
    added = [t - n for t, n in zip(times["ten"], times["none"], strict=True)]
    cost = median(added)
    in_calls = median([a / b for a, b in zip(added, times["f()"], strict=True) if b > 0])
    # Every timed order was admitted (each call asserts it): no refusal was counted.
    assert ten.get_refusal_counts() == {}
    result.data.update(
        {
            "times": times,
            "none_net": none_net,
            "ten_net": ten_net,
            "added": added,
            "added_in_bare_calls": in_calls,
        }
    )
    result.rows.append(
        Row(
            SECTION,
            "admit_order(order=, context=) admitted, all ten checks vs none",
            fmt_us(median(ten_net)),
            fmt_us(median(none_net)),
            f"+{fmt_us(cost)}",
            "recommended setup; ManualClock +60.001 s per order, net of clock.advance "
            f"({fmt_us(median(times['advance']))}); each checked admitted; added = "
            f"{in_calls:.0f} bare f() calls (f() {median(times['f()']) * 1e9:.0f} ns in the "
            "same rounds)",
        )
    )
    result.targets.append(
        Target(
            "admit_order() admitted: all ten checks minus none",
            f"≤ {fmt_us(CHECKS_LIMIT)}",
            fmt_us(cost),
            cost <= CHECKS_LIMIT,
        )
    )
    return result
