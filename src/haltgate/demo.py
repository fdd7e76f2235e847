"""``haltgate demo``: a seeded paper-trading session where every breaker earns its keep.

The pieces are the real ones: a :class:`~haltgate.LiveTradingEngine` running a scripted
strategy against a :class:`~haltgate.PaperBroker`, every order through the gate, the
breakers of the guide's recommended setup plus an error-rate breaker, and a store (SQLite
by default) that keeps their state and the hash-chained audit log. Time is a
:class:`~haltgate.ManualClock` moved by the bars, so the session takes about a second.

What happens (each line of the timeline is printed from the manager's events):

- 14:35 a fat finger sends an order 100 times the usual size → the pre-trade check
  ``max_order_quantity`` refuses it; 14:36 a limit buy 20 % above the market →
  ``price_collar`` refuses it. Each refusal shows its deny code (SPEC §10).
- 14:40 a bug re-sends an order in a loop → ``order_rate`` trips, the extra orders are
  refused; a minute later the orders age out and it clears.
- 14:50 the broker's gateway times out → ``error_rate`` trips after the 4th error; it
  clears when the errors age out of its 5-minute window.
- 15:05 a flash crash → ``drawdown`` and ``daily_loss`` trip; the engine (on_trip =
  cancel_all) cancels the working limit orders the crash would have filled.
- 15:08 an operator halts everything (``manual``); 15:20 she resets drawdown and the
  kill switch; ``daily_loss`` keeps trading stopped until the next session starts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, TextIO

from .breakers import (
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from .checks import MaxOrderQuantity, PriceCollar
from .clock import ManualClock
from .engine import Bar, DataPortal, LiveTradingEngine, Order, OrderStatus, PaperBroker
from .engine.live import TradingContext
from .events import BreakerEvent, EventKind
from .manager import CircuitBreakerManager
from .store import Store, open_store
from .values import DECIMAL_CONTEXT, RATIO_CONTEXT

__all__ = ["main", "run_demo"]

SYMBOL = "DEMO"
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # a Monday; sessions are UTC days
MARKER = "haltgate_demo"
OPERATOR = "alice"

# Minute offsets (from START) of the scripted moments.
FAT_FINGER = 5
BAD_PRICE = 6
RUNAWAY = 10
OUTAGE = range(20, 24)  # the broker's gateway fails for these four minutes
CRASH = 35
HALT = 38
RESET = 50
DAY_TWO = 24 * 60  # the next session
USUAL = 20  # the strategy's usual order size
MAX_ORDER_QUANTITY = 1000
COLLAR = Decimal("0.05")


class FlakyPaperBroker(PaperBroker):
    """A PaperBroker whose order gateway times out during a scripted outage."""

    def __init__(self, portal: DataPortal, clock: ManualClock, **options: Any) -> None:
        super().__init__(portal, clock=clock, **options)
        self._demo_clock = clock
        self.outage: tuple[datetime, datetime] | None = None

    def submit_order(self, order: Order) -> Order:
        """Fill like the PaperBroker, except during the outage."""
        if self.outage is not None:
            begin, end = self.outage
            if begin <= self._demo_clock.now() < end:
                raise ConnectionError("broker gateway timeout (HTTP 504)")
        return super().submit_order(order)


class DemoStrategy:
    """A scripted strategy: builds a position, has a bug, keeps trying to buy the dip."""

    def on_bar(self, context: TradingContext, bar: Bar) -> None:
        """Place this minute's orders."""
        minute = int((bar.timestamp - START).total_seconds() // 60)
        if minute == 0:
            context.buy(SYMBOL, 900)
        elif minute == FAT_FINGER:
            context.buy(SYMBOL, 100 * USUAL)  # a fat finger: two zeros too many
        elif minute == BAD_PRICE:
            last = context.price(SYMBOL)
            assert last is not None
            # A typo in the price: a limit 20 % through the market.
            limit = DECIMAL_CONTEXT.multiply(last, Decimal("1.20")).quantize(Decimal("0.01"))
            context.buy(SYMBOL, USUAL, limit_price=limit)
        elif minute == RUNAWAY:
            for _ in range(25):  # the bug: the same order re-sent in a tight loop
                context.buy(SYMBOL, 1)
        elif minute == RUNAWAY + 1 or OUTAGE.start <= minute <= OUTAGE.stop + 1:
            context.buy(SYMBOL, 5)
        elif minute == CRASH - 3:
            context.buy(SYMBOL, 40, limit_price=82)
            context.buy(SYMBOL, 40, limit_price=80)
        elif minute in (CRASH, HALT + 2, RESET + 1) or minute == DAY_TWO:
            context.buy(SYMBOL, USUAL)  # "buy the dip"


def _prices(seed: int) -> list[tuple[int, dict[str, Any]]]:
    """(minute, bar) pairs: a quiet seeded walk, a flash crash, the next session."""
    # The same bars whatever the caller's decimal context (its precision, its traps).
    with localcontext(RATIO_CONTEXT):
        return _walk(seed)


def _walk(seed: int) -> list[tuple[int, dict[str, Any]]]:
    rng = random.Random(seed)
    minutes = [*range(0, 56), *range(DAY_TWO, DAY_TWO + 6)]
    crash_path = {CRASH: Decimal("0.87"), CRASH + 1: Decimal("0.80")}
    price = Decimal(100)
    base = Decimal(100)
    rows: list[tuple[int, dict[str, Any]]] = []
    for minute in minutes:
        opening = price
        if minute in crash_path:
            price = base * crash_path[minute]
            low = price * Decimal("0.985")
        elif minute > CRASH + 1:
            # a partial rebound that holds around 88-90
            price = price + (Decimal("88.5") - price) * Decimal("0.5")
            price *= 1 + Decimal(rng.uniform(-0.002, 0.002)).quantize(Decimal("0.0001"))
            low = min(opening, price) * Decimal("0.999")
        else:
            price *= 1 + Decimal(rng.uniform(-0.001, 0.001)).quantize(Decimal("0.0001"))
            base = price
            low = min(opening, price) * Decimal("0.999")
        close = price.quantize(Decimal("0.01"))
        rows.append(
            (
                minute,
                {
                    "timestamp": START + timedelta(minutes=minute),
                    "symbol": SYMBOL,
                    "open": opening.quantize(Decimal("0.01")),
                    "high": (max(opening, price) * Decimal("1.001")).quantize(Decimal("0.01")),
                    "low": low.quantize(Decimal("0.01")),
                    "close": close,
                },
            )
        )
    return rows


class Timeline:
    """Prints the manager's events as a timeline; runs of refused orders become one line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.events: list[BreakerEvent] = []
        self._refused: list[BreakerEvent] = []
        self._day: str | None = None

    def __call__(self, event: BreakerEvent) -> None:
        self.events.append(event)
        if event.kind == EventKind.ORDER_REFUSED and "code" in event.details:
            # A pre-trade check refused this very order: one line with its deny code.
            self.flush()
            details = event.details
            what = f"{details.get('side', '')} {details.get('quantity', '')}".strip()
            if details.get("limit_price") is not None:
                what += f" @ {details['limit_price']} limit"
            reason = str(event.reason or "").removeprefix("order refused: ")
            reason = reason.removeprefix(f"{details.get('check')}: ")
            self.line(event.timestamp, "check", "REFUSED", f"{what} [{details['code']}]: {reason}")
            return
        if event.kind == EventKind.ORDER_REFUSED:
            self._refused.append(event)
            return
        if event.kind == EventKind.RESET and _value(event.state) == "RESETTING":
            return  # the reset shows once, when it completes
        self.flush()
        label = {
            EventKind.TRIPPED: "TRIPPED",
            EventKind.HALTED: "HALTED",
            EventKind.RESET: "RESET",
            EventKind.WARNING: "WARNING",
        }.get(event.kind, str(event.kind).upper())
        text = event.reason or ""
        if event.operator:
            text = f"{text} (by {event.operator})" if text else f"by {event.operator}"
        self.line(event.timestamp, event.breaker_name, label, text)

    def flush(self) -> None:
        """Print the pending run of refused orders."""
        if not self._refused:
            return
        refused, self._refused = self._refused, []
        blocking: list[str] = []
        for event in refused:
            for reason in event.details.get("blocking", ()):
                name = str(reason).split(":", 1)[0]
                if name not in blocking:
                    blocking.append(name)
        count = len(refused)
        noun = "order" if count == 1 else "orders"
        self.line(
            refused[-1].timestamp,
            "gate",
            "REFUSED",
            f"{count} {noun} refused, blocked by {', '.join(blocking) or 'the breakers'}",
        )

    def line(self, when: datetime, who: str, what: str, text: str) -> None:
        """One timeline line (with a date header when the day changes)."""
        day = f"{when:%a %Y-%m-%d}"
        if day != self._day:
            self._day = day
            self.out.write(f"\n== {day} (UTC) ==\n")
        self.out.write(f"{when:%H:%M}  {who:<12} {what:<9} {text}\n")

    def note(self, when: datetime, text: str) -> None:
        """A narration line: what the scenario does next."""
        self.flush()
        day = f"{when:%a %Y-%m-%d}"
        if day != self._day:
            self._day = day
            self.out.write(f"\n== {day} (UTC) ==\n")
        self.out.write(f"{when:%H:%M}  -- {text}\n")


def _value(state: Any) -> str:
    return str(getattr(state, "value", state))


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _prepare_sqlite(path: Path, out: TextIO) -> str | None:
    """Make room for a fresh demo database; refuse to touch a file the demo did not make."""
    if not path.exists():
        return None
    try:
        previous = open_store(f"sqlite:///{path}")
    except Exception as exc:
        return f"{path} exists and is not a haltgate demo database ({exc}); choose another --db"
    try:
        made_by_demo = previous.get_value(MARKER) is not None
    except Exception:
        made_by_demo = False
    finally:
        previous.close()
    if not made_by_demo:
        return f"{path} exists and was not made by `haltgate demo`; choose another --db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    out.write(f"(replacing the previous demo database {path})\n")
    return None


def run_demo(
    path: str | Path = "haltgate-demo.db",
    *,
    seed: int = 7,
    out: TextIO | None = None,
    store: Store | str | None = None,
) -> int:
    """Run the demo session; print its timeline to ``out``; return an exit code.

    State and audit log go to the SQLite file ``path`` (a previous demo file there is
    replaced; any other file is left alone and the demo refuses), or to ``store`` when one
    is given. Returns 0 when every breaker tripped for its own reason and the audit chain
    verifies, 1 otherwise, 2 when the database path cannot be used.
    """
    out = out if out is not None else sys.stdout
    db_path = Path(path)
    if store is None:
        problem = _prepare_sqlite(db_path, out)
        if problem is not None:
            out.write(f"haltgate demo: {problem}\n")
            return 2
        store_url = f"sqlite:///{db_path}"
        the_store = open_store(store_url)
    else:
        # A Redis namespace the demo is pointed at is set up by it (create=True) when it
        # holds nothing yet (SPEC §6: tests and the demo create their namespaces).
        redis = isinstance(store, str) and store.startswith(("redis://", "rediss://", "unix://"))
        the_store = open_store(store, create=True) if redis else open_store(store)
        store_url = type(the_store).__name__
    the_store.set_value(MARKER, {"seed": seed, "start": START.isoformat()})
    try:
        return asyncio.run(_session(the_store, store_url, seed, out, db_path, store is None))
    finally:
        if store is None:
            the_store.close()


async def _session(
    store: Store, store_url: str, seed: int, out: TextIO, db_path: Path, owns_store: bool
) -> int:
    clock = ManualClock(START)
    manager = CircuitBreakerManager(store=store, clock=clock)
    manager.add_breaker(DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.10")))
    manager.add_breaker(DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")))
    manager.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=10))
    manager.add_breaker(ErrorRateCircuitBreaker(max_errors=3, window_seconds=300))
    manager.add_breaker(ManualCircuitBreaker())
    manager.add_check(MaxOrderQuantity(MAX_ORDER_QUANTITY))
    manager.add_check(PriceCollar(COLLAR))
    timeline = Timeline(out)
    manager.add_listener(timeline)

    portal = DataPortal()
    broker = FlakyPaperBroker(portal, clock, cash=100_000)
    broker.outage = (
        START + timedelta(minutes=OUTAGE.start),
        START + timedelta(minutes=OUTAGE.stop),
    )
    engine = LiveTradingEngine(
        strategy=DemoStrategy(),
        broker_adapter=broker,
        data_portal=portal,
        circuit_breakers=manager,
        on_trip="cancel_all",
    )

    out.write(f"haltgate demo: a seeded paper-trading session (seed {seed}, symbol {SYMBOL})\n")
    out.write(
        "breakers: drawdown > 10% | daily loss > $5,000 | 10 orders/min | "
        "> 3 broker errors/5 min | manual kill switch\n"
    )
    out.write(
        f"pre-trade checks: order size <= {MAX_ORDER_QUANTITY:,} | "
        f"limit within {COLLAR:.0%} of the last price\n"
    )
    out.write(f"engine: LiveTradingEngine + PaperBroker, on_trip=cancel_all | store: {store_url}\n")

    notes = {
        0: "the strategy opens a position: BUY 900 at market",
        FAT_FINGER: f"a fat finger: BUY {100 * USUAL:,}, 100 times the usual {USUAL}",
        BAD_PRICE: "a typo in the price: a limit buy 20% above the market",
        RUNAWAY: "a bug makes the strategy re-send its order in a tight loop (25 orders)",
        RUNAWAY + 1: "a minute later: the strategy places one order",
        OUTAGE.start: "the broker's order gateway starts timing out",
        OUTAGE.stop + 1: "the gateway is healthy again; the strategy places one order",
        CRASH - 3: "the strategy rests two limit buys below the market (82 and 80)",
        CRASH: "flash crash: the price falls 13% in one minute",
        DAY_TWO: "the next trading session opens",
    }
    await engine.start()
    value_before_crash = Decimal(0)
    for minute, raw in _prices(seed):
        when = START + timedelta(minutes=minute)
        # Operators act at this minute, before its bar: move the clock there first.
        clock.set(when)
        if minute == HALT:
            timeline.note(when, f"operator {OPERATOR} throws the kill switch")
            manager.halt_all(
                reason="flash crash: all trading frozen while we investigate", operator=OPERATOR
            )
        if minute == RESET:
            timeline.note(
                when, f"operator {OPERATOR} resets drawdown and the kill switch after review"
            )
            manager.reset(
                "drawdown", operator=OPERATOR, reason="crash was market-wide; strategy healthy"
            )
            manager.reset("manual", operator=OPERATOR, reason="investigation closed")
        if minute in notes:
            timeline.note(when, notes[minute])
        if minute == CRASH:
            value_before_crash = broker.get_account_value()
        known = len(engine.orders)
        working = {o.id for o in engine.orders if o.status.is_working}
        await engine.process_bar(raw)
        timeline.flush()
        for order in engine.orders:
            if order.id in working and order.status is OrderStatus.CANCELLED:
                timeline.line(
                    when,
                    "engine",
                    "CANCELLED",
                    f"working {order.side.value} {order.quantity} @ {order.limit_price} "
                    "(on_trip=cancel_all)",
                )
        _report_orders(timeline, when, engine.orders[known:])
        if minute == CRASH:
            now_value = broker.get_account_value()
            change = RATIO_CONTEXT.divide(
                DECIMAL_CONTEXT.subtract(now_value, value_before_crash), value_before_crash
            )
            timeline.line(
                when,
                "portfolio",
                "VALUE",
                f"{_money(value_before_crash)} -> {_money(now_value)} ({change:+.1%})",
            )
    await engine.finish()
    timeline.flush()
    return _summary(engine, manager, broker, timeline, store, store_url, db_path, owns_store, out)


def _report_orders(timeline: Timeline, when: datetime, orders: Sequence[Order]) -> None:
    if not orders:
        return
    if len(orders) == 1:
        order = orders[0]
        what = f"{order.side.value} {order.quantity}"
        if order.limit_price is not None:
            what += f" @ {order.limit_price} limit"
        if order.status is OrderStatus.FILLED:
            text = f"{what}: filled at {order.fill_price}"
        elif order.status is OrderStatus.FAILED:
            text = f"{what}: failed at the broker ({order.error}) -> recorded as an error"
        elif order.status is OrderStatus.REJECTED:
            names = ", ".join(dict.fromkeys(r.split(":", 1)[0] for r in order.reject_reasons))
            text = f"{what}: rejected by {order.rejected_by} ({names})"
        else:
            text = f"{what}: {order.status.value.lower()}"
        timeline.line(when, "strategy", "ORDER", text)
        return
    counts: dict[str, int] = {}
    for order in orders:
        status = order.status.value.lower()
        counts[status] = counts.get(status, 0) + 1
    detail = ", ".join(f"{n} {s}" for s, n in counts.items())
    timeline.line(when, "strategy", "ORDERS", f"{len(orders)} orders: {detail}")


def _summary(
    engine: LiveTradingEngine,
    manager: CircuitBreakerManager,
    broker: PaperBroker,
    timeline: Timeline,
    store: Store,
    store_url: str,
    db_path: Path,
    owns_store: bool,
    out: TextIO,
) -> int:
    tripped = {
        e.breaker_name for e in timeline.events if e.kind in (EventKind.TRIPPED, EventKind.HALTED)
    }
    expected = {"order_rate", "error_rate", "drawdown", "daily_loss", "manual"}
    orders = engine.orders
    by_status = {s: sum(1 for o in orders if o.status is s) for s in OrderStatus}
    out.write("\nsummary\n")
    out.write(
        f"  orders: {len(orders)} placed, {by_status[OrderStatus.FILLED]} filled, "
        f"{by_status[OrderStatus.REJECTED]} refused by the gate, "
        f"{by_status[OrderStatus.FAILED]} failed at the broker, "
        f"{by_status[OrderStatus.CANCELLED]} cancelled\n"
    )
    out.write(
        f"  account: {_money(broker.get_account_value())} "
        f"(cash {_money(broker.cash)}, position {broker.get_positions().get(SYMBOL, 0)} {SYMBOL})\n"
    )
    out.write(
        "  breakers now: " + ", ".join(f"{n}={s}" for n, s in manager.get_status().items()) + "\n"
    )
    tripped_text = ", ".join(sorted(tripped & expected)) or "none"
    out.write(f"  tripped during the session: {tripped_text}\n")
    codes = manager.get_refusal_counts()
    refused_text = ", ".join(f"{code}={n}" for code, n in sorted(codes.items())) or "none"
    out.write(f"  refused by the pre-trade checks: {refused_text}\n")
    if owns_store:
        manager.close()
        reopened = open_store(store_url)
        try:
            verification = reopened.verify_audit()
            saved = reopened.load_all_snapshots()
        finally:
            reopened.close()
        where = f"{db_path}"
    else:
        verification = store.verify_audit()
        saved = store.load_all_snapshots()
        where = store_url
    out.write(
        f"  audit log: {verification.checked} entries, hash chain "
        + ("verified" if verification.ok else f"BROKEN: {verification.problem}")
        + "\n"
    )
    out.write(f"  saved breaker states: {', '.join(sorted(saved)) or 'none'} in {where}\n")
    if owns_store:
        command = f"{_haltgate_command()} --store {shlex.quote(f'sqlite:///{db_path}')}"
        out.write(f"\nnext: {command} status\n      {command} audit verify\n")
    missing = expected - tripped
    if missing:
        out.write(f"haltgate demo: these breakers never tripped: {', '.join(sorted(missing))}\n")
        return 1
    return 0 if verification.ok else 1


def _haltgate_command() -> str:
    """How to run haltgate from a shell, as this process was run: ``haltgate`` is often not
    on PATH (a venv that is not activated), so the printed commands name the console script
    beside this interpreter, else ``python -m haltgate`` with this interpreter."""
    script = Path(sys.executable).parent / "haltgate"
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m haltgate"


def main(argv: list[str] | None = None) -> int:
    """``haltgate demo [--db PATH] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="haltgate demo",
        description="Run a seeded paper-trading session in which every breaker trips for "
        "its own reason; leaves state and audit log in an SQLite file.",
    )
    parser.add_argument(
        "--db", default="haltgate-demo.db", help="SQLite file to write (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        return run_demo(args.db, seed=args.seed)
    except BrokenPipeError:  # e.g. `haltgate demo | head`: the reader left, nothing to say
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
