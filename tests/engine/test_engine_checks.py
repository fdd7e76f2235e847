"""The engine builds each order's context from its broker and data portal and the manager's
pre-trade checks judge it (SPEC §10): a real PaperBroker, a real DataPortal, the bars'
clock. A refused order is REJECTED with ``"check_name: reason"`` and never reaches the
broker; a broker that fails while the context is built refuses the order (fail closed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from engine_support import START, Recorder, minute_bars

from haltgate import CircuitBreakerManager, ErrorRateCircuitBreaker, OrderContext
from haltgate.checks import (
    MaxGrossExposure,
    MaxOpenOrders,
    MaxOrderQuantity,
    MaxPosition,
    MessageThrottle,
    OrderCheck,
    PriceCollar,
)
from haltgate.engine import (
    Bar,
    DataPortal,
    LiveTradingEngine,
    Order,
    OrderStatus,
    PaperBroker,
    TradingContext,
)

Plan = dict[int, Callable[[TradingContext], Any]]


class Scripted:
    """Runs the action planned for each bar index."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.index = -1

    def on_bar(self, context: TradingContext, bar: Bar) -> Any:
        self.index += 1
        action = self.plan.get(self.index)
        return action(context) if action else None


def run(
    bars: list[dict[str, Any]],
    plan: Plan,
    *checks: OrderCheck,
    broker: Any = None,
    breakers: Any = (),
    on_trip: str = "pause",
) -> tuple[LiveTradingEngine, Any, Recorder]:
    """Run ``plan`` over ``bars`` on the bars' clock (no clock given anywhere)."""
    manager = CircuitBreakerManager(breakers=breakers)
    for check in checks:
        manager.add_check(check)
    seen = Recorder()
    manager.add_listener(seen)
    portal = DataPortal(bars)
    paper = broker(portal) if broker is not None else PaperBroker(portal, cash=10_000_000)
    engine = LiveTradingEngine(
        strategy=Scripted(plan),
        broker_adapter=paper,
        data_portal=portal,
        circuit_breakers=manager,
        on_trip=on_trip,
    )
    assert engine.clock_source == "bars"
    engine.run_sync()
    return engine, paper, seen


def refusals(seen: Recorder) -> list[dict[str, Any]]:
    return [dict(e.details) for e in seen.kinds("order_refused")]


def test_a_fat_finger_order_is_rejected_with_its_code_and_never_reaches_the_broker() -> None:
    plan: Plan = {1: lambda c: [c.buy("XYZ", 150_000), c.buy("XYZ", 100)]}
    engine, broker, seen = run(minute_bars([100, 100, 100]), plan, MaxOrderQuantity(1000))
    fat, usual = engine.orders
    assert fat.status is OrderStatus.REJECTED
    assert fat.rejected_by == "gate"
    assert fat.reject_reasons == ["max_order_quantity: 150000 > 1000 (XYZ)"]
    assert usual.status is OrderStatus.FILLED
    assert [f.order_id for f in broker.fills] == [usual.id]
    (refused,) = refusals(seen)
    assert refused["code"] == "max_order_quantity"
    assert refused["symbol"] == "XYZ"
    assert engine.manager.get_refusal_counts() == {"max_order_quantity": 1}


def test_the_collar_compares_the_limit_with_the_portals_last_close() -> None:
    # The last close is 102 when the strategy orders (the first bar closed at 100).
    plan: Plan = {
        1: lambda c: [c.buy("XYZ", 10, limit_price=108), c.buy("XYZ", 10, limit_price=107)]
    }
    engine, broker, seen = run(minute_bars([100, 102, 102]), plan, PriceCollar("0.05"))
    through, inside = engine.orders
    assert through.status is OrderStatus.REJECTED
    assert through.reject_reasons == [
        "price_collar: BUY limit 108 > 107.1 = reference 102 * (1 + 0.05) (XYZ)"
    ]
    assert inside.status is OrderStatus.FILLED
    assert [r["code"] for r in refusals(seen)] == ["price_collar"]
    assert len(broker.fills) == 1


