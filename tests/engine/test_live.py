"""LiveTradingEngine with the PaperBroker: the portfolio reaches the breakers on every bar,
every order passes the gate, and each on_trip mode does what it says."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from engine_support import START, Recorder, manager, minute_bars

from haltgate import (
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    InvalidInputError,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
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
    """Runs the action planned for each bar index; records what it saw."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.index = -1
        self.values: list[Decimal | None] = []
        self.times: list[Any] = []

    def on_bar(self, context: TradingContext, bar: Bar) -> Any:
        self.index += 1
        self.values.append(context.portfolio_value)
        self.times.append(context.now)
        action = self.plan.get(self.index)
        return action(context) if action else None


def engine_for(
    prices: list[Any], plan: Plan, *breakers: Any, on_trip: str = "pause", cash: int = 100_000
) -> tuple[LiveTradingEngine, PaperBroker, Recorder, Scripted]:
    mgr, _clock = manager(*breakers)
    portal = DataPortal(minute_bars(prices))
    broker = PaperBroker(portal, cash=cash)
    seen = Recorder()
    mgr.add_listener(seen)
    strategy = Scripted(plan)
    engine = LiveTradingEngine(
        strategy=strategy,
        broker_adapter=broker,
        data_portal=portal,
        circuit_breakers=mgr,
        on_trip=on_trip,
    )
    return engine, broker, seen, strategy


def test_portfolio_value_reaches_the_breakers_on_every_bar_on_bar_time() -> None:
    drawdown = DrawdownCircuitBreaker(Decimal("0.50"))
    daily = DailyLossCircuitBreaker(max_daily_loss=Decimal("100000"))
    engine, _broker, _seen, strategy = engine_for(
        [100, 110, 90, 95], {0: lambda c: c.buy("XYZ", 500)}, drawdown, daily
    )
    assert engine.circuit_breakers is not None
    assert engine.run_sync() == 4
    # bought 500 at 100: values follow the price on every bar
    assert strategy.values == [Decimal(100_000), Decimal(105_000), Decimal(95_000), Decimal(97_500)]
    assert drawdown.get_peak() == Decimal(105_000)
    assert drawdown.get_current_drawdown() == Decimal(7_500) / Decimal(105_000)
    assert daily.get_start_of_day_value() == Decimal(100_000)
    assert daily.get_current_daily_loss() == Decimal(2_500)
    assert strategy.times == [START + timedelta(minutes=i) for i in range(4)]
    assert engine.manager.clock.now() == START + timedelta(minutes=3)


def test_pause_refuses_new_orders_while_tripped_and_resumes_when_clear() -> None:
    rate = OrderRateCircuitBreaker(3)

    def runaway(context: TradingContext) -> None:
        for _ in range(8):
            context.buy("XYZ", 1)

    engine, broker, seen, _ = engine_for(
        [100, 100, 100], {0: runaway, 1: lambda c: c.buy("XYZ", 1)}, rate
    )
    engine.run_sync()
    statuses = [o.status for o in engine.orders]
    assert statuses[:3] == [OrderStatus.FILLED] * 3
    assert statuses[3:8] == [OrderStatus.REJECTED] * 5
    assert engine.orders[3].reject_reasons[0].startswith("order_rate")
    assert len(seen.kinds("order_refused")) == 5
    assert len(seen.kinds("tripped")) == 1
    # one minute later the orders aged out: the breaker cleared and trading resumed
    assert statuses[8] is OrderStatus.FILLED
    assert broker.get_positions() == {"XYZ": Decimal(4)}
    assert any(e.kind == "reset" and e.breaker_name == "order_rate" for e in seen.events)


def test_cancel_all_cancels_working_limit_orders_on_a_trip() -> None:
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    plan: Plan = {
        0: lambda c: [c.buy("XYZ", 900), c.buy("XYZ", 50, limit_price=80)],
        1: lambda c: c.buy("XYZ", 10, limit_price=79),
        3: lambda c: c.buy("XYZ", 1),
    }
    # bar 2: flash crash to 85 (drawdown 13.5 %); bar 3 would have filled both limits
    engine, broker, _seen, _ = engine_for([100, 100, 85, 75], plan, drawdown, on_trip="cancel_all")
    engine.run_sync()
    limit_80, limit_79 = engine.orders[1], engine.orders[2]
    assert drawdown.is_tripped
    assert limit_80.status is OrderStatus.CANCELLED
    assert limit_79.status is OrderStatus.CANCELLED
    assert broker.get_open_orders() == []
    assert broker.get_positions() == {"XYZ": Decimal(900)}  # the limits never filled
    assert engine.orders[3].status is OrderStatus.REJECTED
    assert engine.orders[3].reject_reasons[0].startswith("drawdown: Drawdown")


