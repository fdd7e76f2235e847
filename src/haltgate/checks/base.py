"""The small base every pre-trade order check builds on (SPEC §10).

A check is one file over :class:`OrderCheck`; the manager asks them all
(:meth:`~haltgate.CircuitBreakerManager.admit_order`). A check declares:

* ``name`` (its deny code in the SPEC table, also the prefix of the REJECTED reason);
* ``exempts_reducing``: an order that only reduces the position is never refused by it
  (:func:`~haltgate.checks.exposure.reduces_position` is the one rule; the manager works it
  out once per order for every such check);
* ``needs_order`` / ``needs_time``: whether it judges the order's fields / the wall time;
* ``uses_facts``: it reads the values derived from the order and its context
  (:class:`~haltgate.checks.exposure.OrderFacts`: the position after the order, the price,
  the notional) in :meth:`_judge_facts`; the manager works them out once per order and
  passes them to every check;
* ``window`` (a :class:`WindowSpec`) when it counts admitted orders in a sliding window
  (duplicates, message and execution throttles). Such a check has no verdict of its own in
  :meth:`judge`: its window joins the manager's all-or-none admission with the order-rate
  windows (``manager/windows.py``), so an order refused anywhere takes no slot in any
  window, and an admitted one takes its slot in all of them at once.

:meth:`judge` is pure: it records nothing and returns ``None`` when the order may go (no
allocation on the admitted path) or an :class:`~haltgate.OrderDecision`.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import InvalidInputError, InvalidTypeError
from ..orders import Order
from ..values import DECIMAL_CONTEXT, to_count, to_positive, to_seconds, to_text
from .context import OrderContext, OrderDecision
from .exposure import OrderFacts, order_facts, reduces_position

if TYPE_CHECKING:
    from ..breakers.base import BaseCircuitBreaker
    from ..clock import Clock
    from .windows import KeyedWindow

__all__ = ["OrderCheck", "WindowSpec", "fmt", "per_symbol_limits", "window_spec"]


def fmt(value: Decimal) -> str:
    """A Decimal as people write it in a reason: ``150000``, ``0.1``, ``1500.25``."""
    return format(value.normalize(DECIMAL_CONTEXT), "f")


def per_symbol_limits(
    per_symbol: Any, name: str = "per_symbol", *, convert: Any = to_positive
) -> dict[str, Any]:
    """``per_symbol`` (a mapping symbol -> limit, or ``None``) validated: symbols are
    non-empty strings, each limit goes through ``convert`` (default: a Decimal > 0),
    and the parameter named in an error is ``per_symbol[SYMBOL]``."""
    if per_symbol is None:
        return {}
    if not isinstance(per_symbol, Mapping):
        raise InvalidTypeError(name, per_symbol, "must be a mapping of symbol to limit, or None")
    limits: dict[str, Any] = {}
    for symbol, limit in per_symbol.items():
        key = to_text(symbol, name)
        if key in limits:
            raise InvalidInputError(name, symbol, "this symbol is given twice")
        limits[key] = convert(limit, f"{name}[{key}]")
    return limits


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A check's sliding window: at most ``limit`` admitted events per key in any
    ``window_seconds`` (half-open, SPEC §2). An event is admitted while fewer than
    ``limit`` are counted under its key.

    This is the seam for a shared backend: a store that can count these windows (Redis)
    keys them by ``name`` and the key the check gives, in the same atomic script as the
    order-rate windows (see ``manager/windows.py``)."""

    name: str
    limit: int
    window_seconds: float


