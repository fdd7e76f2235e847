"""The manager's pre-trade order checks (SPEC §10): which checks, and the pure verdict.

The checks are kept as one immutable :class:`CheckPlan`, replaced as a whole when checks
are added or removed (a reader racing ``add_check`` sees one consistent set): the checks
judged on the order and its context, the windowed ones that join the all-or-none window
admission (``windows.py``), and what the plan needs per order (the order, the wall time,
the reducing rule) worked out once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..checks.base import OrderCheck
from ..checks.context import ALLOWED, OrderContext, OrderDecision, checked_context
from ..checks.exposure import OrderFacts, order_facts
from ..checks.message_throttle import MESSAGE_KINDS
from ..checks.windows import LocalKeyedWindow
from ..errors import (
    InvalidInputError,
    InvalidTypeError,
    StoreUnavailableError,
    UnknownCheckError,
)
from ..orders import Order
from ..values import to_text
from .state import ManagerState
from .windows import CheckSlot, slot_key

__all__ = ["NO_CHECKS", "CheckPlan", "OrderChecks", "checked_order"]

logger = logging.getLogger("haltgate.manager")


class CheckPlan:
    """The manager's checks, as the admission path uses them (immutable)."""

    __slots__ = (
        "_judges",
        "_reducing_judges",
        "checks",
        "exempting",
        "facts",
        "judged",
        "message",
        "needs_order",
        "needs_time",
        "slots",
        "windowed",
    )

    def __init__(self, checks: tuple[OrderCheck, ...]) -> None:
        self.checks = checks
        self.judged = tuple(c for c in checks if c.window is None)
        # Each judged check's verdict, bound once, all called alike with the order's facts
        # (worked out once per order); the checks asked of a reducing order: those that do
        # not exempt it.
        self._judges = tuple(_verdict(c) for c in self.judged)
        self._reducing_judges = tuple(_verdict(c) for c in self.judged if not c.exempts_reducing)
        self.windowed = tuple(c for c in checks if c.window is not None)
        # What the all-or-none admission needs of each windowed check, bound once. A
        # check's window is fixed once it is in the manager (see OrderChecks.add_check).
        slots: list[CheckSlot] = []
        for check in self.windowed:
            window, spec = check.bound_window, check.window
            assert window is not None and spec is not None
            counters = window.counters if isinstance(window, LocalKeyedWindow) else None
            if check.needs_order:
                slots.append((window, spec.limit, check.window_key, counters, None))
            else:  # one key whatever the order (the message throttle): worked out once
                slots.append((window, spec.limit, None, counters, check.window_key(None)))
        self.slots: tuple[CheckSlot, ...] = tuple(slots)
        self.exempting = any(c.exempts_reducing for c in self.judged)
        self.facts = self.exempting or any(c.uses_facts for c in self.judged)
        self.needs_order = any(c.needs_order for c in checks)
        self.needs_time = any(c.needs_time for c in self.judged)
        self.message: OrderCheck | None = next((c for c in checks if c.counts_messages), None)

    def judge(
        self, order: Order, context: OrderContext, now: datetime | None
    ) -> OrderDecision | None:
        """The first refusal of a non-windowed check, in the order the checks were added
        (``None``: none refuses). The reducing rule is worked out once for every check
        that exempts reducing orders, and the order's facts (the position after it, its price
        and notional) once for every check that reads them."""
        facts: OrderFacts | None = None
        judges = self._judges
        if self.facts:
            facts = order_facts(order, context)
            if facts.reducing:
                judges = self._reducing_judges
        for judge in judges:
            decision = judge(order, context, now, facts)
            if decision is not None:
                return decision
        return None


_Verdict = Callable[
    [Order, OrderContext, "datetime | None", "OrderFacts | None"], "OrderDecision | None"
]


def _verdict(check: OrderCheck) -> _Verdict:
    """How the plan asks ``check``: its ``_judge_facts``, or, when a subclass overrides
    ``_judge`` (a check of the user's own), that."""
    if check.judges_facts:
        return check._judge_facts
    judge = check._judge

    def verdict(
        order: Order, context: OrderContext, now: datetime | None, facts: OrderFacts | None
    ) -> OrderDecision | None:
        return judge(order, context, now)

    return verdict


NO_CHECKS = CheckPlan(())
"""The plan of a manager without checks (compared by identity on the fast path)."""


def checked_order(order: Any) -> Order | None:
    """``order`` if it is an :class:`~haltgate.engine.Order` or ``None``; else refused."""
    if order is None or type(order) is Order or isinstance(order, Order):
        return order
    raise InvalidTypeError("order", order, "must be an Order or None")