def test_a_price_older_than_the_allowed_age_on_the_bars_clock_is_stale() -> None:
    # XYZ's last bar is at START; ABC's bars move the clock on by a minute each.
    bars = minute_bars([100], symbol="XYZ") + minute_bars(
        [50, 50], symbol="ABC", start=START + timedelta(seconds=60)
    )
    plan: Plan = {1: lambda c: [c.buy("XYZ", 10), c.buy("ABC", 10)]}
    engine, broker, seen = run(bars, plan, PriceCollar("0.05", max_price_age_seconds=30))
    stale, fresh = engine.orders
    assert engine.clock.now() == START + timedelta(seconds=120)
    assert stale.status is OrderStatus.REJECTED
    assert stale.reject_reasons == ["price_collar: reference price is 60s old > 30s (XYZ)"]
    assert fresh.status is OrderStatus.FILLED
    assert [r["code"] for r in refusals(seen)] == ["stale_reference_price"]
    assert broker.get_positions() == {"ABC": Decimal(10)}


def test_an_order_in_a_symbol_without_any_bar_has_no_reference_price() -> None:
    plan: Plan = {0: lambda c: c.buy("NOPE", 1)}
    engine, _broker, seen = run(minute_bars([100]), plan, PriceCollar("0.05"))
    assert engine.orders[0].reject_reasons == ["price_collar: no reference price (NOPE)"]
    assert [r["code"] for r in refusals(seen)] == ["stale_reference_price"]


def test_a_reducing_order_passes_the_size_and_position_limits_a_growing_one_does_not() -> None:
    plan: Plan = {
        0: lambda c: c.buy("XYZ", 300),
        1: lambda c: c.buy("XYZ", 300),
        2: lambda c: c.buy("XYZ", 300),
        # Held 900: 200 more is over the position limit; selling 900 is over the size
        # limit but only closes the position.
        3: lambda c: [c.buy("XYZ", 200), c.sell("XYZ", 900)],
    }
    engine, broker, seen = run(
        minute_bars([100] * 4), plan, MaxOrderQuantity(300), MaxPosition(1000)
    )
    grow, close = engine.orders[3:]
    assert all(o.status is OrderStatus.FILLED for o in engine.orders[:3])
    assert grow.reject_reasons == ["max_position: 1100 > 1000 (XYZ position 900 -> 1100)"]
    assert close.status is OrderStatus.FILLED
    assert broker.get_positions() == {}
    assert [r["code"] for r in refusals(seen)] == ["max_position"]


def test_working_orders_on_the_broker_count_towards_the_position_and_open_orders() -> None:
    plan: Plan = {
        0: lambda c: c.buy("XYZ", 600, limit_price=90),  # rests: the close is 100
        1: lambda c: [c.buy("XYZ", 600, limit_price=91), c.buy("XYZ", 300, limit_price=92)],
        2: lambda c: c.buy("XYZ", 1, limit_price=93),
    }
    engine, broker, seen = run(
        minute_bars([100] * 3), plan, MaxPosition(1000), MaxOpenOrders(2), PriceCollar("0.2")
    )
    first, over, fits, third = engine.orders
    assert first.status is OrderStatus.OPEN and fits.status is OrderStatus.OPEN
    assert over.reject_reasons == ["max_position: 1200 > 1000 (XYZ position 0 -> 1200)"]
    assert third.reject_reasons == ["max_open_orders: 2 >= 2 working orders"]
    assert [r["code"] for r in refusals(seen)] == ["max_position", "max_open_orders"]
    assert len(broker.get_open_orders()) == 2


