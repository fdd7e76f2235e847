"""LiveTradingEngine: an asyncio trading loop with the circuit breakers in front of the broker.

For every bar the engine (1) moves its clock to the bar's time when that clock is a
:class:`~haltgate.ManualClock` (historical bars drive a :class:`BarClock` unless a clock was
given: see :meth:`LiveTradingEngine._run_clock`),
(2) lets the broker see the bar (a paper broker fills working orders), (3) feeds the
portfolio value to the breakers (``manager.can_trade(current_portfolio_value=...)``),
(4) reacts to trips according to ``on_trip``, then (5) calls the strategy and sends each of
its orders through the :class:`~haltgate.engine.gate.OrderGate`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..checks.context import OrderContext
from ..checks.exposure import reduces_position
from ..clock import Clock, ManualClock
from ..errors import HaltgateError, InvalidInputError, InvalidTypeError
from ..events import BreakerEvent, EventKind, Listener
from ..gate import OrderGate
from ..orders import Order, OrderStatus
from ..values import DECIMAL_CONTEXT, Number, to_count, to_decimal
from .data import Bar, DataPortal
from .protocols import BROKER_METHODS, resolve, to_positions

if TYPE_CHECKING:
    from ..manager import CircuitBreakerManager

__all__ = ["ON_TRIP_MODES", "BarClock", "LiveTradingEngine", "TradingContext"]

logger = logging.getLogger("haltgate.engine")

OnTrip = Literal["pause", "cancel_all", "reduce_only", "stop"]
ON_TRIP_MODES: tuple[str, ...] = ("pause", "cancel_all", "reduce_only", "stop")
_ZERO = Decimal(0)
# A BarClock's time before its first bar when the portal could not say (bars pushed one by
# one): earlier than any bar, so the first bar moves time forward and no trading session
# (which only moves forward) was entered too late.
_BEFORE_ANY_BAR = datetime(1970, 1, 1, tzinfo=UTC)


class BarClock(ManualClock):
    """The clock that historical bars drive: wall time is the latest bar's timestamp.

    A :class:`~haltgate.ManualClock` that never goes backwards: :meth:`set` to an earlier
    time is refused (``InvalidInputError``), so no window, look-back or trading session a
    breaker keeps ever sees time step back. ``start`` is the first bar's time (``None``:
    1970-01-01 until the first bar). The monotonic reading starts at ``monotonic``, the
    reading of the clock it replaces, so a window or hold already measured on that clock
    stays consistent.
    """

    def __init__(self, start: datetime | None = None, *, monotonic: float = 0.0) -> None:
        super().__init__(_BEFORE_ANY_BAR if start is None else start)
        micros = max(0, round(float(monotonic) * 1_000_000))
        self._micros = micros
        self._monotonic = micros / 1_000_000

    def set(self, dt: datetime) -> None:
        """Move to ``dt``; a time before the current one is refused, nothing changed."""
        if isinstance(dt, datetime) and dt.tzinfo is not None and dt < self.now():
            raise InvalidInputError(
                "dt", dt, f"is before the bar clock's time {self.now().isoformat()}"
            )
        super().set(dt)

    def __repr__(self) -> str:
        return f"BarClock(now={self.now().isoformat()}, monotonic={self.monotonic()})"


class TradingContext:
    """What a strategy sees and uses during one bar.

    ``buy`` / ``sell`` / ``order`` queue an order (sent through the gate, in order, as soon
    as ``on_bar`` returns) and return it, so the strategy can look at its status later;
    ``await submit(order)`` sends one at once and returns it with its status.
    """

    def __init__(self, engine: LiveTradingEngine) -> None:
        self._engine = engine
        self._queue: list[Order] = []
        self.bar: Bar | None = None
        self.positions: dict[str, Decimal] = {}
        self.portfolio_value: Decimal | None = None

    @property
    def now(self) -> datetime:
        """The engine's clock (the bar's time on a ManualClock)."""
        return self._engine.clock.now()

    @property
    def engine(self) -> LiveTradingEngine:
        """The engine running this strategy."""
        return self._engine

    def price(self, symbol: str) -> Decimal | None:
        """The latest close of ``symbol``."""
        return self._engine.data_portal.current_price(symbol)

    def can_trade(self) -> bool:
        """Whether a new order would be admitted now (breakers and engine state)."""
        return self._engine.can_trade()

    def order(self, symbol: str, quantity: Number, *, limit_price: Number | None = None) -> Order:
        """Queue an order of signed ``quantity`` (positive buys, negative sells)."""
        order = Order.make(symbol, quantity, limit_price=limit_price)
        self._queue.append(order)
        return order

    def buy(self, symbol: str, quantity: Number, *, limit_price: Number | None = None) -> Order:
        """Queue a buy of ``quantity`` (> 0)."""
        amount = to_decimal(quantity, "quantity")
        if amount <= _ZERO:
            raise InvalidInputError("quantity", quantity, "must be greater than 0")
        return self.order(symbol, amount, limit_price=limit_price)

    def sell(self, symbol: str, quantity: Number, *, limit_price: Number | None = None) -> Order:
        """Queue a sell of ``quantity`` (> 0)."""
        amount = to_decimal(quantity, "quantity")
        if amount <= _ZERO:
            raise InvalidInputError("quantity", quantity, "must be greater than 0")
        return self.order(symbol, -amount, limit_price=limit_price)

    async def submit(self, order: Order) -> Order:
        """Send ``order`` through the gate now; returns it with its status."""
        return await self._engine.submit(order)

    async def cancel(self, order: Order | str) -> bool:
        """Cancel a working order (or order id) at the broker."""
        return await self._engine.cancel(order)

    async def get_positions(self) -> dict[str, Decimal]:
        """Fresh positions from the broker."""
        return to_positions(await resolve(self._engine.broker.get_positions()))


class LiveTradingEngine:
    """Runs a strategy against a broker with the circuit breakers gating every order.

    ``circuit_breakers`` is a :class:`~haltgate.CircuitBreakerManager` (the guide's
    "coordinator"). Without one the engine still runs but logs a loud warning: nothing
    would stop a runaway strategy.

    ``on_trip`` says what happens when a breaker trips or an operator halts trading:

    - ``"pause"`` (default): new orders are refused while any breaker blocks; trading
      resumes by itself when the breakers clear (self-clearing ones, or an operator reset).
    - ``"cancel_all"``: as pause, and working orders are cancelled at the broker.
    - ``"reduce_only"``: while blocked, only orders that shrink an existing position are
      admitted (a manual halt still refuses everything, and order windows still apply).
    - ``"stop"``: the loop stops; later orders are refused.

    Bars drive the clock unless a clock was given (:meth:`_run_clock` decides, once):
    ``clock=`` given here wins, then the manager's ``clock=``; otherwise historical bars
    (``data_portal.historical``) run on a :class:`BarClock` shared with the manager and its
    breakers, and a live feed on the system clock. ``clock_source`` says which. A
    :class:`~haltgate.ManualClock` is moved to each bar's timestamp, so replays and tests
    never sleep; under a bar clock a bar older than the clock is refused.

    ``orders`` holds every working order and the latest ``order_history`` finished ones
    (older finished orders are dropped once twice that many are held).
    """

    def __init__(
        self,
        strategy: Any,
        broker_adapter: Any,
        data_portal: DataPortal | Iterable[Any] | Any,
        circuit_breakers: CircuitBreakerManager | None = None,
        on_trip: OnTrip | str = "pause",
        *,
        clock: Clock | None = None,
        order_history: int = 10_000,
    ) -> None:
        from ..manager import CircuitBreakerManager

        if not (callable(getattr(strategy, "on_bar", None)) or callable(strategy)):
            raise InvalidTypeError(
                "strategy", strategy, "must have on_bar(context, bar) or be callable"
            )
        missing = [m for m in BROKER_METHODS if not callable(getattr(broker_adapter, m, None))]
        if missing:
            raise InvalidTypeError(
                "broker_adapter", broker_adapter, f"must implement {', '.join(missing)}"
            )
        if circuit_breakers is not None and not isinstance(circuit_breakers, CircuitBreakerManager):
            raise InvalidTypeError(
                "circuit_breakers", circuit_breakers, "must be a CircuitBreakerManager"
            )
        if not isinstance(on_trip, str) or on_trip not in ON_TRIP_MODES:
            raise InvalidInputError(
                "on_trip", on_trip, f"must be one of {', '.join(ON_TRIP_MODES)}"
            )
        if clock is not None and not (hasattr(clock, "monotonic") and hasattr(clock, "now")):
            raise InvalidTypeError("clock", clock, "must have monotonic() and now()")

        history = to_count(order_history, "order_history")
        self.strategy = strategy
        self.broker = broker_adapter
        self.data_portal: DataPortal = (
            data_portal if isinstance(data_portal, DataPortal) else DataPortal(data_portal)
        )
        self.circuit_breakers: CircuitBreakerManager | None = circuit_breakers
        self.on_trip: str = on_trip
        if circuit_breakers is None:
            message = (
                "LiveTradingEngine runs WITHOUT circuit breakers: nothing will stop a runaway "
                "order loop, a flash crash or a broken broker. Pass circuit_breakers="
                "CircuitBreakerManager(...) with at least drawdown, daily loss, order rate "
                "and manual breakers."
            )
            logger.critical("engine_without_circuit_breakers", extra={"detail": message})
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            self._manager = CircuitBreakerManager(clock=clock)
        else:
            self._manager = circuit_breakers
        self.clock: Clock
        self.clock_source: str
        """Where :attr:`clock` came from: ``"engine"`` (``clock=``), ``"manager"`` (the
        manager's ``clock=``), ``"bars"`` (a :class:`BarClock` the historical bars drive) or
        ``"system"`` (a live feed on the system clock)."""
        self.clock, self.clock_source = self._run_clock(clock)
        self.gate = OrderGate(self._manager)
        # Every working order and the latest ``order_history`` finished ones: a long-running
        # engine must not grow without bound (nor scan ever more orders on every bar).
        self.orders: list[Order] = []
        self.order_history = history
        self._known: set[int] = set()
        self.context = TradingContext(self)
        # Trips may be reported from other threads (a store's sync thread): guarded.
        self._pending_lock = threading.Lock()
        self._pending_trips: list[BreakerEvent] = []
        self._blocked = False
        self._paused_reason: str | None = None
        self._stopped = False
        self._running = False
        self._bars = 0

    def _run_clock(self, given: Clock | None) -> tuple[Clock, str]:
        """The one place that decides which clock a run reads: bars drive the clock unless a
        clock was given.

        1. ``clock=`` given to the engine: that clock. A manager without a clock of its own
           (and its breakers without one) adopts it, so the breakers read the engine's time.
        2. The manager was given ``clock=``: the manager's clock (the given clock wins over
           the bars' time).
        3. Historical bars (``data_portal.historical``: a CSV file, a sync iterable with
           bars): a :class:`BarClock` starting at the first bar's time, shared with the
           manager and every breaker that has no clock of its own.
        4. A live feed (async iterable, pushed bars): the manager's system clock, as before.

        In every case a :class:`~haltgate.ManualClock` is moved forward to each bar's time;
        a breaker given its own clock keeps it.
        """
        manager = self._manager
        if given is not None:
            chosen, source = given, "engine"
        elif manager.clock_given:
            return manager.clock, "manager"
        elif self.data_portal.historical:
            chosen = BarClock(
                self.data_portal.first_timestamp(), monotonic=manager.clock.monotonic()
            )
            source = "bars"
        else:
            return manager.clock, "system"
        if not manager.clock_given:
            manager._share_clock(chosen)
        logger.info("engine_clock", extra={"source": source, "clock": repr(chosen)})
        return chosen, source

    # ------------------------------------------------------------------ state
    @property
    def manager(self) -> CircuitBreakerManager:
        """The manager the gate asks (an empty one when none was given)."""
        return self._manager

    @property
    def state(self) -> str:
        """``"idle"``, ``"running"``, ``"paused"`` (by :meth:`pause`), ``"blocked"`` (a
        breaker refuses orders) or ``"stopped"``."""
        if self._stopped:
            return "stopped"
        if self._paused_reason is not None:
            return "paused"
        if self._blocked:
            return "blocked"
        return "running" if self._running else "idle"

    @property
    def bars_processed(self) -> int:
        """How many bars the engine has handled."""
        return self._bars

    def can_trade(self) -> bool:
        """Whether a new order would pass the gate now (ignoring reduce-only exceptions)."""
        return not self._stopped and self._paused_reason is None and self._manager.can_trade()

    def working_orders(self) -> list[Order]:
        """This engine's orders that may still fill."""
        return [o for o in self.orders if o.status.is_working]

    def add_listener(self, callback: Listener) -> None:
        """Receive the breakers' events and ``order_refused`` events (sync or async)."""
        self._manager.add_listener(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop delivering events to ``callback``."""
        self._manager.remove_listener(callback)

    # ------------------------------------------------------------------ control
    async def pause(self, reason: str = "paused by operator") -> None:
        """Refuse new orders until :meth:`resume` (independent of the breakers)."""
        self._paused_reason = str(reason) or "paused by operator"
        logger.warning("engine_paused", extra={"reason": self._paused_reason})

    async def resume(self) -> None:
        """Undo :meth:`pause`. Breakers that are tripped still refuse orders."""
        if self._paused_reason is not None:
            self._paused_reason = None
            logger.warning("engine_resumed", extra={"blocked": self._blocked})

    async def stop(self, reason: str = "stopped") -> None:
        """Stop the loop after the current step; later orders are refused."""
        if not self._stopped:
            self._stopped = True
            logger.error("engine_stopped", extra={"reason": reason})

    # ------------------------------------------------------------------ loop
    async def run(self) -> int:
        """Process every bar of the data portal (until it ends or the engine stops);
        returns the number of bars processed."""
        await self.start()
        try:
            async for bar, where in self.data_portal.avalidated():
                await self._process(bar, where)
                if self._stopped:
                    break
        finally:
            await self.finish()
        return self._bars

    def run_sync(self) -> int:
        """:meth:`run` for code without an event loop."""
        return asyncio.run(self.run())

    async def start(self) -> None:
        """Begin a session: listen to the breakers, call ``strategy.on_start``, react to
        breakers that are already tripped (restored from a store)."""
        if self._running:
            return
        self._running = True
        self._manager.add_listener(self._on_event)
        logger.info(
            "engine_started",
            extra={"on_trip": self.on_trip, "breakers": list(self._manager.get_status())},
        )
        hook = getattr(self.strategy, "on_start", None)
        if callable(hook):
            await self._call_strategy(hook, self.context)
        await self._react()

    async def finish(self) -> None:
        """End a session: call ``strategy.on_stop`` and stop listening."""
        if not self._running:
            return
        hook = getattr(self.strategy, "on_stop", None)
        if callable(hook):
            await self._call_strategy(hook, self.context)
        self._manager.remove_listener(self._on_event)
        self._running = False
        logger.info("engine_finished", extra={"bars": self._bars, "state": self.state})

    async def process_bar(self, bar: Bar | Mapping[str, Any]) -> None:
        """Handle one bar: clock, broker, breakers, reaction, strategy, orders.

        When bars drive the clock (a :class:`BarClock`, also one an earlier engine shared
        with this manager) a bar older than the clock is refused with ``InvalidInputError``
        naming it, before anything of it happens."""
        checked = Bar.of(bar, default_symbol=self.data_portal.default_symbol)
        await self._process(checked, "bar")

    async def _process(self, checked: Bar, where: str) -> None:
        if not self._running:
            await self.start()
        if self._stopped:
            return
        if isinstance(self.clock, BarClock) and checked.timestamp < self.clock.now():
            # Time never goes backwards for the breakers: an out-of-order history is a data
            # error, not a bar to judge on a clock that would have to lie.
            raise InvalidInputError(
                f"{where}.timestamp",
                checked.timestamp.isoformat(),
                f"is before the previous bar's time {self.clock.now().isoformat()}: "
                "historical bars must be in time order",
            )
        self.data_portal.record(checked)
        self._advance_clock(checked.timestamp)
        self._bars += 1
        on_bar = getattr(self.broker, "on_bar", None)
        if callable(on_bar):
            try:
                await resolve(on_bar(checked))
            except Exception as exc:
                self._record_error(exc, "broker", "broker_on_bar_failed")
        value = await self._observe_portfolio()
        await self._react()
        if self._stopped:
            return
        if value is None:
            # Without a portfolio value the drawdown and daily-loss breakers are blind:
            # this bar places no orders (fail closed).
            return
        context = self.context
        context.bar = checked
        context.portfolio_value = value
        try:
            context.positions = to_positions(await resolve(self.broker.get_positions()))
        except Exception as exc:
            self._record_error(exc, "broker", "positions_unavailable")
            return
        context._queue = []
        call: Callable[..., Any] = getattr(self.strategy, "on_bar", None) or self.strategy
        ok, result = await self._call_strategy(call, context, checked)
        queued = context._queue
        context._queue = []
        # Orders may also be returned; one already queued (``return context.buy(...)``) is
        # sent once.
        returned: list[Any] = []
        if ok and isinstance(result, Order):
            returned = [result]
        elif ok and isinstance(result, Iterable) and not isinstance(result, (str, bytes)):
            returned = list(result)
        for item in returned:
            if isinstance(item, Order) and not any(item is q for q in queued):
                queued.append(item)
        for order in queued:
            if not ok:
                self._remember(order)
                self.gate.admit(order, refusals=["not sent: the strategy raised during this bar"])
                continue
            await self.submit(order)

    # ------------------------------------------------------------------ orders
    async def submit(self, order: Order) -> Order:
        """Send ``order`` through the gate to the broker; returns it with its status.

        With pre-trade checks in the manager (or in reduce-only mode while blocked) the
        engine first builds the order's :class:`~haltgate.OrderContext`
        (:meth:`order_context`); if the broker fails while it is built, the order is
        refused (``order context failed: ...``, REJECTED, the error recorded), never sent
        unjudged. A check's refusal marks the order REJECTED with
        ``"check_name: reason"``; its ``order_refused`` event carries the deny code in
        ``details["code"]``."""
        if not isinstance(order, Order):
            raise InvalidTypeError("order", order, "must be an Order")
        if order.created_at is None:
            order.created_at = self.clock.now()
        if id(order) not in self._known:
            self._remember(order)
        refusals, reduce_only, context = await self._engine_refusals(order)
        reasons = self.gate.admit(
            order, context=context, reduce_only=reduce_only, refusals=refusals
        )
        if reasons:
            logger.warning("order_rejected", extra={"order_id": order.id, "reasons": reasons})
            await self._react()
            return order
        try:
            result = await resolve(self.broker.submit_order(order))
        except Exception as exc:
            self.gate.failed(exc, order)
            await self._react()
            return order
        if isinstance(result, Order) and result is not order:
            _copy_status(result, order)
        if order.status is OrderStatus.NEW:
            order.status = OrderStatus.SUBMITTED
        await self._react()
        return order

    async def cancel(self, order: Order | str) -> bool:
        """Cancel one working order at the broker. The cancel counts as a message for
        :class:`~haltgate.checks.MessageThrottle` (``manager.record_message("cancel")``)
        once it is sent, whether or not the broker then cancels anything; a cancel is
        never refused."""
        order_id = order.id if isinstance(order, Order) else str(order)
        self._manager.record_message("cancel")
        try:
            done = bool(await resolve(self.broker.cancel_order(order_id)))
        except Exception as exc:
            self._record_error(exc, "broker", "order_cancel_failed")
            return False
        if done:
            for mine in self.orders:
                if mine.id == order_id and mine.status.is_working:
                    mine.status = OrderStatus.CANCELLED
        return done

    async def order_context(self, order: Order, *, account: bool = True) -> OrderContext:
        """The :class:`~haltgate.OrderContext` the pre-trade checks judge ``order`` in,
        read from the broker and the data portal now (the one place the engine builds it;
        the broker's methods may be sync or async):

        * ``position``: the broker's signed position in ``order.symbol``;
        * ``open_orders``: the broker's working orders (``get_open_orders()``, when the
          adapter has it), else this engine's working orders;
        * ``equity``: the broker's account value;
        * ``gross_exposure``: the sum of ``|position| * latest close`` over every position;
        * ``reference_price`` / ``price_time``: the portal's latest close of the symbol
          and that bar's timestamp (none before its first bar), so a price older than the
          clock by more than ``PriceCollar``'s age is refused as stale.

        With ``account=False`` (reduce-only mode without checks: only the reducing rule
        reads the context) the account value and gross exposure are not read (``equity``
        ``None``, ``gross_exposure`` 0), so a closing order does not depend on them.

        Raises whatever the broker raises, and ``LookupError`` for a position with no price
        to value it; :meth:`submit` then refuses the order (fail closed)."""
        broker = self.broker
        positions = to_positions(await resolve(broker.get_positions()))
        lister = getattr(broker, "get_open_orders", None)
        working: Iterable[Any]
        if callable(lister):
            listed = await resolve(lister())
            working = () if listed is None else listed
        else:
            working = [o for o in self.orders if o is not order and o.status.is_working]
        equity = await resolve(broker.get_account_value()) if account else None
        portal = self.data_portal
        gross = _ZERO
        for symbol, quantity in positions.items():
            if quantity == _ZERO or not account:
                continue
            price = portal.current_price(symbol)
            if price is None:
                raise LookupError(f"no price for {symbol} to value the gross exposure")
            gross = DECIMAL_CONTEXT.add(gross, DECIMAL_CONTEXT.multiply(quantity.copy_abs(), price))
        bar = portal.current_bar(order.symbol)
        return OrderContext(
            position=positions.get(order.symbol, _ZERO),
            reference_price=None if bar is None else bar.close,
            price_time=None if bar is None else bar.timestamp,
            equity=equity,
            open_orders=working,
            gross_exposure=gross,
        )

    async def _engine_refusals(self, order: Order) -> tuple[list[str], bool, OrderContext | None]:
        """The engine's own reasons to refuse ``order``, whether it goes as a reduce-only
        order, and its context (built when the checks or reduce-only mode need it)."""
        if self._stopped:
            return ["engine stopped"], False, None
        if self._paused_reason is not None:
            return [f"engine paused: {self._paused_reason}"], False, None
        reduce_mode = self.on_trip == "reduce_only" and not self._manager.can_trade()
        checked = bool(self._manager.get_checks())
        if not reduce_mode and not checked:
            return [], False, None
        try:
            context = await self.order_context(order, account=checked)
        except Exception as exc:
            # Fail closed: an order whose position, working orders or prices cannot be read
            # is never sent unjudged.
            self._record_error(exc, "broker", "order_context_failed")
            return [f"order context failed: {type(exc).__name__}: {exc}"], False, None
        if not reduce_mode:
            return [], False, context
        # One reducing rule for reduce-only mode and the checks' exemption: the position
        # plus the working orders on the order's side, towards zero and never past it.
        if reduces_position(order, context):
            return [], True, context
        blocking = self._manager.get_blocking_reasons()
        reason = (
            f"reduce-only mode: {order.side.value} {order.quantity} {order.symbol} "
            "does not shrink a position"
        )
        return [*blocking, reason], False, context

    # ------------------------------------------------------------------ breakers
    def _on_event(self, event: BreakerEvent) -> None:
        if event.kind in (EventKind.TRIPPED, EventKind.HALTED):
            with self._pending_lock:
                self._pending_trips.append(event)

    async def _observe_portfolio(self) -> Decimal | None:
        try:
            value = to_decimal(
                await resolve(self.broker.get_account_value()), "current_portfolio_value"
            )
        except Exception as exc:
            self._record_error(exc, "broker", "portfolio_value_unavailable")
            return None
        if self._manager.accepts_observation("current_portfolio_value"):
            try:
                self._manager.can_trade(current_portfolio_value=value)
            except HaltgateError as exc:  # a value the breakers refuse is no valuation
                self._record_error(exc, "broker", "portfolio_value_refused")
                return None
        return value

    async def _react(self) -> None:
        """Apply ``on_trip`` to trips seen since the last call; log pauses and resumes."""
        with self._pending_lock:
            trips, self._pending_trips = self._pending_trips, []
        blocked = not self._manager.can_trade()
        if trips or (blocked and not self._blocked):
            reasons = [f"{e.breaker_name}: {e.reason}" for e in trips] or (
                self._manager.get_blocking_reasons()
            )
            logger.error(
                "engine_breaker_tripped",
                extra={"reasons": reasons, "on_trip": self.on_trip},
            )
            if self.on_trip == "cancel_all":
                await self._cancel_working(reasons)
            elif self.on_trip == "stop":
                await self.stop("circuit breaker tripped: " + "; ".join(reasons))
            elif not self._blocked and blocked:
                logger.warning(
                    "engine_trading_blocked",
                    extra={"reasons": reasons, "on_trip": self.on_trip},
                )
        elif self._blocked and not blocked:
            logger.warning("engine_trading_resumed", extra={"on_trip": self.on_trip})
        self._blocked = blocked

    async def _cancel_working(self, reasons: list[str]) -> None:
        try:
            result = await resolve(self.broker.cancel_all())
        except Exception as exc:
            # The request went out: it counts as one message for the throttle.
            self._manager.record_message("cancel")
            self._record_error(exc, "broker", "cancel_all_failed")
            return
        cancelled: set[str] = set()
        for item in result or ():
            cancelled.add(item.id if isinstance(item, Order) else str(item))
        # A cancel-all is one cancel per order it cancelled at the venue (one message when
        # it found none): counted, never refused (SPEC §10).
        for _ in range(max(1, len(cancelled))):
            self._manager.record_message("cancel")
        for order in self.orders:
            if order.id in cancelled and order.status.is_working:
                order.status = OrderStatus.CANCELLED
        logger.error(
            "engine_orders_cancelled",
            extra={"count": len(cancelled), "order_ids": sorted(cancelled), "reasons": reasons},
        )

    # ------------------------------------------------------------------ helpers
    def _advance_clock(self, when: datetime) -> None:
        clock = self.clock
        if isinstance(clock, ManualClock) and when > clock.now():
            clock.set(when)

    def _remember(self, order: Order) -> None:
        self.orders.append(order)
        self._known.add(id(order))
        if len(self.orders) > 2 * self.order_history:
            self._forget_finished()

    def _forget_finished(self) -> None:
        finished = [o for o in self.orders if not o.status.is_working]
        drop = {id(o) for o in finished[: len(finished) - self.order_history]}
        if drop:
            self.orders = [o for o in self.orders if id(o) not in drop]
            # Forget their ids too: a new order may reuse the id of a dropped one.
            self._known -= drop

    def _record_error(self, error: BaseException, category: str, event: str) -> None:
        logger.error(event, extra={"error": repr(error)[:500], "category": category})
        self._manager.record_error(error, category=category)

    async def _call_strategy(self, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        try:
            return True, await resolve(fn(*args))
        except Exception as exc:
            self._record_error(exc, "strategy", "strategy_failed")
            return False, None


def _copy_status(source: Order, target: Order) -> None:
    target.status = source.status
    target.filled_quantity = source.filled_quantity
    target.fill_price = source.fill_price
    target.filled_at = source.filled_at
    target.reject_reasons = list(source.reject_reasons)
    target.rejected_by = source.rejected_by
    if source.id and source.id != target.id:
        target.id = source.id
