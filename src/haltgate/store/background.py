"""What the SQLite and Redis stores share: a background thread, non-blocking progress
writes, retries of restrictive changes that could not be written, and fail-closed.

One thread per store does everything that must not happen on the trading thread:

* **progress writes** (``save_soft``: drawdown peaks, daily baselines) are queued, coalesced
  per breaker and written by the thread, so ``can_trade(current_portfolio_value=...)``
  never waits on I/O for them. A durable save of the same breaker drops its queued
  progress (the durable snapshot already contains it) under the same write lock, so an
  older progress write can never land after a newer durable one;
* **retries**: a trip or halt that the store refused is kept in memory (it is never
  undone) and queued; the thread writes it (with its audit entries) when the store is
  back. Until then the store reports itself as blocking;
* **watching**: the subclass's :meth:`BackgroundStore._tick` looks for changes made by
  other processes (SQLite: ``PRAGMA data_version``; Redis: pub/sub) and checks that the
  store can still be reached.

``blocking_reason()`` is not ``None`` while the store is unreachable or a restrictive
change is not yet durable (fail-closed; with ``fail_open=True`` these do not block), and
while the store lost its data (always, see :meth:`BackgroundStore._observe_epoch`).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..audit import AuditEntry
from ..errors import StoreUnavailableError
from ..events import BreakerEvent, EventKind
from ..values import to_seconds
from .base import EPOCH_KEY, LOST_HINT, AuditRecord, Store, audit_records, new_epoch
from .registry import ProcessRegistration

if TYPE_CHECKING:
    from ..breakers.base import BaseCircuitBreaker

__all__ = ["BackgroundStore", "RemoteAdopter"]

#: How an operator's (re-)initialisation marks the epoch it writes; a process that knew
#: another epoch adopts only such a marker, and only a newer one.
STORE_INIT = "store_init"

logger = logging.getLogger("haltgate.store")

RemoteAdopter = Callable[[str, Mapping[str, Any]], None]
"""Called with ``(name, snapshot)`` for a change to a breaker this process does not have."""


class BackgroundStore(Store):
    """A :class:`Store` with a background thread (see the module docstring)."""

    #: Seconds between two ticks of the background thread when nothing happens.
    tick_seconds: float = 0.02

    def __init__(
        self,
        *,
        store_timeout: float = 0.25,
        fail_open: bool = False,
        audit_key: bytes | None = None,
    ) -> None:
        super().__init__(audit_key=audit_key, fail_open=fail_open)
        self.store_timeout = to_seconds(store_timeout, "store_timeout")
        # Serialises this process's writes so progress and durable writes keep their order.
        self._write_lock = threading.Lock()
        self._soft_pending: dict[str, dict[str, Any]] = {}
        self._soft_lock = threading.Lock()
        # Restrictive changes not yet durable: name -> (breaker, audit records).
        self._unsaved: dict[str, tuple[BaseCircuitBreaker, list[AuditRecord]]] = {}
        self._unsaved_audit: list[AuditRecord] = []
        self._down_reason: str | None = None
        self._state_lock = threading.Lock()
        self._adopters: list[RemoteAdopter] = []
        # While save() holds the write lock: when its store_timeout runs out.
        self._deadline: float | None = None
        # Change number of this process's last durable write, per breaker.
        self._own_seq: dict[str, int] = {}
        # Breakers whose refresh step a read asked for (run by the background thread, so a
        # read never does I/O).
        self._refresh_requests: dict[str, BaseCircuitBreaker] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # The store's epoch marker as this process knows it, the highest audit head seq it
        # has seen, and why the store lost its data (None while it has not).
        self._epoch: dict[str, Any] | None = None
        self._head_high = 0
        self._lost_reason: str | None = None
        # Whether a store without a marker has lost its data (Redis: always; SQLite: only
        # once this process has seen one).
        self._expects_marker = False
        # True while initialise() writes the marker (the one write a lost store accepts).
        self._initialising = False
        # Set by a store that adopted a marker-less store when it opened (SQLite).
        self._adopted_now = False
        # The registry entry is written by the background thread (heartbeats).
        self.registration = ProcessRegistration(self, wake=self._wake.set)

    # ------------------------------------------------------------------ subclass hooks
    def describe(self) -> str:
        """How the store names itself in reasons and logs (e.g. ``sqlite:///x.db``)."""
        return type(self).__name__

    def _tick(self) -> None:
        """One round of watching: apply other processes' changes, check reachability.
        Waits at most about :attr:`tick_seconds`."""
        time.sleep(self.tick_seconds)

    def _heartbeat_safe(self) -> bool:
        """Whether the registry heartbeat may run now: it shares this thread with the
        watcher, so it never waits on a store that is down (or, for Redis, that has not
        answered the last PING yet), and it writes nothing to a store that lost its data
        (an operator's ``store init`` comes first; the heartbeats then resume)."""
        return self._down_reason is None and self._lost_reason is None

    def _write_soft(self, name: str, snapshot: Mapping[str, Any]) -> None:
        """Write progress: the breaker-specific ``data`` of ``snapshot`` (creating the
        record with the snapshot's state if the breaker has none yet), never its state."""
        raise NotImplementedError

    # ------------------------------------------------------------------ thread
    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name=f"haltgate-{self.describe()}", daemon=True)
        self._thread = thread
        thread.start()
        # A program that ends without close() still writes its queued progress.
        ref = weakref.ref(self)
        atexit.register(_close_at_exit, ref)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
                self._run_refreshes()
                self._flush_soft()
                self._retry_unsaved()
                if self._heartbeat_safe():
                    self.registration.tick()
            except Exception:  # never let the watcher die
                logger.exception("store_background_error", extra={"store": self.describe()})
                self._stopping.wait(self.tick_seconds)

    def close(self) -> None:
        """Run requested refresh steps, write queued progress, withdraw this process from
        the registry, stop the background thread (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        try:
            # A refresh step a read asked for (a due trip) is recorded before the store
            # stops: the thread may have been busy (a heartbeat) when it was asked.
            self._run_refreshes()
            self._flush_soft()
            self._retry_unsaved()
        except Exception:
            logger.warning("store_close_flush_failed", extra={"store": self.describe()})
        self.registration.close()

    def request_refresh(self, breaker: BaseCircuitBreaker) -> None:
        """Queue ``breaker``'s refresh step for the background thread (no I/O here)."""
        if breaker.name not in self._refresh_requests:
            self._refresh_requests[breaker.name] = breaker
            self._wake.set()

    def _run_refreshes(self) -> None:
        while self._refresh_requests:
            _, breaker = self._refresh_requests.popitem()
            breaker.refresh()

    def _remaining(self) -> float:
        """Seconds the current write may still wait (``store_timeout`` overall per call)."""
        deadline = self._deadline
        if deadline is None:
            return self.store_timeout
        return max(deadline - time.monotonic(), 0.001)

    def _locked(self) -> _WriteLock:
        """The write lock, taken within ``store_timeout`` (else StoreUnavailableError)."""
        return _WriteLock(self)

    def flush(self) -> None:
        """Write queued progress now (blocking)."""
        self._flush_soft()

    # ------------------------------------------------------------------ availability
    def blocking_reason(self) -> str | None:
        """Why trading must be refused because of this store, or ``None``. A store that
        lost its data refuses even with ``fail_open``: its state is gone, not unreachable."""
        lost = self._lost_reason
        if lost is not None:
            return lost
        if self.fail_open:
            return None
        reason = self._down_reason
        if reason is not None:
            return reason
        if self._unsaved or self._unsaved_audit:
            return (
                f"store {self.describe()} could not record a change yet "
                "(retrying; fail-closed until it is durable)"
            )
        return None

    @property
    def available(self) -> bool:
        """False while the store cannot be reached."""
        return self._down_reason is None

    def _mark_down(self, problem: str) -> None:
        reason = f"store {self.describe()} unavailable: {problem} (fail-closed)"
        with self._state_lock:
            was = self._down_reason
            self._down_reason = reason
        if was is None:
            logger.error("store_unavailable", extra={"store": self.describe(), "problem": problem})
            self._notify()

    def _mark_up(self) -> None:
        with self._state_lock:
            was = self._down_reason
            self._down_reason = None
        if was is not None:
            logger.warning("store_available", extra={"store": self.describe()})
            self._notify()

    def _notify(self) -> None:
        for callback in list(self._availability_watchers):
            try:
                callback()
            except Exception:
                logger.exception("store_watcher_failed", extra={"store": self.describe()})

    # ------------------------------------------------------------------ epoch
    def lost_data_reason(self) -> str | None:
        """``store lost its data: ...`` while this store lost its data, else ``None``."""
        return self._lost_reason

    def _guard_lost(self) -> None:
        """Refuse a write while the store lost its data: it would land in a store nobody
        has set up again (and a reset must never be recorded there)."""
        reason = self._lost_reason
        if reason is not None and not self._initialising:
            raise StoreUnavailableError(reason)

    def _lose(self, problem: str) -> None:
        reason = (
            f"store lost its data: {self.describe()} {problem}; trading is refused until "
            f"an operator re-initialises it ({LOST_HINT}) (fail-closed)"
        )
        with self._state_lock:
            was = self._lost_reason
            self._lost_reason = reason
        if was is None:
            logger.error("store_lost_data", extra={"store": self.describe(), "problem": problem})
            self._notify()

    def _observe_epoch(self, marker: Any, head_seq: int) -> None:
        """The one rule for what a watcher reads of the store's epoch marker and audit head
        (at open and at every poll). A marker that disappeared or changed, or a head behind
        the highest this process has seen, means the store lost its data (FLUSHDB, a
        restart without persistence, an older copy restored, another store's data): every
        process refuses trading. An operator's newer re-initialisation (``haltgate store
        init``) ends it; this process then writes back the trips and halts it holds."""
        if not (isinstance(marker, dict) and isinstance(marker.get("id"), str)):
            marker = None
        known = self._epoch
        if marker is not None and (known is None or marker["id"] != known["id"]):
            if known is None or (
                marker.get("how") == STORE_INIT and _created(marker) > _created(known)
            ):
                self._begin_epoch(marker, head_seq)
            elif self._lost_reason is None:
                self._lose(
                    f"has another epoch marker ({marker['id'][:12]}, {marker.get('how')} at "
                    f"{marker.get('created')}) than the one this process knew "
                    f"({known['id'][:12]}): it holds another store's data, or was set up "
                    "again without haltgate store init"
                )
            return
        if self._lost_reason is not None:
            return
        if marker is None:
            if known is not None or self._expects_marker:
                self._lose(
                    "has no epoch marker (FLUSHDB, a restart without persistence, another "
                    "server, or a namespace that was never set up)"
                )
            return
        if head_seq < self._head_high:
            self._lose(
                f"audit head went back from entry {self._head_high} to entry {head_seq} (an "
                "older copy restored, or entries removed)"
            )
            return
        self._head_high = head_seq

    def _begin_epoch(self, marker: dict[str, Any], head_seq: int) -> None:
        """Adopt ``marker`` as the store's epoch. After a loss or a re-initialisation, the
        trips and halts this process holds are written back (audited) before trading
        resumes, and remembered change numbers are forgotten (the store's restarted)."""
        resumed = self._lost_reason is not None or self._epoch is not None
        self._epoch = dict(marker)
        self._head_high = head_seq
        if not resumed:
            return
        self._forget_numbers()
        self._reassert_held(f"the store was re-initialised (epoch {marker['id'][:12]})")
        with self._state_lock:
            self._lost_reason = None
        logger.warning(
            "store_epoch_adopted", extra={"store": self.describe(), "epoch": marker["id"]}
        )
        self._notify()
        self._wake.set()

    def _forget_numbers(self) -> None:
        """Forget this process's change numbers (a re-initialised store may count anew)."""
        self._own_seq.clear()

    def _reassert_held(self, cause: str, only: set[str] | None = None) -> None:
        """Queue every trip and halt this process holds that the store does not hold
        (``only``: these breakers), each with a ``breaker_reasserted`` audit entry, so its
        record names an entry again; written by the background thread."""
        try:
            stored: dict[str, dict[str, Any]] = self.load_all_snapshots()
        except StoreUnavailableError:
            stored = {}
        now = datetime.now(UTC)
        for name, breaker in list(self._attached.items()):
            if (only is not None and name not in only) or not breaker.is_tripped:
                continue
            if only is not None and name in self._unsaved:
                continue  # its queued change is written anyway
            current = stored.get(name)
            if current is not None and current.get("state") in ("TRIPPED", "MANUALLY_HALTED"):
                continue
            state = breaker.state.value
            record: AuditRecord = (
                "breaker_reasserted",
                name,
                None,
                {"state": state, "reason": breaker.get_trip_reason(), "cause": cause},
                now,
            )
            with self._state_lock:
                queued = self._unsaved.get(name)
                self._unsaved[name] = (breaker, (queued[1] if queued else []) + [record])
            logger.warning("store_state_reasserted", extra={"breaker": name, "state": state})
        self._wake.set()

    def initialise(
        self, operator: str | None = None, *, new_epoch_anyway: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """Set the store up (again): write a new epoch marker with a ``store_initialised``
        audit entry, in one write. Returns ``(marker, written)``.

        A store that has a marker and did not lose its data is left alone (``written`` is
        False) unless ``new_epoch_anyway``: use it when trading processes refuse with
        ``store lost its data`` although the store has a marker (its head went back, or
        its marker was replaced). Every process adopts the new epoch at its next poll and
        writes back the trips and halts it holds."""
        current = self.load_epoch()
        just_adopted = self._adopted_now
        if (
            current is not None
            and self._lost_reason is None
            and not new_epoch_anyway
            and not just_adopted
        ):
            return current, False
        previous = (current or self._epoch or {}).get("id")
        marker = new_epoch(STORE_INIT, previous)
        try:
            records = len(self.load_all_snapshots())
        except StoreUnavailableError:
            records = -1
        payload = {
            "epoch": marker["id"],
            "previous_epoch": previous,
            "lost": self._lost_reason,
            "records_found": records,
        }
        self._initialising = True
        try:
            self.set_value(EPOCH_KEY, marker, audit=("store_initialised", None, operator, payload))
        finally:
            self._initialising = False
        head = self.load_audit_head()
        self._observe_epoch(marker, 0 if head is None else head[0])
        return marker, True

    def add_remote_adopter(self, callback: RemoteAdopter) -> None:
        """``callback(name, snapshot)`` is called when another process changes a breaker
        this process does not have (the manager adopts remote manual halts this way)."""
        self._adopters.append(callback)

    # ------------------------------------------------------------------ wiring
    def attach(self, breaker: BaseCircuitBreaker) -> None:
        """Restore and wire ``breaker``. If the store cannot be reached the breaker is
        wired anyway (so a kill switch still works during an outage); the stored state is
        applied when the store is back (its watcher resyncs), and trading is refused
        meanwhile unless ``fail_open``."""
        try:
            super().attach(breaker)
        except StoreUnavailableError as exc:
            logger.error(
                "breaker_restore_deferred", extra={"breaker": breaker.name, "problem": str(exc)}
            )
            if self._down_reason is None:
                self._mark_down(str(exc))
            window = None
            try:
                window = self.rate_window(breaker)
            except StoreUnavailableError:
                window = None
            if window is not None:
                breaker.use_window(window)  # type: ignore[attr-defined]
            breaker._sink = self
            with self._attach_lock:
                self._attached[breaker.name] = breaker
            self.registration.changed()

    # ------------------------------------------------------------------ writes
    def save(
        self,
        breaker: BaseCircuitBreaker,
        events: list[BreakerEvent],
        snapshot: Mapping[str, Any] | None = None,
    ) -> None:
        """Durable save (see :meth:`Store.save`), bounded by ``store_timeout``.

        A restrictive change the store refuses is queued and retried in the background;
        the store blocks trading until it is durable (fail-closed). Audit entries still
        queued for this breaker go first, in the same transaction."""
        restrictive = not any(e.kind is EventKind.RESET for e in events)
        warnings_only = bool(events) and all(e.kind is EventKind.WARNING for e in events)
        deadline = time.monotonic() + self.store_timeout
        refusal = self._lost_reason or self._down_reason
        if refusal is not None:
            if restrictive:
                self._queue_unsaved(breaker, events)
            raise StoreUnavailableError(refusal)
        if not self._write_lock.acquire(timeout=self.store_timeout):
            if restrictive:
                self._queue_unsaved(breaker, events)
            raise StoreUnavailableError(
                f"store {self.describe()} busy for more than {self.store_timeout:g}s"
            )
        earlier: list[AuditRecord] = []
        try:
            with self._soft_lock:
                self._soft_pending.pop(breaker.name, None)
            if not warnings_only:
                with self._state_lock:
                    queued = self._unsaved.pop(breaker.name, None)
                earlier = queued[1] if queued else []
            if warnings_only:
                snapshot = None
            elif snapshot is None:
                snapshot = breaker.export_state()
            self._deadline = deadline
            self.write(breaker.name, snapshot, earlier + audit_records(events))
        except StoreUnavailableError:
            if earlier:
                with self._state_lock:
                    later = self._unsaved.get(breaker.name)
                    self._unsaved[breaker.name] = (breaker, earlier + (later[1] if later else []))
            if restrictive:
                self._queue_unsaved(breaker, events)
            raise
        finally:
            self._deadline = None
            self._write_lock.release()
        self.registration.changed()  # the registry shows each breaker's state
        if earlier:
            self._notify()  # a queued change became durable: maybe no longer blocking

    def _queue_unsaved(self, breaker: BaseCircuitBreaker, events: list[BreakerEvent]) -> None:
        records = audit_records(events)
        warnings_only = bool(events) and all(e.kind is EventKind.WARNING for e in events)
        with self._state_lock:
            if warnings_only:
                self._unsaved_audit.extend(records)
            else:
                previous = self._unsaved.get(breaker.name)
                queued = (previous[1] if previous else []) + records
                self._unsaved[breaker.name] = (breaker, queued)
        self._notify()
        self._wake.set()

    def _retry_unsaved(self) -> None:
        if not (self._unsaved or self._unsaved_audit) or self._down_reason is not None:
            return
        if self._lost_reason is not None:
            return
        with self._state_lock:
            pending = list(self._unsaved.items())
            audit_only = list(self._unsaved_audit)
        # Snapshots are taken before the write lock: a trading thread may hold a breaker
        # lock while it waits for the write lock (never the other way round).
        exported = [
            (name, breaker, records, breaker.export_state()) for name, (breaker, records) in pending
        ]
        if not self._write_lock.acquire(timeout=self.store_timeout):
            return
        try:
            for name, breaker, records, snapshot in exported:
                with self._state_lock:
                    current = self._unsaved.get(name)
                if current is None or current[1] is not records:
                    continue  # a newer save took these records along, or more arrived
                self.write(name, snapshot, records)
                with self._state_lock:
                    current = self._unsaved.get(name)
                    if current is not None and current[1] is records:
                        del self._unsaved[name]
                logger.warning("store_write_recovered", extra={"breaker": breaker.name})
            if audit_only:
                self.write("", None, audit_only)
                with self._state_lock:
                    del self._unsaved_audit[: len(audit_only)]
        except StoreUnavailableError:
            return
        finally:
            self._write_lock.release()
        self._notify()

    def save_soft(self, breaker: BaseCircuitBreaker) -> None:
        """Queue progress (peak window, baseline) for the background thread; no I/O here."""
        snapshot = breaker.export_state()
        with self._soft_lock:
            self._soft_pending[breaker.name] = snapshot
        self._wake.set()

    def _flush_soft(self) -> None:
        if not self._soft_pending or self._down_reason is not None:
            return
        if self._lost_reason is not None:
            return
        if not self._write_lock.acquire(timeout=self.store_timeout):
            return
        try:
            with self._soft_lock:
                pending, self._soft_pending = self._soft_pending, {}
            for position, (name, snapshot) in enumerate(pending.items()):
                try:
                    self._write_soft(name, snapshot)
                except StoreUnavailableError:
                    # Put back what was not written unless newer progress arrived.
                    with self._soft_lock:
                        for later_name, later in list(pending.items())[position:]:
                            self._soft_pending.setdefault(later_name, later)
                    logger.warning("store_soft_write_failed", extra={"breaker": name})
                    return
        finally:
            self._write_lock.release()

    def append_audit(
        self,
        event: str,
        *,
        breaker: str | None = None,
        operator: str | None = None,
        payload: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> AuditEntry:
        """Append one audit entry under the write lock (the chain has one writer at a
        time in this process)."""
        with self._locked():
            return super().append_audit(
                event, breaker=breaker, operator=operator, payload=payload, time=time
            )

    # ------------------------------------------------------------------ remote changes
    def _apply_remote(self, name: str, seq: int, snapshot: Mapping[str, Any]) -> None:
        """Adopt another process's change of breaker ``name`` (state only: this process
        keeps its own progress data), unless this process wrote a newer one itself."""
        breaker = self._attached.get(name)
        if breaker is None:
            for adopter in list(self._adopters):
                try:
                    adopter(name, snapshot)
                except Exception:
                    logger.exception("store_adopter_failed", extra={"breaker": name})
            return
        state_only = {k: v for k, v in snapshot.items() if k != "data"}
        permissive = state_only.get("state") in ("NORMAL", "RESETTING")

        def newer_and_safe() -> bool:
            # A trip or halt of ours that is not durable yet is never undone by a reset
            # we could not see ordered against it.
            if permissive and name in self._unsaved:
                return False
            return seq > self._own_seq.get(name, 0)

        if breaker.adopt_remote(state_only, guard=newer_and_safe):
            self.registration.changed()


def _created(marker: Mapping[str, Any]) -> datetime:
    """When an epoch marker was written (the earliest time for one that does not say)."""
    try:
        created = datetime.fromisoformat(str(marker.get("created")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


def _close_at_exit(ref: weakref.ref[BackgroundStore]) -> None:
    store = ref()
    if store is not None and not store._stopping.is_set():
        store.close()


class _WriteLock:
    """``with store._locked():`` takes the write lock within ``store_timeout`` or raises."""

    __slots__ = ("_store",)

    def __init__(self, store: BackgroundStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        store = self._store
        if not store._write_lock.acquire(timeout=store.store_timeout):
            raise StoreUnavailableError(
                f"store {store.describe()} busy for more than {store.store_timeout:g}s"
            )

    def __exit__(self, *exc: object) -> None:
        self._store._write_lock.release()