def test_gross_exposure_is_valued_at_the_portals_prices() -> None:
    plan: Plan = {
        0: lambda c: c.buy("XYZ", 400),  # 40 000 at 100
        1: lambda c: [c.buy("XYZ", 200), c.buy("XYZ", 100)],  # +24 000 / +12 000 at 120
    }
    engine, _broker, seen = run(
        minute_bars([100, 120]), plan, MaxGrossExposure(max_exposure=60_000)
    )
    assert engine.orders[0].status is OrderStatus.FILLED
    assert engine.orders[1].reject_reasons == [
        "max_gross_exposure: 72000 > 60000 (gross 48000 + order 24000)"
    ]
    assert engine.orders[2].status is OrderStatus.FILLED
    assert [r["code"] for r in refusals(seen)] == ["max_gross_exposure"]


class AsyncPaper:
    """The PaperBroker behind coroutine methods (an async adapter), with a switch that
    makes ``get_open_orders`` fail."""

    def __init__(self, portal: DataPortal) -> None:
        self.paper = PaperBroker(portal, cash=1_000_000)
        self.fills = self.paper.fills
        self.fail_open_orders = False
        self.submitted: list[Order] = []

    async def submit_order(self, order: Order) -> Order:
        self.submitted.append(order)
        return self.paper.submit_order(order)

    async def cancel_order(self, order_id: str) -> bool:
        return self.paper.cancel_order(order_id)

    async def cancel_all(self) -> list[Order]:
        return self.paper.cancel_all()

    async def get_positions(self) -> dict[str, Decimal]:
        return self.paper.get_positions()

    async def get_account_value(self) -> Decimal:
        return self.paper.get_account_value()

    async def get_open_orders(self) -> list[Order]:
        if self.fail_open_orders:
            raise ConnectionError("broker session lost")
        return self.paper.get_open_orders()

    def on_bar(self, bar: Bar) -> list[Order]:
        return self.paper.on_bar(bar)


def test_an_async_broker_builds_the_same_context() -> None:
    plan: Plan = {0: lambda c: [c.buy("XYZ", 2000), c.buy("XYZ", 10)]}
    engine, broker, _seen = run(
        minute_bars([100]), plan, MaxOrderQuantity(1000), PriceCollar("0.05"), broker=AsyncPaper
    )
    fat, usual = engine.orders
    assert fat.reject_reasons == ["max_order_quantity: 2000 > 1000 (XYZ)"]
    assert usual.status is OrderStatus.FILLED
    assert broker.submitted == [usual]


def test_a_broker_failing_while_the_context_is_built_refuses_the_order_and_records_it() -> None:
    errors = ErrorRateCircuitBreaker(max_errors=100)

    def fail_then_buy(c: TradingContext) -> Any:
        c.engine.broker.fail_open_orders = True
        return c.buy("XYZ", 10)

    plan: Plan = {0: fail_then_buy}
    engine, broker, seen = run(
        minute_bars([100]),
        plan,
        MaxOrderQuantity(1000),
        broker=AsyncPaper,
        breakers=[errors],
    )
    (order,) = engine.orders
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reasons == ["order context failed: ConnectionError: broker session lost"]
    assert broker.submitted == []  # never sent unjudged
    assert errors.get_error_count() == 1
    assert errors.get_error_categories() == {"broker": 1}
    assert len(seen.kinds("order_refused")) == 1


def test_a_position_without_a_price_refuses_the_order_fail_closed() -> None:
    class Holding(PaperBroker):
        def get_positions(self) -> dict[str, Decimal]:
            return {**super().get_positions(), "GONE": Decimal(5)}

        def get_account_value(self) -> Decimal:
            return Decimal(1_000_000)

    plan: Plan = {0: lambda c: c.buy("XYZ", 10)}
    engine, broker, _seen = run(
        minute_bars([100]),
        plan,
        MaxGrossExposure(max_exposure=10**9),
        broker=lambda portal: Holding(portal, cash=1_000_000),
    )
    assert engine.orders[0].reject_reasons == [
        "order context failed: LookupError: no price for GONE to value the gross exposure"
    ]
    assert broker.fills == []