class OrderCheck:
    """Base of the pre-trade order checks (see the module docstring)."""

    #: The check's name: its deny code, and the prefix of its refusals.
    name: str = "order_check"
    #: An order that only reduces the position is never refused by this check.
    exempts_reducing: ClassVar[bool] = False
    #: It judges the order's fields (every check but the message throttle).
    needs_order: ClassVar[bool] = True
    #: It judges the wall time (``now`` is passed only to checks that need it).
    needs_time: ClassVar[bool] = False
    #: Its :meth:`_judge_facts` reads :class:`~haltgate.checks.exposure.OrderFacts`.
    uses_facts: ClassVar[bool] = False
    #: It also counts the modifies and cancels of ``manager.record_message``.
    counts_messages: ClassVar[bool] = False
    #: Its sliding window, for a check that counts admitted orders (or messages).
    window: WindowSpec | None = None

    _bound: KeyedWindow | None = None
    _window_lock: threading.Lock
    _monotonic: Any

    # ------------------------------------------------------------------ verdicts
    def judge(
        self, order: Order, context: OrderContext, now: datetime | None = None
    ) -> OrderDecision | None:
        """The check's verdict on ``order`` (pure): ``None`` lets it through, else an
        :class:`OrderDecision` refusing it. A reducing order is let through by every check
        with ``exempts_reducing``. A windowed check's window is judged by the manager."""
        if self.exempts_reducing and reduces_position(order, context):
            return None
        return self._judge(order, context, now)

    def _judge(
        self, order: Order, context: OrderContext, now: datetime | None
    ) -> OrderDecision | None:
        """The verdict of a non-reducing order (pure). A check of its own overrides this;
        the built-in checks implement :meth:`_judge_facts` instead."""
        facts = order_facts(order, context) if self.uses_facts else None
        return self._judge_facts(order, context, now, facts)

    def _judge_facts(
        self,
        order: Order,
        context: OrderContext,
        now: datetime | None,
        facts: OrderFacts | None,
    ) -> OrderDecision | None:
        """:meth:`_judge` given ``facts`` (:func:`~haltgate.checks.exposure.order_facts` of
        the order and context; never ``None`` for a check with :attr:`uses_facts`), which
        the manager works out once per order for every check (pure)."""
        return None

    @property
    def judges_facts(self) -> bool:
        """The manager may call :meth:`_judge_facts` instead of :meth:`_judge` (no subclass
        overrides :meth:`_judge`)."""
        return type(self)._judge is OrderCheck._judge

    def refuse(self, reason: str, code: str | None = None) -> OrderDecision:
        """A refusal by this check (``code`` defaults to the check's name)."""
        return OrderDecision(False, code or self.name, self.name, reason)

    # ------------------------------------------------------------------ windows
    def window_key(self, order: Order | None) -> Hashable:
        """The key the order counts under in :attr:`window` (windowed checks override)."""
        return None

    def window_refusal(self, order: Order | None, count: int) -> OrderDecision:
        """The refusal when the order's window already holds ``count`` (>= limit) events."""
        spec = self.window
        assert spec is not None
        return self.refuse(f"{count + 1} > {spec.limit} in {spec.window_seconds:g}s")

    def window_refused(self, decision: OrderDecision, order: Order | None) -> None:
        """Called (no lock held) after the manager refused an order on this check's window:
        the execution throttle trips its breaker here."""

    def companion_breaker(self) -> BaseCircuitBreaker | None:
        """A breaker the manager registers with this check (the execution throttle's
        latched breaker), or ``None``."""
        return None

    def adopt_companion(self, breaker: BaseCircuitBreaker) -> None:
        """Take over ``breaker``, a companion of the same kind left in the manager by a
        removed check (still tripped), instead of registering a fresh one."""

    def window_count(self, key: Hashable) -> int:
        """Events under ``key`` in this check's window now (0 outside a manager)."""
        window = self._bound
        if window is None:
            return 0
        with self._window_lock:
            return window.count(key, self._monotonic())

    def bind(self, clock: Clock, lock: threading.Lock, window: KeyedWindow | None = None) -> None:
        """Join a manager: count in ``window`` (one a store shares between processes) or
        else in a local window on the manager's ``clock``, guarded by the manager's
        check-window ``lock``. Once: a check belongs to one manager, and its window is
        fixed while it is there (the manager plans its admission with it)."""
        from .windows import LocalKeyedWindow

        spec = self.window
        if spec is None:
            return
        if self._bound is not None:
            raise InvalidInputError("check", self.name, "this check is already in a manager")
        if window is None:
            # A single-key window compacts like an order-rate window (cancels are counted
            # without limit).
            compact = spec.limit if self.counts_messages else None
            window = LocalKeyedWindow(spec.window_seconds, compact_above=compact)
        self._bound = window
        self._window_lock = lock
        self._monotonic = clock.monotonic

    def unbind(self) -> None:
        """Forget the window (the check was removed from its manager)."""
        self._bound = None

    def clear_window(self) -> None:
        """Forget every event counted in this check's window (under the manager's lock)."""
        window = self._bound
        if window is not None:
            with self._window_lock:
                window.clear()

    @property
    def bound_window(self) -> KeyedWindow | None:
        """The window this check counts in once it is in a manager."""
        return self._bound

    def describe(self) -> dict[str, Any]:
        """The check's limits, for status views and logs."""
        return {"name": self.name, "type": type(self).__name__}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "type")
        return f"<{type(self).__name__} {fields}>"


def window_spec(name: str, limit: Any, limit_name: str, window_seconds: Any) -> WindowSpec:
    """A validated :class:`WindowSpec` (count >= 1, window > 0), naming the parameters."""
    return WindowSpec(
        name, to_count(limit, limit_name), to_seconds(window_seconds, "window_seconds")
    )