def test_pause_mode_leaves_working_orders_alone() -> None:
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    plan: Plan = {0: lambda c: [c.buy("XYZ", 900), c.buy("XYZ", 50, limit_price=80)]}
    engine, _broker, _seen, _ = engine_for([100, 85, 75], plan, drawdown, on_trip="pause")
    engine.run_sync()
    assert drawdown.is_tripped
    assert engine.orders[1].status is OrderStatus.FILLED  # the working order was kept


def test_reduce_only_lets_a_shrinking_sell_pass_and_refuses_a_buy() -> None:
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    plan: Plan = {
        0: lambda c: c.buy("XYZ", 900),
        2: lambda c: [c.sell("XYZ", 400), c.buy("XYZ", 10), c.sell("XYZ", 600)],
    }
    engine, broker, seen, _ = engine_for([100, 85, 85], plan, drawdown, on_trip="reduce_only")
    engine.run_sync()
    assert drawdown.is_tripped
    shrink, grow, flip = engine.orders[1:]
    assert shrink.status is OrderStatus.FILLED
    assert grow.status is OrderStatus.REJECTED
    assert any("does not shrink a position" in r for r in grow.reject_reasons)
    assert any(r.startswith("drawdown:") for r in grow.reject_reasons)
    # 600 more would take a 500 long to short 100: not a reduction
    assert flip.status is OrderStatus.REJECTED
    assert broker.get_positions() == {"XYZ": Decimal(500)}
    assert len(seen.kinds("order_refused")) == 2


def test_reduce_only_counts_working_reductions() -> None:
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    plan: Plan = {
        0: lambda c: c.buy("XYZ", 900),
        2: lambda c: [c.sell("XYZ", 600, limit_price=120), c.sell("XYZ", 600)],
    }
    engine, broker, _seen, _ = engine_for([100, 85, 85], plan, drawdown, on_trip="reduce_only")
    engine.run_sync()
    working, second = engine.orders[1:]
    assert working.status is OrderStatus.OPEN
    assert second.status is OrderStatus.REJECTED  # 600 + 600 would flip a 900 long
    assert broker.get_positions() == {"XYZ": Decimal(900)}


def test_reduce_only_still_obeys_a_manual_halt() -> None:
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    manual = ManualCircuitBreaker()

    def halt_then_sell(context: TradingContext) -> None:
        manual.trigger_halt(reason="kill switch", operator="ops")
        context.sell("XYZ", 100)

    plan: Plan = {0: lambda c: c.buy("XYZ", 900), 2: halt_then_sell}
    engine, broker, _seen, _ = engine_for(
        [100, 85, 85], plan, drawdown, manual, on_trip="reduce_only"
    )
    engine.run_sync()
    assert engine.orders[1].status is OrderStatus.REJECTED
    assert "manual: kill switch" in engine.orders[1].reject_reasons
    assert broker.get_positions() == {"XYZ": Decimal(900)}


def test_stop_mode_stops_the_loop_at_the_trip() -> None:
    daily = DailyLossCircuitBreaker(max_daily_loss=Decimal("5000"))
    plan: Plan = {0: lambda c: c.buy("XYZ", 900), 3: lambda c: c.buy("XYZ", 1)}
    engine, _broker, _seen, strategy = engine_for(
        [100, 99, 90, 100, 100], plan, daily, on_trip="stop"
    )
    processed = engine.run_sync()
    assert daily.is_tripped
    assert processed == 3  # the loop ended on the bar that tripped the breaker
    assert strategy.index == 1  # the strategy never saw the tripping bar
    assert engine.state == "stopped"
    assert len(engine.orders) == 1