def test_cancels_count_for_the_message_throttle() -> None:
    async def place_and_cancel(c: TradingContext) -> None:
        resting = await c.submit(Order.make("XYZ", 1, limit_price=50))  # message 1
        await c.cancel(resting)  # message 2
        await c.cancel(resting)  # message 3 (already cancelled: still sent)
        c.buy("XYZ", 1)  # message 4: over the limit

    plan: Plan = {0: place_and_cancel, 1: lambda c: c.buy("XYZ", 1)}
    bars = minute_bars([100, 100], step=120)  # the second bar is past the 60 s window
    engine, _broker, seen = run(bars, plan, MessageThrottle(3, 60))
    resting, refused, later = engine.orders
    assert resting.status is OrderStatus.CANCELLED
    assert refused.reject_reasons == ["message_throttle: 4 > 3 messages in 60s"]
    assert later.status is OrderStatus.FILLED
    assert [r["code"] for r in refusals(seen)] == ["message_throttle"]


def test_without_checks_the_engine_asks_the_broker_nothing_more() -> None:
    class Counting(PaperBroker):
        listed = 0

        def get_open_orders(self) -> list[Order]:
            Counting.listed += 1
            return super().get_open_orders()

    plan: Plan = {0: lambda c: c.buy("XYZ", 10)}
    engine, _broker, _seen = run(
        minute_bars([100]), plan, broker=lambda p: Counting(p, cash=100_000)
    )
    assert engine.orders[0].status is OrderStatus.FILLED
    assert Counting.listed == 0


def test_the_context_builder_reads_the_broker_and_the_portal() -> None:
    manager = CircuitBreakerManager()
    portal = DataPortal(minute_bars([100, 110]))
    broker = PaperBroker(portal, cash=100_000)
    engine = LiveTradingEngine(
        strategy=Scripted({0: lambda c: [c.buy("XYZ", 100), c.buy("XYZ", 5, limit_price=50)]}),
        broker_adapter=broker,
        data_portal=portal,
        circuit_breakers=manager,
    )
    engine.run_sync()
    import asyncio

    context = asyncio.run(engine.order_context(Order.make("XYZ", -1)))
    assert context == OrderContext(
        position=100,
        reference_price=110,
        price_time=START + timedelta(seconds=60),
        equity=broker.get_account_value(),
        open_orders=broker.get_open_orders(),
        gross_exposure=11_000,
    )
    assert len(context.open_orders) == 1


class HoldsUnpriced(PaperBroker):
    """Once it holds anything, also a symbol the portal has no price for (another
    strategy's position)."""

    def get_positions(self) -> dict[str, Decimal]:
        held = super().get_positions()
        return {**held, "GONE": Decimal(5)} if held else held

    def get_account_value(self) -> Decimal:
        return Decimal(1_000_000)


def _reduce_only_close(*checks: OrderCheck) -> Order:
    """Open 100 XYZ, trip the error-rate breaker (reduce-only mode), then close it."""

    def trip_then_close(c: TradingContext) -> Any:
        for _ in range(2):
            c.engine.manager.record_error(ConnectionError("gateway"), category="broker")
        assert not c.engine.manager.can_trade()
        return c.sell("XYZ", 100)

    plan: Plan = {0: lambda c: c.buy("XYZ", 100), 1: trip_then_close}
    engine, _broker, _seen = run(
        minute_bars([100, 100]),
        plan,
        *checks,
        broker=lambda portal: HoldsUnpriced(portal, cash=1_000_000),
        breakers=[ErrorRateCircuitBreaker(max_errors=1, window_seconds=300)],
        on_trip="reduce_only",
    )
    assert engine.orders[0].status is OrderStatus.FILLED
    return engine.orders[1]


def test_reduce_only_without_checks_closes_without_reading_the_account() -> None:
    close = _reduce_only_close()
    assert close.status is OrderStatus.FILLED, close.reject_reasons


def test_reduce_only_with_checks_needs_the_whole_context() -> None:
    close = _reduce_only_close(MaxOrderQuantity(1000))
    assert close.reject_reasons == [
        "order context failed: LookupError: no price for GONE to value the gross exposure"
    ]
