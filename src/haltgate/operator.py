"""Operating on a store without the trading process's configuration.

An operator (the CLI, the admin server) must see and act on every breaker a store knows
about, even without the config file that made them. :class:`StoredBreaker` adopts a stored
snapshot and keeps the breaker-specific ``data`` opaque, so a halt or reset written by an
operator keeps the trading process's peak window and baseline intact.

A reset made here re-baselines the stored data the way the breaker's own class would (a
drawdown reset restarts the peak window at the latest value, a daily-loss reset makes the
latest value the baseline), by letting an instance of that class do it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .authority import KeyGuard, stored_keys
from .breakers import BaseCircuitBreaker, CircuitBreakerState, CircuitBreakerType
from .breakers.contract import BreakerContract
from .clock import Clock
from .events import BreakerEvent
from .manager import CircuitBreakerManager
from .store import Store
from .store.registry import ProcessEntry, live_breakers, read_registry

if TYPE_CHECKING:
    from .config import HaltgateConfig

__all__ = [
    "StoredBreaker",
    "check_kill_switch_key",
    "held_by_live_processes",
    "kill_switch_settings",
    "operator_manager",
    "order_reset",
    "status_rows",
    "trading_allowed",
]

logger = logging.getLogger("haltgate.operator")


class StoredBreaker(BaseCircuitBreaker):
    """A breaker known only from its stored snapshot (type, state, trip, opaque data)."""

    contract = BreakerContract()
    #: A stand-in for a breaker another process runs: not this process's own breaker in
    #: the live-process registry.
    listed_in_registry = False

    def __init__(
        self, name: str, breaker_type: str = "custom", *, clock: Clock | None = None
    ) -> None:
        try:
            kind = CircuitBreakerType(breaker_type)
        except ValueError:
            kind = CircuitBreakerType.CUSTOM
        super().__init__(kind, name=name, clock=clock)
        self._stored_type = str(breaker_type)
        self._data: dict[str, Any] = {}

    def _export_data(self) -> dict[str, Any]:
        return dict(self._data)

    def _import_data(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def _on_reset(self) -> None:
        self._data = _rebaselined(self.breaker_type, self._data, self._clock)

    def export_state(self) -> dict[str, Any]:
        """The snapshot, keeping the stored type spelling."""
        state = super().export_state()
        state["type"] = self._stored_type
        return state


def _rebaselined(kind: CircuitBreakerType, data: dict[str, Any], clock: Clock) -> dict[str, Any]:
    """``data`` as the real breaker class would leave it after a reset."""
    from .breakers import DailyLossCircuitBreaker, DrawdownCircuitBreaker

    # Thresholds do not take part in re-baselining; any valid value will do.
    model: BaseCircuitBreaker
    if kind is CircuitBreakerType.DRAWDOWN:
        model = DrawdownCircuitBreaker("1", clock=clock)
    elif kind is CircuitBreakerType.DAILY_LOSS:
        model = DailyLossCircuitBreaker("1", clock=clock)
    else:
        return data
    try:
        model._import_data(data)
        model._on_reset()
        return model._export_data()
    except Exception:  # opaque data from another version: keep it as it was
        logger.warning("rebaseline_failed", extra={"breaker_type": kind.value}, exc_info=True)
        return data


def operator_manager(
    store: Store,
    config: HaltgateConfig | None = None,
    *,
    audit_config: bool = True,
    audit_only_if_changed: bool = False,
) -> CircuitBreakerManager:
    """A manager over every breaker the store knows, plus the config's breakers.

    With a config, its breakers are real (built from the file); breakers that only the store
    knows are added as :class:`StoredBreaker`. Without one, every breaker is stored. The
    store knows a breaker by its stored record, or because a live process has it (the
    process registry, :mod:`haltgate.store.registry`): such a breaker has no record yet,
    so it was never tripped or halted durably, and its stand-in reads NORMAL; a halt or
    reset written through it reaches that process like any other change.

    An operator's view does not register in the process registry (it runs no breaker of
    its own), so reading status never writes to the store.
    """
    store.registration.disable()
    if config is not None:
        manager = config.build_manager(
            store=store, audit=audit_config, audit_only_if_changed=audit_only_if_changed
        )
    else:
        manager = CircuitBreakerManager(store=store)
    for name, snapshot in sorted(store.load_all_snapshots().items()):
        if name and name not in manager:
            manager.add_breaker(StoredBreaker(name, str(snapshot.get("type", "custom"))))
    for name, kind in sorted(live_breakers(read_registry(store)).items()):
        if name not in manager:
            manager.add_breaker(StoredBreaker(name, kind))
    return manager


def status_rows(manager: CircuitBreakerManager) -> list[dict[str, Any]]:
    """Per breaker: name, type, state, reason, since, operator — for status views.

    A breaker restored in the NORMAL state does not carry its stored ``since``; the store's
    snapshot supplies it so that "since when" is shown for every breaker that ever changed.
    """
    rows = manager.get_details()
    store = manager.store
    snapshots = store.load_all_snapshots() if store is not None else {}
    for row in rows:
        if row["since"] is None:
            stored = snapshots.get(row["name"], {}).get("since")
            if stored:
                with contextlib.suppress(TypeError, ValueError):
                    row["since"] = datetime.fromisoformat(stored)
    return rows


def order_reset(breaker: BaseCircuitBreaker, operator: str, reason: str | None = None) -> None:
    """An operator's reset of ``breaker``, written even when its record is NORMAL: the
    order a live process needs to lift a trip it holds that the record no longer has (one
    it imported from a process that is gone, SPEC §3: it stays until an operator resets
    it). Goes through the executor like any reset: durable, audited, with the operator;
    every process adopts it and drops that breaker's evidence."""
    if breaker.state is not CircuitBreakerState.NORMAL:
        breaker.reset(operator=operator, reason=reason)
        return
    events: list[BreakerEvent] = []
    with breaker._lock:
        breaker._lift_locked(
            lift_halt=False,
            lift_condition=True,
            cause="reset",
            reason=reason or "manual reset",
            details={"cause": "manual", "held_by_live_process": True},
            operator=operator,
            rebaseline=True,
            events=events,
        )
    breaker._publish(events)


