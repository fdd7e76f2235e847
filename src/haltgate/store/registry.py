"""The live-process registry (SPEC §6): which processes use a store, and their breakers.

Every process whose store holds breakers of its own registers one entry, through
:meth:`Store.registry_write` / :meth:`Store.registry_entries`: by default one atomic
``update_value`` of the small value :data:`REGISTRY_KEY` (so every backend has it without
code of its own; SQLite uses this), and for Redis one field per process in the hash
``<namespace>:processes`` (a plain ``HSET``: no lock shared between processes). An entry:

``origin``
    the store instance's id, the same ``origin`` its snapshots carry;
``pid``, ``host``, ``started``
    who it is;
``last_seen``, ``heartbeat``, ``ttl``
    when it last wrote its entry (seconds since the epoch on the store's clock:
    :meth:`Store.store_time`, Redis's own ``TIME`` for Redis), how often it does, and how
    long after ``last_seen`` it still counts as live;
``breakers``
    name, type, parameters (as the config spells them: :mod:`haltgate.breakers.parameters`)
    and the state this process saw at ``last_seen`` (with the reason when it blocks);
``refusals``
    ``{deny code: count}``: the orders this process's pre-trade checks refused since it
    started (SPEC §10), summed over the managers that share this store object (each
    registers its counts with :meth:`ProcessRegistration.add_refusal_source`). A process
    that exits takes its counts away with its entry; a reader sums the live entries
    (:func:`live_refusals`).

The SQLite and Redis stores write the entry from their background thread
(:meth:`ProcessRegistration.tick`): at once when a breaker is attached, detached or
changes state (its own change or an adopted one), then every ``heartbeat_seconds``
(default 1 s); never on a trading thread. A refused order only marks the counts dirty
(:meth:`ProcessRegistration.refused`: one attribute write, no wake-up, no I/O): they are
written at the next heartbeat, or :data:`COUNTS_PUBLISH_SECONDS` after the previous write
when the heartbeat is longer, so a storm of refusals costs at most one extra write a second.
A clean ``close()`` (or the store's exit hook) removes the entry; a killed process's entry
is not live once ``ttl_seconds`` (default 5 s) passed since its last heartbeat, and any
live process's heartbeat prunes entries not seen for :data:`PRUNE_AFTER_SECONDS`, keeping
at most :data:`MAX_ENTRIES`. The in-memory store registers nothing: no other process can
read it.

An operator's view (the CLI, the admin server) does not register
(:meth:`ProcessRegistration.disable`): reading ``status`` never writes. The heartbeat is
not a state change: it runs only while the store is reachable (for Redis, right after the
server answered a PING, so it never holds up the hung-server watch), a failed one is
logged (``process_heartbeat_failed``) and retried at the next interval, and the store
treats the failure like any failed command of its own (Redis: unavailable until its thread
has reconnected). Liveness is judged on the store's clock by whoever reads (``status``):
with SQLite every process is on one host and one wall clock; with Redis, ``TIME``.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from ..values import to_seconds

if TYPE_CHECKING:
    from ..breakers.base import BaseCircuitBreaker
    from .base import Store

__all__ = [
    "COUNTS_PUBLISH_SECONDS",
    "DEFAULT_HEARTBEAT_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "MAX_ENTRIES",
    "PRUNE_AFTER_SECONDS",
    "REGISTRY_KEY",
    "ProcessEntry",
    "ProcessRegistration",
    "entries_of",
    "live_breakers",
    "live_refusals",
    "pruned",
    "read_registry",
    "valid_entries",
    "write_generic",
]

logger = logging.getLogger("haltgate.store.registry")

REGISTRY_KEY = "process_registry"
"""The small value that holds the registry: ``{"processes": {origin: entry}}``."""

DEFAULT_HEARTBEAT_SECONDS = 1.0
"""How often a process rewrites its entry."""

DEFAULT_TTL_SECONDS = 5.0
"""How long after its last heartbeat a process still counts as live (5 heartbeats: a busy
host or a slow fsync does not make a running process look dead)."""

PRUNE_AFTER_SECONDS = 3600.0
"""A live process's heartbeat drops entries not seen for this long (a killed process stays
visible as not live for an hour)."""

# A trip reason longer than this is cut in the registry (the stored record keeps it whole).
_MAX_REASON = 500

COUNTS_PUBLISH_SECONDS = 1.0
"""A refusal is in the entry at most this long after the previous write (or at the next
heartbeat, when that comes first)."""

RefusalSource = Callable[[], dict[str, int] | None]
"""What a manager registers: its refusal counts by deny code, or ``None`` when it has
nothing to publish (no check and no refusal)."""

MAX_ENTRIES = 256
"""At most this many entries are kept (live ones and the most recently seen first)."""


@dataclass(frozen=True, slots=True)
class ProcessEntry:
    """One registered process as a reader sees it (``live`` and ``age`` judged at ``now``
    on the store's clock)."""

    origin: str
    pid: int | None
    host: str
    started: float | None
    last_seen: float
    heartbeat: float | None
    ttl: float | None
    breakers: tuple[dict[str, Any], ...]
    live: bool
    age: float
    refusals: dict[str, int] = field(default_factory=dict)
    """Orders its pre-trade checks refused since it started, by deny code."""

    def breaker_names(self) -> list[str]:
        """The names of this process's breakers."""
        return [str(b.get("name")) for b in self.breakers]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``status --json``): times as seconds since the epoch and ISO text."""
        from datetime import UTC, datetime

        def iso(stamp: float | None) -> str | None:
            return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat()

        return {
            "origin": self.origin,
            "pid": self.pid,
            "host": self.host,
            "started": iso(self.started),
            "last_seen": iso(self.last_seen),
            "age_seconds": round(self.age, 3),
            "heartbeat_seconds": self.heartbeat,
            "ttl_seconds": self.ttl,
            "live": self.live,
            "breakers": [dict(b) for b in self.breakers],
            "refusals": dict(sorted(self.refusals.items())),
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _counts(value: Any) -> dict[str, int]:
    """``{code: count}`` of a stored ``refusals`` value; anything malformed is left out."""
    if not isinstance(value, dict):
        return {}
    return {
        str(code): count
        for code, count in value.items()
        if isinstance(code, str)
        and isinstance(count, int)
        and not isinstance(count, bool)
        and count > 0
    }


def entries_of(value: Any) -> dict[str, dict[str, Any]]:
    """The entries of a stored registry value ``{"processes": {origin: entry}}``;
    anything malformed is left out."""
    if not isinstance(value, dict) or not isinstance(value.get("processes"), dict):
        return {}
    return valid_entries(value["processes"])


def valid_entries(found: Any) -> dict[str, dict[str, Any]]:
    """``{origin: entry}`` without the entries a reader cannot judge (no ``last_seen``)."""
    if not isinstance(found, dict):
        return {}
    return {
        str(origin): entry
        for origin, entry in found.items()
        if isinstance(entry, dict) and _number(entry.get("last_seen")) is not None
    }


def write_generic(store: Store, origin: str, entry: dict[str, Any] | None, now: float) -> None:
    """Write (``entry``) or remove (``None``) ``origin``'s entry with one atomic
    ``update_value`` of :data:`REGISTRY_KEY`, pruning as it goes (every backend)."""

    def update(old: Any) -> tuple[Any, None]:
        processes = entries_of(old)
        if entry is None:
            processes.pop(origin, None)
        else:
            processes[origin] = entry
        return {"processes": pruned(processes, now)}, None

    store.update_value(REGISTRY_KEY, update)


def _entry(origin: str, raw: dict[str, Any], now: float) -> ProcessEntry:
    last_seen = _number(raw.get("last_seen")) or 0.0
    ttl = _number(raw.get("ttl"))
    age = max(now - last_seen, 0.0)
    pid = raw.get("pid")
    breakers = raw.get("breakers")
    return ProcessEntry(
        origin=origin,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host=str(raw.get("host") or "?"),
        started=_number(raw.get("started")),
        last_seen=last_seen,
        heartbeat=_number(raw.get("heartbeat")),
        ttl=ttl,
        breakers=tuple(
            b for b in (breakers if isinstance(breakers, list) else []) if isinstance(b, dict)
        ),
        live=now - last_seen <= (DEFAULT_TTL_SECONDS if ttl is None else ttl),
        age=age,
        refusals=_counts(raw.get("refusals")),
    )


def read_registry(store: Store, *, now: float | None = None) -> list[ProcessEntry]:
    """Every registered process, live ones first, most recently seen first. A pure read:
    stale entries are shown (``live=False``), never removed here."""
    when = store.store_time() if now is None else now
    entries = [_entry(origin, raw, when) for origin, raw in store.registry_entries().items()]
    entries.sort(key=lambda e: (not e.live, -e.last_seen, e.origin))
    return entries


def live_breakers(entries: list[ProcessEntry]) -> dict[str, str]:
    """``{name: type}`` of every breaker a live process has (the first type seen wins)."""
    found: dict[str, str] = {}
    for entry in entries:
        if entry.live:
            for breaker in entry.breakers:
                name = breaker.get("name")
                if isinstance(name, str) and name:
                    found.setdefault(name, str(breaker.get("type") or "custom"))
    return found


def live_refusals(entries: list[ProcessEntry]) -> dict[str, int]:
    """The refusal counts by deny code summed over the live processes (each counts since it
    started; a process no longer live is left out, so the sum can go down)."""
    total: dict[str, int] = {}
    for entry in entries:
        if entry.live:
            for code, count in entry.refusals.items():
                total[code] = total.get(code, 0) + count
    return dict(sorted(total.items()))


def pruned(processes: dict[str, dict[str, Any]], now: float) -> dict[str, dict[str, Any]]:
    """``processes`` without entries unseen for :data:`PRUNE_AFTER_SECONDS`, bounded to
    :data:`MAX_ENTRIES` (live ones and the most recently seen kept)."""
    kept = {
        origin: raw
        for origin, raw in processes.items()
        if now - (_number(raw.get("last_seen")) or 0.0) <= PRUNE_AFTER_SECONDS
    }
    if len(kept) <= MAX_ENTRIES:
        return kept
    ranked = sorted(
        kept.items(),
        key=lambda item: (
            not _entry(item[0], item[1], now).live,
            -(_number(item[1].get("last_seen")) or 0.0),
        ),
    )
    return dict(ranked[:MAX_ENTRIES])


def _listed(breaker: BaseCircuitBreaker) -> bool:
    # Stand-ins for breakers another process runs (the operator view's StoredBreaker) are
    # not this process's breakers.
    return bool(getattr(type(breaker), "listed_in_registry", True))


def _described(breaker: BaseCircuitBreaker, parameters: dict[str, Any]) -> dict[str, Any]:
    # The raw view (not the state property: no refresh step is scheduled from here).
    state = breaker._state
    info = breaker._trip_info
    described = {
        "name": breaker.name,
        "type": breaker.breaker_type.value,
        "parameters": parameters,
        "state": state.value,
    }
    if state.value != "NORMAL" and info is not None:
        described["reason"] = info.reason[:_MAX_REASON]
    return described


class ProcessRegistration:
    """This process's entry in ``store``'s registry (see the module docstring).

    ``wake`` is the store's background thread's wake-up (SQLite, Redis): the entry is
    written by :meth:`tick` on that thread. Without one (the in-memory store, which no other
    process can read) nothing is registered.
    """

    def __init__(self, store: Store, *, wake: Callable[[], None] | None = None) -> None:
        self._store = store
        self._wake = wake
        self.heartbeat_seconds = DEFAULT_HEARTBEAT_SECONDS
        self.ttl_seconds = DEFAULT_TTL_SECONDS
        self._enabled = wake is not None
        self._registered = False
        self._dirty = False
        self._next_beat = 0.0
        self._started: float | None = None
        self._failing = False
        self._lock = threading.Lock()
        # The managers' refusal counts, and whether a refusal was counted since the entry
        # was last written.
        self._refusal_sources: list[RefusalSource] = []
        self._counts_dirty = False
        self._last_write = -math.inf

    def configure(
        self, *, heartbeat_seconds: float | None = None, ttl_seconds: float | None = None
    ) -> None:
        """Change the heartbeat interval and the TTL (seconds; the TTL must be longer than
        the heartbeat). The entry carries the new figures from its next write."""
        heartbeat = self.heartbeat_seconds
        ttl = self.ttl_seconds
        if heartbeat_seconds is not None:
            heartbeat = to_seconds(heartbeat_seconds, "heartbeat_seconds")
        if ttl_seconds is not None:
            ttl = to_seconds(ttl_seconds, "ttl_seconds")
        if ttl <= heartbeat:
            raise InvalidInputError(
                "ttl_seconds", ttl, f"must be longer than heartbeat_seconds ({heartbeat:g})"
            )
        self.heartbeat_seconds = heartbeat
        self.ttl_seconds = ttl
        # A shorter interval applies from now; a longer one from the next heartbeat.
        self._next_beat = min(self._next_beat, time.monotonic() + heartbeat)

    def disable(self) -> None:
        """This store serves an operator's view (CLI, admin server): register nothing,
        unless a trading process sharing this store object already registered it."""
        if not self._listed_breakers() and self._refusals() is None:
            self._enabled = False

    def add_refusal_source(self, source: RefusalSource) -> None:
        """Publish ``source()`` (a manager's refusal counts by deny code, or ``None``: nothing
        to publish) in this process's entry, summed with the other sources of this store
        object. A process whose manager has checks registers even without breakers."""
        self._refusal_sources.append(source)

    def refused(self) -> None:
        """A refusal was counted: publish the counts at the next heartbeat, or
        :data:`COUNTS_PUBLISH_SECONDS` after the last write if that is sooner. A trading
        thread calls this: one attribute write, no wake-up, no lock, no I/O."""
        self._counts_dirty = True

    def _refusals(self) -> dict[str, int] | None:
        """The counts of every source summed, or ``None`` when none has any (a source that
        raises is left out and logged)."""
        total: dict[str, int] | None = None
        for source in tuple(self._refusal_sources):
            try:
                counts = source()
            except Exception as exc:  # a count never costs the process its heartbeat
                logger.warning(
                    "refusal_counts_failed", extra={"problem": f"{type(exc).__name__}: {exc}"}
                )
                continue
            if counts is None:
                continue
            if total is None:
                total = {}
            for code, count in counts.items():
                total[code] = total.get(code, 0) + count
        return total

    @property
    def registered(self) -> bool:
        """True while this process's entry is in the store (as far as it knows)."""
        return self._registered

    def _listed_breakers(self) -> list[BaseCircuitBreaker]:
        store = self._store
        with store._attach_lock:
            attached = list(store._attached.values())
        return [b for b in attached if _listed(b)]

    def changed(self) -> None:
        """A breaker was attached, detached or changed state: the background thread writes
        the entry at its next round (no I/O here: a trading thread may call this)."""
        if self._enabled and self._wake is not None:
            self._dirty = True
            self._wake()

    def tick(self) -> None:
        """Write the entry if it changed or a heartbeat is due (the background thread
        calls this on every round); withdraw it when no breaker is left. Never raises."""
        if not self._enabled:
            return
        now = time.monotonic()
        due = self._next_beat
        if self._counts_dirty:
            due = min(due, self._last_write + COUNTS_PUBLISH_SECONDS)
        if not self._dirty and now < due:
            return
        self._dirty = False
        # Cleared before the counts are read: a refusal counted meanwhile marks them again.
        self._counts_dirty = False
        self._next_beat = now + self.heartbeat_seconds
        self._last_write = now
        try:
            breakers = self._listed_breakers()
            refusals = self._refusals()
            if breakers or refusals is not None:
                self._write(breakers, refusals or {})
            elif self._registered:
                self.withdraw()
        except Exception as exc:  # a heartbeat never takes the store's thread down
            if not self._failing:
                logger.warning(
                    "process_heartbeat_failed",
                    extra={"problem": f"{type(exc).__name__}: {exc}"},
                )
            self._failing = True
            return
        if self._failing:
            logger.info("process_heartbeat_recovered")
            self._failing = False

    def entry(
        self,
        breakers: list[BaseCircuitBreaker],
        now: float,
        refusals: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """The entry this process writes (at ``now`` on the store's clock), with the
        refusal counts by deny code."""
        from ..breakers.parameters import parameters_of

        if self._started is None:
            self._started = now
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": self._started,
            "last_seen": now,
            "heartbeat": self.heartbeat_seconds,
            "ttl": self.ttl_seconds,
            "breakers": [_described(b, parameters_of(b)) for b in breakers],
            "refusals": dict(sorted((refusals or {}).items())),
        }

    def _write(self, breakers: list[BaseCircuitBreaker], refusals: dict[str, int]) -> None:
        store = self._store
        origin = store.origin
        with self._lock:
            if not self._enabled:
                return  # closed meanwhile: never re-register after the withdrawal
            now = store.store_time()
            store.registry_write(origin, self.entry(breakers, now, refusals), now)
            self._registered = True

    def withdraw(self) -> None:
        """Remove this process's entry (a clean close). Raises
        :class:`~haltgate.StoreUnavailableError` when the store cannot be written."""
        if not self._registered:
            return
        store = self._store
        origin = store.origin
        with self._lock:
            store.registry_write(origin, None, store.store_time())
            self._registered = False

    def close(self) -> None:
        """Withdraw the entry and stop registering (the store is closing); a failure is
        logged: the entry then goes stale after its TTL."""
        self._enabled = False
        try:
            self.withdraw()
        except Exception as exc:  # closing goes on: the entry goes stale after its TTL
            logger.warning(
                "process_withdraw_failed", extra={"problem": f"{type(exc).__name__}: {exc}"}
            )
