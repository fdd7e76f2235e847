"""TradingCircuitBreakers: the trader-ai README's facade over the section-3 breakers.

One :class:`~haltgate.CircuitBreakerManager` holds the breakers (daily loss, max drawdown
= kill switch, position concentration, volatility, orders per minute and per hour,
connection); this class feeds them from a :class:`PortfolioProvider`, gates orders through
the manager and guards the kill switch. It is not a second engine: every trip, warning,
reset and event goes through the breakers' one state machine and the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..authority import claim_keys
from ..breakers.base import BaseCircuitBreaker
from ..breakers.state import CircuitBreakerState
from ..breakers.threshold import CrossingWarning
from ..clock import Clock
from ..errors import AuthorizationError, InvalidInputError, InvalidTypeError
from ..events import BreakerEvent, EventKind, Listener, ListenerSet
from ..manager import CircuitBreakerManager
from ..store import MemoryStore, Store, open_store
from ..values import DECIMAL_CONTEXT, RATIO_CONTEXT, Number, to_decimal, to_text
from .breakers import (
    MAX_DRAWDOWN,
    ORDERS_PER_HOUR,
    ORDERS_PER_MINUTE,
    FacadeBreakers,
    build_breakers,
)
from .callbacks import adapt_callback
from .config import TradingBreakerConfig
from .kill_switch import KillSwitch
from .provider import ProviderCaller, ProviderError, cancelled_by_caller, check_provider

__all__ = ["TradingCircuitBreakers"]

logger = logging.getLogger("haltgate.trading")

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
# The connection breaker's source for the provider's failures and answers, so that the
# provider's recovery never clears failures the caller recorded (and the reverse).
_PROVIDER = "provider"
_ALIASES = {"kill_switch": (MAX_DRAWDOWN,), "rate_limit": (ORDERS_PER_MINUTE, ORDERS_PER_HOUR)}


class TradingCircuitBreakers:
    """P&L protection for a trading system (the trader-ai README's API).

    ``portfolio`` implements :class:`~haltgate.PortfolioProvider` (sync or async methods).
    ``config`` defaults to :class:`~haltgate.TradingBreakerConfig` ``()``. ``store`` (an
    object or a URL such as ``"sqlite:///haltgate.db"``; default a new
    :class:`~haltgate.MemoryStore`) keeps trips, the audit log and the kill-switch lock-out
    counters. ``clock`` defaults to the system clock.

    Breaker names: ``daily_loss``, ``max_drawdown`` (the kill switch),
    ``position_concentration``, ``volatility``, ``orders_per_minute``, ``orders_per_hour``
    and ``connection``.
    """

    def __init__(
        self,
        portfolio: Any,
        config: TradingBreakerConfig | None = None,
        *,
        clock: Clock | None = None,
        store: Store | str | None = None,
    ) -> None:
        check_provider(portfolio)
        if config is None:
            config = TradingBreakerConfig()
        elif not isinstance(config, TradingBreakerConfig):
            raise InvalidTypeError("config", config, "must be a TradingBreakerConfig")
        the_store = MemoryStore() if store is None else open_store(store)
        self.config = config
        self._portfolio = portfolio
        self._provider = ProviderCaller(portfolio, config.provider_timeout_seconds)
        self._breakers: FacadeBreakers = build_breakers(config)
        self._manager = CircuitBreakerManager(
            breakers=self._breakers.all(), store=the_store, clock=clock
        )
        self._clock = self._manager.clock
        self._store = the_store
        if config.kill_switch_key_hash is not None:
            # The key's authority lives in the store (SPEC §5/§6): the CLI and the admin API
            # then need the key too; a hash the store already holds is kept.
            claim_keys(
                the_store,
                {MAX_DRAWDOWN: config.kill_switch_key_hash},
                source="TradingBreakerConfig",
            )
        self._kill_switch = KillSwitch(
            self._breakers.max_drawdown,
            key_hash=config.kill_switch_key_hash,
            store=the_store,
            clock=self._clock,
            latched=config.require_manual_reset,
        )
        self._trip_callbacks = ListenerSet()
        self._warning_callbacks = ListenerSet()
        self._manager.add_listener(self._dispatch)
        self._lock = threading.Lock()
        self._position_warnings: dict[str, CrossingWarning] = {}
        self._reading: dict[str, Any] = {"ok": None, "at": None, "error": None}
        self._monitor: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        # Set when the monitoring task ended without stop_monitoring(): trading is refused
        # until monitoring is started again or stopped on purpose.
        self._monitor_died: str | None = None

    # ------------------------------------------------------------------ parts
    @property
    def manager(self) -> CircuitBreakerManager:
        """The manager that holds the breakers (for listeners, status views, the CLI)."""
        return self._manager

    @property
    def store(self) -> Store:
        """The store that keeps state, the audit log and the lock-out counters."""
        return self._store

    @property
    def clock(self) -> Clock:
        """The clock every breaker reads."""
        return self._clock

    @property
    def kill_switch(self) -> KillSwitch:
        """The kill switch guarding the max-drawdown breaker."""
        return self._kill_switch

    def get_breaker(self, name: str) -> BaseCircuitBreaker:
        """The breaker called ``name`` (``InvalidInputError`` for an unknown name)."""
        breaker = self._manager.get_breaker(name)
        if breaker is None:
            raise InvalidInputError("name", name, f"unknown breaker; one of {self._names()}")
        return breaker

    def _names(self) -> list[str]:
        return [b.name for b in self._manager.get_all_breakers()]

    # ------------------------------------------------------------------ checks
    def can_trade(self) -> bool:
        """True when no breaker is tripped or halted and one more order fits the rate
        limits, and the monitoring task has not died (see :meth:`start_monitoring`). A pure
        state read: no I/O, no call to the provider."""
        if self._monitor_died is not None:
            return False
        return self._manager.can_trade()

    def get_blocking_reasons(self) -> list[str]:
        """Why trading is refused now, one ``"name: reason"`` per blocking breaker (and
        ``"monitoring: ..."`` when the monitoring task died)."""
        reasons = self._manager.get_blocking_reasons()
        died = self._monitor_died
        if died is not None:
            reasons.append(
                f"monitoring: the monitoring task ended unexpectedly ({died}); restart it "
                "with start_monitoring() or stop it with stop_monitoring()"
            )
        if self._kill_switch.latched:
            prefix = f"{MAX_DRAWDOWN}: "
            reasons = [
                f"{r} (kill switch: reset with reset_kill_switch(auth_key))"
                if r.startswith(prefix)
                else r
                for r in reasons
            ]
        return reasons

    async def record_order(self) -> bool:
        """Admit and record one order against the per-minute and per-hour limits, or
        refuse it (also refused while any breaker blocks trading). Atomic across both
        windows: a refused order is counted in neither. Refused too while the monitoring
        task is dead, like :meth:`can_trade`."""
        died = self._monitor_died
        if died is not None:
            reason = f"monitoring: {died}"
            self._manager.refuse_order(f"trading is blocked: {reason}", blocking=[reason])
            return False
        return self._manager.record_order()

    async def check_position_concentration(self, symbol: str, value: Number) -> bool:
        """May an order adding ``value`` (money; negative to sell) to ``symbol`` go?

        Asks the provider for the total value and the symbol's current concentration;
        refuses (``order_refused`` event) when the position would end above
        ``max_position_pct`` and grow, when the provider fails (which also feeds the
        connection breaker) or when the portfolio value is not positive. A warning fires
        once per crossing of ``position_warning_pct``.
        """
        symbol = to_text(symbol, "symbol")
        proposed = to_decimal(value, "value")
        breaker = self._breakers.concentration
        try:
            total = await self._ask_decimal("get_total_value")
            current_pct = await self._ask_decimal("get_position_concentration", symbol)
        except ProviderError as failure:
            self._provider_failed(failure)
            breaker._refused(
                f"Order for {symbol} refused: the portfolio provider failed ({failure})",
                {"symbol": symbol, "error": repr(failure.error)[:500]},
            )
            return False
        self._provider_ok()
        if total <= _ZERO:
            breaker._refused(
                f"Order for {symbol} refused: portfolio value {total} is not positive",
                {"symbol": symbol, "portfolio_value": total},
            )
            return False
        # Exact (dividing by 100 only moves the point); it can carry more digits than an
        # input may have, so it is judged as it is rather than validated as an input.
        current_value = DECIMAL_CONTEXT.divide(
            DECIMAL_CONTEXT.multiply(total, current_pct), _HUNDRED
        )
        if not breaker._judge_order(symbol, proposed, total, current_value):
            return False
        size = DECIMAL_CONTEXT.add(current_value, proposed).copy_abs()
        level = self.config.position_warning_pct
        if level is not None:
            with self._lock:
                crossing = self._position_warnings.setdefault(symbol, CrossingWarning())
                # Exact: size / total * 100 >= level.
                due = crossing.update(
                    DECIMAL_CONTEXT.multiply(size, _HUNDRED)
                    >= DECIMAL_CONTEXT.multiply(level, total)
                )
            if due:
                after_pct = RATIO_CONTEXT.multiply(RATIO_CONTEXT.divide(size, total), _HUNDRED)
                breaker._warn(
                    f"Position in {symbol} would be {after_pct:.2f}% of the portfolio "
                    f"(warning at {level}%, max {self.config.max_position_pct}%)",
                    {"symbol": symbol, "threshold": level, "observed": after_pct},
                )
        return True

    # ------------------------------------------------------------------ connection
    def record_connection_failure(self, error: Any = None) -> None:
        """Record a failed broker/API call (``failure_threshold`` in a row trip)."""
        self._breakers.connection.record_failure(error)

    def record_connection_success(self) -> None:
        """Record a successful broker/API call (clears a connection trip)."""
        self._breakers.connection.record_success()

    # ------------------------------------------------------------------ volatility
    def record_price(self, price: Number) -> Decimal | None:
        """Feed a market price to the volatility breaker; returns the implied return."""
        return self._breakers.volatility.record_price(price)

    def record_return(self, value: Number) -> Decimal | None:
        """Feed a return (``Decimal("-0.05")`` = -5 %) to the volatility breaker."""
        return self._breakers.volatility.record_return(value)

    # ------------------------------------------------------------------ monitoring
    @property
    def is_monitoring(self) -> bool:
        """True while the monitoring task runs."""
        return self._monitor is not None and not self._monitor.done()

    @property
    def monitoring_failure(self) -> str | None:
        """Why the monitoring task ended without :meth:`stop_monitoring`, or ``None``."""
        return self._monitor_died

    async def start_monitoring(self) -> None:
        """Poll the provider every ``check_interval_seconds`` in an asyncio task (one
        :meth:`check_once` per round). The first round runs before this returns, so the
        next :meth:`can_trade` already reflects the portfolio. Calling it again while
        running does nothing.

        If the task ever ends without :meth:`stop_monitoring`, that is logged
        (``trading_monitoring_died``, critical) and :meth:`can_trade` refuses until
        monitoring is started again or stopped on purpose.
        """
        if self.is_monitoring:
            return
        stop = asyncio.Event()
        self._stop = stop
        task = asyncio.get_running_loop().create_task(
            self._run(stop), name="haltgate-trading-monitor"
        )
        self._monitor = task
        self._monitor_died = None
        task.add_done_callback(self._monitor_ended)
        await self._guarded_round()
        logger.info(
            "trading_monitoring_started",
            extra={"interval_seconds": self.config.check_interval_seconds},
        )

    async def stop_monitoring(self) -> None:
        """Stop the monitoring task (waits for it to end; a pending provider call is
        cancelled)."""
        task, stop = self._monitor, self._stop
        self._monitor = None
        # Stopping on purpose is the operator's decision to run without monitoring.
        self._monitor_died = None
        if task is None:
            return
        if stop is not None:
            stop.set()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        logger.info("trading_monitoring_stopped")

    async def _run(self, stop: asyncio.Event) -> None:
        interval = self.config.check_interval_seconds
        while not stop.is_set():
            # start_monitoring ran the first round itself.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                break
            await self._guarded_round()

    async def _guarded_round(self) -> None:
        try:
            await self.check_once()
        except asyncio.CancelledError:
            if cancelled_by_caller():
                raise
            # check_once turns a provider's own CancelledError into a provider failure; one
            # raised elsewhere is not a request to stop monitoring either.
            logger.exception("trading_monitoring_check_failed")
        except Exception:
            # check_once handles provider failures; this guards against the rest so that
            # monitoring never dies silently.
            logger.exception("trading_monitoring_check_failed")

    def _monitor_ended(self, task: asyncio.Task[None]) -> None:
        if self._monitor is not task:
            return  # stop_monitoring() ended it
        if task.cancelled():
            why = "cancelled"
        else:
            error = task.exception()
            why = "returned" if error is None else repr(error)[:500]
        self._monitor_died = why
        logger.critical("trading_monitoring_died", extra={"error": why})

    async def check_once(self) -> bool:
        """One monitoring round: read the provider and feed the breakers.

        Returns True when the provider answered. A provider that raises, hangs past
        ``provider_timeout_seconds`` or returns an unusable value counts as one connection
        failure; the round stops there (values already read are still applied).
        """
        try:
            pnl_pct = await self._ask_decimal("get_daily_pnl_pct")
            self._breakers.daily_loss.observe(pnl_pct)
            drawdown = await self._ask_decimal("get_max_drawdown")
            if drawdown > _ZERO:
                raise ProviderError(
                    "get_max_drawdown",
                    InvalidInputError(
                        "get_max_drawdown()",
                        drawdown,
                        "a drawdown is never positive (-12.0 is 12 % below the peak)",
                    ),
                )
            self._breakers.max_drawdown.observe(drawdown)
            total = await self._ask_decimal("get_total_value")
            pnl = await self._ask_decimal("get_daily_pnl")
            price = await self._market_price()
        except ProviderError as failure:
            self._provider_failed(failure)
            return False
        with self._lock:
            self._reading = {
                "ok": True,
                "at": self._clock.now(),
                "error": None,
                "total_value": total,
                "daily_pnl": pnl,
                "daily_pnl_pct": pnl_pct,
                "max_drawdown": drawdown,
                "market_price": price,
            }
        self._provider_ok()
        return True

    async def _market_price(self) -> Decimal | None:
        method = getattr(self._portfolio, "get_market_price", None)
        if not callable(method):
            return None
        raw = await self._provider.call("get_market_price")
        if raw is None:
            return None
        try:
            price = to_decimal(raw, "get_market_price()")
            self._breakers.volatility.record_price(price)
        except InvalidInputError as exc:
            raise ProviderError("get_market_price", exc) from exc
        return price

    async def _ask_decimal(self, method: str, *args: Any) -> Decimal:
        raw = await self._provider.call(method, *args)
        try:
            return to_decimal(raw, f"{method}()")
        except InvalidInputError as exc:
            raise ProviderError(method, exc) from exc

    def _provider_failed(self, failure: ProviderError) -> None:
        logger.warning(
            "portfolio_provider_failed",
            extra={"method": failure.method, "error": repr(failure.error)[:500]},
        )
        with self._lock:
            self._reading = {
                **self._reading,
                "ok": False,
                "at": self._clock.now(),
                "error": str(failure),
            }
        self._breakers.connection.record_failure(failure, source=_PROVIDER)

    def _provider_ok(self) -> None:
        # Clears the provider's own failures (and a trip they alone caused); for broker
        # failures the caller recorded, an answer is only a sign of life.
        self._breakers.connection.record_success(source=_PROVIDER)

    # ------------------------------------------------------------------ resets
    def reset_kill_switch(self, auth_key: str, *, operator: str | None = None) -> bool:
        """Reset the kill switch (the max-drawdown breaker) with the operator key.

        Returns True. Raises :class:`~haltgate.AuthorizationError` on a wrong key, when no
        ``kill_switch_key_hash`` is configured, and for 5 minutes after 5 wrong keys.
        """
        return self._kill_switch.reset(auth_key, operator=operator)

    def reset_breaker(self, name: str, *, operator: str | None = None) -> bool:
        """Reset one breaker (``"rate_limit"`` resets both order windows). Returns True if
        it was tripped or halted. A latched kill switch is refused: use
        :meth:`reset_kill_switch`."""
        name = to_text(name, "name")
        targets = _ALIASES.get(name, (name,))
        breakers = [self.get_breaker(target) for target in targets]
        for breaker in breakers:
            if breaker is self._breakers.max_drawdown and self._kill_switch.latched:
                raise AuthorizationError(
                    "The max_drawdown breaker is the kill switch: reset it with "
                    "reset_kill_switch(auth_key)"
                )
        was = False
        for breaker in breakers:
            if breaker.state is not CircuitBreakerState.NORMAL:
                breaker.reset(operator=operator, reason=f"reset_breaker({name!r})")
                was = True
        return was

    def reset_all(self, *, operator: str | None = None) -> list[str]:
        """Reset every tripped or halted breaker except a latched kill switch, which only
        :meth:`reset_kill_switch` clears. Returns the names that were reset."""
        done = []
        for breaker in self._manager.get_all_breakers():
            if breaker is self._breakers.max_drawdown and self._kill_switch.latched:
                if breaker.is_tripped:
                    logger.warning(
                        "kill_switch_not_reset",
                        extra={"breaker": breaker.name, "hint": "use reset_kill_switch"},
                    )
                continue
            if breaker.state is not CircuitBreakerState.NORMAL:
                breaker.reset(operator=operator, reason="reset_all()")
                done.append(breaker.name)
        return done

    # ------------------------------------------------------------------ callbacks
    def register_trip_callback(self, callback: Callable[..., Any]) -> None:
        """Call ``callback`` (sync or async) when a breaker trips or is halted.

        It may take the :class:`~haltgate.BreakerEvent` (``cb(event)``) or the original
        component's two arguments (``cb(breaker_name, reason)``); the signature is checked
        now, and one that fits neither is refused with :class:`~haltgate.InvalidTypeError`
        (see :func:`haltgate.trading.callbacks.adapt_callback`). A callback that fails when
        called is logged (``listener_failed``) and isolated."""
        self._trip_callbacks.add(adapt_callback(callback))

    def register_warning_callback(self, callback: Callable[..., Any]) -> None:
        """Call ``callback`` (sync or async) on each warning: a threshold crossed at a
        ``*_warning_pct`` level, and every refused kill-switch reset. Same two forms, and the
        same check at registration, as :meth:`register_trip_callback`."""
        self._warning_callbacks.add(adapt_callback(callback))

    def add_listener(self, callback: Listener) -> None:
        """Receive every :class:`~haltgate.BreakerEvent` (trips, resets, warnings,
        refused orders)."""
        self._manager.add_listener(callback)

    def _dispatch(self, event: BreakerEvent) -> None:
        if event.kind in (EventKind.TRIPPED, EventKind.HALTED):
            self._trip_callbacks.emit(event)
        elif event.kind is EventKind.WARNING:
            self._warning_callbacks.emit(event)

    # ------------------------------------------------------------------ status
    def get_status(self) -> dict[str, Any]:
        """Everything at once: can_trade, blocking reasons, each breaker (state, reason,
        details), the kill switch, order counts, the last provider reading, monitoring and
        the config."""
        b = self._breakers
        breakers: dict[str, dict[str, Any]] = {}
        for breaker in self._manager.get_all_breakers():
            state = breaker.state
            breakers[breaker.name] = {
                "type": breaker.breaker_type.value,
                "state": state.value,
                "reason": breaker.get_trip_reason(),
                "since": breaker.since,
                "details": breaker.get_trip_details(),
            }
        breakers[b.daily_loss.name].update(
            value_pct=b.daily_loss.get_value(),
            limit_pct=b.daily_loss.effective_limit(),
            warning_pct=b.daily_loss.effective_warning(),
        )
        breakers[b.max_drawdown.name].update(
            value_pct=b.max_drawdown.get_value(),
            limit_pct=b.max_drawdown.effective_limit(),
            warning_pct=b.max_drawdown.effective_warning(),
        )
        breakers[b.per_minute.name].update(
            orders=b.per_minute.get_order_count(), limit=b.per_minute.max_orders_per_minute
        )
        breakers[b.per_hour.name].update(
            orders=b.per_hour.get_order_count(), limit=b.per_hour.max_orders_per_minute
        )
        breakers[b.connection.name].update(
            consecutive_failures=b.connection.get_consecutive_failures(),
            seconds_since_alive=b.connection.seconds_since_alive(),
        )
        with self._lock:
            reading = dict(self._reading)
        return {
            "can_trade": self.can_trade(),
            "blocking_reasons": self.get_blocking_reasons(),
            "breakers": breakers,
            "kill_switch": self._kill_switch.status(),
            "orders": {
                "last_minute": b.per_minute.get_order_count(),
                "last_hour": b.per_hour.get_order_count(),
                "max_per_minute": self.config.max_orders_per_minute,
                "max_per_hour": self.config.max_orders_per_hour,
            },
            "portfolio": reading,
            "monitoring": self.is_monitoring,
            "monitoring_failure": self._monitor_died,
            "config": self.config.to_dict(),
            "timestamp": self._clock.now(),
        }

    def close(self) -> None:
        """Close the store (its connections and background threads). Stop monitoring
        first with :meth:`stop_monitoring`."""
        self._manager.close()

    def __repr__(self) -> str:
        return f"<TradingCircuitBreakers {self._manager.get_status()}>"