def held_by_live_processes(
    rows: list[dict[str, Any]], processes: list[ProcessEntry]
) -> list[tuple[str, ProcessEntry, dict[str, Any]]]:
    """``(name, process, reported)`` for each breaker that a live process reported as
    blocking (at its last heartbeat) while the store's record of it is NORMAL or absent:
    a trip that process imported from a process that is gone, or one it could not record
    yet. That process refuses trading; an operator's reset clears it."""
    normal = {row["name"] for row in rows if row["state"] == "NORMAL"}
    held = []
    for entry in processes:
        if not entry.live:
            continue
        for reported in entry.breakers:
            name = reported.get("name")
            if name in normal and reported.get("state") not in ("NORMAL", "RESETTING"):
                held.append((str(name), entry, reported))
    return held


def trading_allowed(manager: CircuitBreakerManager) -> bool:
    """True when nothing blocks trading: no breaker tripped or halted, and the store
    reachable (a state read: feeds no observation)."""
    return not manager.get_blocking_reasons()


def kill_switch_settings(store: Store, config: HaltgateConfig | None = None) -> dict[str, str]:
    """``{breaker: key_hash}`` of every keyed breaker. The store is the authority: a
    breaker it keys is checked against its stored hash whatever the config says; the
    config only adds breakers the store does not key yet (a config load writes them)."""
    keys = stored_keys(store)
    if config is not None and config.kill_switch.key_hash is not None:
        for name in config.kill_switch.breakers:
            keys.setdefault(name, config.kill_switch.key_hash)
    return keys


def check_kill_switch_key(
    store: Store,
    name: str,
    key: str | None,
    operator: str,
    config: HaltgateConfig | None = None,
) -> None:
    """Raise :class:`~haltgate.AuthorizationError` unless resetting ``name`` is allowed.

    Breakers outside the keyed kill switch need no key. A keyed one goes through the one
    :class:`~haltgate.authority.KeyGuard` (atomic reservation, lock-out, audit)."""
    key_hash = kill_switch_settings(store, config).get(name)
    if key_hash is None:
        return
    KeyGuard(store, name).check(key, key_hash, operator)