def test_broker_exceptions_are_recorded_and_trip_the_error_breaker() -> None:
    errors = ErrorRateCircuitBreaker(max_errors=2, window_seconds=300)

    class Flaky(PaperBroker):
        def submit_order(self, order: Order) -> Order:
            raise ConnectionError("exchange timeout")

    mgr, _ = manager(errors)
    portal = DataPortal(minute_bars([100] * 5))
    seen = Recorder()
    mgr.add_listener(seen)
    engine = LiveTradingEngine(
        strategy=lambda context, bar: context.buy("XYZ", 1),
        broker_adapter=Flaky(portal),
        data_portal=portal,
        circuit_breakers=mgr,
    )
    engine.run_sync()
    statuses = [o.status for o in engine.orders]
    assert statuses == [OrderStatus.FAILED] * 3 + [OrderStatus.REJECTED] * 2
    assert engine.orders[0].error == "ConnectionError: exchange timeout"
    assert errors.is_tripped and errors.get_error_count() == 3
    assert engine.orders[-1].reject_reasons[0].startswith("error_rate")


def test_strategy_exception_is_an_error_and_its_queued_orders_are_not_sent() -> None:
    errors = ErrorRateCircuitBreaker(max_errors=5)

    def broken(context: TradingContext) -> None:
        context.buy("XYZ", 1)
        raise RuntimeError("bug")

    engine, broker, seen, _ = engine_for([100, 100], {0: broken}, errors)
    engine.run_sync()
    assert errors.get_error_count() == 1
    assert engine.orders[0].status is OrderStatus.REJECTED
    assert broker.get_positions() == {}
    assert seen.kinds("order_refused")


def test_async_broker_and_async_strategy() -> None:
    rate = OrderRateCircuitBreaker(10)
    mgr, _ = manager(rate)
    portal = DataPortal(minute_bars([100, 101]))
    paper = PaperBroker(portal, cash=1000)

    class AsyncBroker:
        async def submit_order(self, order: Order) -> Order:
            return paper.submit_order(order)

        async def cancel_order(self, order_id: str) -> bool:
            return paper.cancel_order(order_id)

        async def cancel_all(self) -> list[Order]:
            return paper.cancel_all()

        async def get_positions(self) -> dict[str, Decimal]:
            return paper.get_positions()

        async def get_account_value(self) -> Decimal:
            return paper.get_account_value()

    class AsyncStrategy:
        async def on_bar(self, context: TradingContext, bar: Bar) -> None:
            order = await context.submit(Order.make("XYZ", 2))
            assert order.status is OrderStatus.FILLED

    engine = LiveTradingEngine(
        strategy=AsyncStrategy(),
        broker_adapter=AsyncBroker(),
        data_portal=portal,
        circuit_breakers=mgr,
    )
    asyncio.run(engine.run())
    assert paper.get_positions() == {"XYZ": Decimal(4)}
    assert rate.get_order_count() == 1  # the first order aged out of the minute window


def test_explicit_pause_and_resume() -> None:
    async def scenario() -> list[OrderStatus]:
        mgr, _ = manager(OrderRateCircuitBreaker(10))
        portal = DataPortal()
        broker = PaperBroker(portal)
        engine = LiveTradingEngine(
            strategy=lambda c, b: c.buy("XYZ", 1),
            broker_adapter=broker,
            data_portal=portal,
            circuit_breakers=mgr,
        )
        bars = minute_bars([100, 100, 100])
        await engine.process_bar(bars[0])
        await engine.pause("maintenance")
        assert engine.state == "paused"
        await engine.process_bar(bars[1])
        await engine.resume()
        await engine.process_bar(bars[2])
        await engine.finish()
        return [o.status for o in engine.orders]

    statuses = asyncio.run(scenario())
    assert statuses == [OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.FILLED]


def test_breaker_tripped_before_start_is_acted_on() -> None:
    manual = ManualCircuitBreaker()
    manual.trigger_halt(reason="left halted", operator="ops")
    plan: Plan = {0: lambda c: c.buy("XYZ", 1)}
    engine, broker, _seen, _ = engine_for([100], plan, manual, on_trip="stop")
    assert engine.run_sync() == 0
    assert engine.state == "stopped" and broker.get_positions() == {}


def test_without_circuit_breakers_it_runs_but_warns_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    portal = DataPortal(minute_bars([100]))
    with (
        caplog.at_level(logging.CRITICAL, logger="haltgate.engine"),
        pytest.warns(RuntimeWarning, match="WITHOUT circuit breakers"),
    ):
        engine = LiveTradingEngine(
            strategy=lambda c, b: c.buy("XYZ", 1),
            broker_adapter=PaperBroker(portal),
            data_portal=portal,
        )
    assert any(r.message == "engine_without_circuit_breakers" for r in caplog.records)
    assert engine.circuit_breakers is None
    assert engine.run_sync() == 1
    assert engine.orders[0].status is OrderStatus.FILLED