class OrderChecks(ManagerState):
    """``add_check``, ``remove_check``, ``get_checks``, ``check_order``,
    ``record_message`` and the refusal counts by deny code."""

    _checks: dict[str, OrderCheck]
    _check_plan: CheckPlan
    _checks_lock: threading.Lock
    _refusal_counts: dict[str, int]
    _counts_lock: threading.Lock
    # The store's "a refusal was counted" mark (no I/O: the registry entry is written by the
    # store's background thread), or None without a store that publishes.
    _refusal_mark: Callable[[], None] | None

    def _init_checks(self) -> None:
        self._checks = {}
        self._check_plan = NO_CHECKS
        # Guards every check window; taken after the rate breakers' locks (windows.py).
        self._checks_lock = threading.Lock()
        self._refusal_counts = {}
        self._counts_lock = threading.Lock()
        self._refusal_mark = None

    # ------------------------------------------------------------------ registry
    def add_check(self, check: OrderCheck) -> None:
        """Add an order check (a second check with the same name is refused). A check
        with a companion breaker (:class:`~haltgate.checks.ExecutionThrottle`) registers
        it as a breaker of this manager, restored from the store if it has one; a tripped
        companion left by a removed check of the same kind is taken over, never replaced."""
        if not isinstance(check, OrderCheck):
            raise InvalidTypeError("check", check, "must be an OrderCheck")
        with self._lock:
            if check.name in self._checks:
                raise InvalidInputError(
                    "check", check.name, "a check with this name is already added"
                )
            companion = check.companion_breaker()
            existing = None if companion is None else self._breakers.get(companion.name)
            if (
                companion is not None
                and existing is not None
                and existing is not companion
                and type(existing) is not type(companion)
            ):
                raise InvalidInputError(
                    "check", check.name, f"a breaker named {companion.name!r} is already added"
                )
            # The seam for shared windows: a store that can count a check's window for
            # every process (Redis) offers it here, as it offers order-rate windows.
            shared = getattr(self._store, "check_window", None)
            window = shared(check) if shared is not None and check.window is not None else None
            check.bind(self._clock, self._checks_lock, window)
            try:
                if existing is not None and companion is not None and existing is not companion:
                    check.adopt_companion(existing)
                elif companion is not None and existing is None:
                    self.add_breaker(companion)  # type: ignore[attr-defined]
            except BaseException:
                check.unbind()
                raise
            self._checks[check.name] = check
            self._check_plan = CheckPlan(tuple(self._checks.values()))

    def remove_check(self, name: str) -> OrderCheck:
        """Remove and return the check called ``name`` (:class:`UnknownCheckError`, a
        ``KeyError``, if absent). Its companion breaker goes with it while NORMAL; a
        tripped one stays (only an operator's reset may lift it)."""
        key = to_text(name, "name")
        with self._lock:
            check = self._checks.get(key)
            if check is None:
                raise UnknownCheckError(
                    "name", name, f"no check with this name (have {sorted(self._checks)})"
                )
            companion = check.companion_breaker()
            if (
                companion is not None
                and self._breakers.get(companion.name) is companion
                and not companion.is_tripped
            ):
                self.remove_breaker(companion.name)  # type: ignore[attr-defined]
            del self._checks[key]
            self._check_plan = CheckPlan(tuple(self._checks.values()))
            check.unbind()
            return check

    def get_checks(self) -> list[OrderCheck]:
        """Every order check, in the order added (the order they are asked in)."""
        return list(self._check_plan.checks)

    def get_check(self, name: str) -> OrderCheck | None:
        """The check called ``name``, or ``None``."""
        return self._checks.get(to_text(name, "name"))

    # ------------------------------------------------------------------ verdicts
    def check_order(self, order: Order, context: OrderContext | None = None) -> OrderDecision:
        """What the checks say about ``order`` now: pure (records nothing, takes no window
        slot, counts no refusal). The breakers are not asked: :meth:`admit_order` is the
        full admission. The windowed checks say whether their window has room."""
        if not isinstance(order, Order):
            raise InvalidTypeError("order", order, "must be an Order")
        ctx = checked_context(context)
        plan = self._check_plan
        now = self._clock.now() if plan.needs_time else None
        decision = plan.judge(order, ctx, now)
        if decision is not None:
            return decision
        if plan.windowed:
            now_mono = self._monotonic()
            with self._checks_lock:
                for check, slot in zip(plan.windowed, plan.slots, strict=True):
                    window, limit = slot[0], slot[1]
                    count = window.count(slot_key(slot, order), now_mono)
                    if count >= limit:
                        return check.window_refusal(order, count)
        return ALLOWED

    def record_message(self, kind: str) -> bool:
        """Count one ``"modify"`` or ``"cancel"`` sent to the broker for
        :class:`~haltgate.checks.MessageThrottle` (submits are counted by
        :meth:`admit_order`). Never refuses the message (a cancel must always go out);
        returns whether the window is still within its limit (True without a throttle;
        False when a shared window cannot be reached). With ``RedisStore`` the count is
        shared by every process (one round trip)."""
        text = to_text(kind, "kind") if isinstance(kind, str) else kind
        if text not in MESSAGE_KINDS:
            if not isinstance(kind, str):
                raise InvalidTypeError("kind", kind, f"must be one of {sorted(MESSAGE_KINDS)}")
            raise InvalidInputError("kind", kind, f"must be one of {sorted(MESSAGE_KINDS)}")
        throttle = self._check_plan.message
        if throttle is None:
            return True
        window = throttle.bound_window
        spec = throttle.window
        if window is None or spec is None:  # removed meanwhile
            return True
        try:
            with self._checks_lock:
                count = window.add(throttle.window_key(None), self._monotonic())
        except StoreUnavailableError:
            # A shared window (Redis) out of reach: the message went out all the same; the
            # next submit is refused by the store's fail-closed rule.
            logger.warning("message_count_failed", extra={"kind": text})
            return False
        return count <= spec.limit

    # ------------------------------------------------------------------ counts
    def _count_refusal(self, code: str) -> None:
        with self._counts_lock:
            self._refusal_counts[code] = self._refusal_counts.get(code, 0) + 1
        mark = self._refusal_mark
        if mark is not None:
            mark()

    def get_refusal_counts(self) -> dict[str, int]:
        """Orders refused by the checks since this manager started, by deny code (e.g.
        ``{"max_order_quantity": 2, "execution_throttle": 1}``), for metrics and status."""
        with self._counts_lock:
            return dict(self._refusal_counts)

    def _published_refusals(self) -> dict[str, int] | None:
        """What the store's process registry publishes for this manager (its background
        thread calls this): the counts, or ``None`` with no check and no refusal."""
        counts = self.get_refusal_counts()
        return counts if counts or self._check_plan.checks else None