def test_constructor_validation() -> None:
    portal = DataPortal()
    mgr, _ = manager()
    with pytest.raises(InvalidInputError, match="on_trip"):
        LiveTradingEngine(lambda c, b: None, PaperBroker(portal), portal, mgr, on_trip="panic")
    with pytest.raises(TypeError, match="broker_adapter"):
        LiveTradingEngine(lambda c, b: None, object(), portal, mgr)
    with pytest.raises(TypeError, match="strategy"):
        LiveTradingEngine(object(), PaperBroker(portal), portal, mgr)
    with pytest.raises(TypeError, match="circuit_breakers"):
        LiveTradingEngine(lambda c, b: None, PaperBroker(portal), portal, object())  # type: ignore[arg-type]


def test_unreadable_portfolio_value_is_an_error_and_the_bar_places_no_orders() -> None:
    errors = ErrorRateCircuitBreaker(max_errors=5)
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    mgr, _ = manager(errors, drawdown)
    portal = DataPortal(minute_bars([100, 100, 100]))
    calls: list[int] = []

    class Blind(PaperBroker):
        def get_account_value(self) -> Decimal:
            calls.append(1)
            if len(calls) == 2:
                raise TimeoutError("account endpoint timed out")
            if len(calls) == 3:
                return Decimal("NaN")
            return super().get_account_value()

    engine = LiveTradingEngine(
        strategy=lambda context, bar: context.buy("XYZ", 1),
        broker_adapter=Blind(portal),
        data_portal=portal,
        circuit_breakers=mgr,
    )
    engine.run_sync()
    assert len(engine.orders) == 1  # only the first bar had a valuation
    assert errors.get_error_count() == 2
    assert errors.get_trip_details() == {}


def test_cancel_all_on_an_operator_halt_between_bars() -> None:
    async def scenario() -> tuple[list[Order], PaperBroker, Recorder]:
        manual = ManualCircuitBreaker()
        mgr, _ = manager(manual)
        portal = DataPortal()
        broker = PaperBroker(portal)
        engine = LiveTradingEngine(
            strategy=lambda c, b: c.buy("XYZ", 10, limit_price=90),
            broker_adapter=broker,
            data_portal=portal,
            circuit_breakers=mgr,
            on_trip="cancel_all",
        )
        seen = Recorder()
        engine.add_listener(seen)
        bars = minute_bars([100, 100])
        await engine.process_bar(bars[0])
        assert engine.working_orders() == engine.orders
        mgr.halt_all(reason="operator says stop", operator="ops")
        await engine.process_bar(bars[1])
        await engine.finish()
        return engine.orders, broker, seen

    orders, broker, seen = asyncio.run(scenario())
    assert [o.status for o in orders] == [OrderStatus.CANCELLED, OrderStatus.REJECTED]
    assert orders[1].reject_reasons == ["manual: operator says stop"]
    assert broker.get_open_orders() == []
    assert [e.kind for e in seen.events] == ["halted", "order_refused"]


def test_order_history_is_bounded_and_keeps_working_orders() -> None:
    mgr, _clock = manager(OrderRateCircuitBreaker(10_000))
    portal = DataPortal(minute_bars([100] * 60))
    broker = PaperBroker(portal, cash=10_000_000)
    plan: Plan = {0: lambda c: c.buy("XYZ", 1, limit_price=50)}  # rests: stays working
    for bar in range(1, 60):
        plan[bar] = lambda c: [c.buy("XYZ", 1) for _ in range(5)]  # fill at once
    engine = LiveTradingEngine(
        strategy=Scripted(plan),
        broker_adapter=broker,
        data_portal=portal,
        circuit_breakers=mgr,
        order_history=20,
    )
    engine.run_sync()
    placed = 1 + 59 * 5
    assert len(engine.orders) <= 2 * 20 + 1 < placed
    resting = engine.working_orders()
    assert len(resting) == 1 and resting[0].limit_price == Decimal(50)
    finished = [o for o in engine.orders if not o.status.is_working]
    assert len(finished) >= 20
    assert all(o.status is OrderStatus.FILLED for o in finished)
    assert broker.get_positions() == {"XYZ": Decimal(59 * 5)}  # every order was still sent
    with pytest.raises(ValueError, match="order_history"):
        LiveTradingEngine(
            strategy=Scripted({}),
            broker_adapter=broker,
            data_portal=portal,
            circuit_breakers=mgr,
            order_history=0,
        )
