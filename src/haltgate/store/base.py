"""The store interface: where breaker state and the audit log last.

A store keeps, per breaker, the latest snapshot (state, trip reason, operator, details,
time, breaker-specific data such as the drawdown peak window and the daily baseline), an
append-only hash-chained audit log, and small counters (kill-switch lock-outs). A state
change and its audit entries are written in one transaction by :meth:`Store.save`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from ..audit import (
    AUDIT_HEAD_KEY,
    AUDIT_MODE_KEY,
    HMAC_SHA256,
    AuditEntry,
    AuditVerification,
    audit_key_from_env,
    audit_mode,
    canonical_json,
    entry_fields,
    entry_state,
    method_text,
    to_jsonable,
    verify_entries,
)
from ..errors import AuditModeError
from ..events import BreakerEvent
from ..values import to_flag
from .registry import ProcessRegistration

if TYPE_CHECKING:
    from ..breakers.base import BaseCircuitBreaker
    from ..breakers.order_rate import RateWindow
    from ..checks.base import OrderCheck
    from ..checks.windows import KeyedWindow

__all__ = [
    "EPOCH_KEY",
    "AuditRecord",
    "Store",
    "ValueAudit",
    "ValueUpdate",
    "audit_records",
    "event_payload",
    "new_epoch",
]

EPOCH_KEY = "store_epoch"
"""The small value holding the store's epoch marker (``{"id", "created", "how",
"previous"}``), written when the store is set up (see :func:`new_epoch`)."""

LOST_HINT = "haltgate store init URL --operator NAME"
"""How an operator re-initialises a store that lost its data."""


def new_epoch(how: str, previous: str | None = None) -> dict[str, Any]:
    """A new epoch marker: a random id, when (UTC), ``how`` it was made (``created``: a new
    empty store; ``adopted``: a file of an earlier version; ``reinitialised``: an operator's
    ``haltgate store init``) and the id of the epoch it replaces, if known."""
    return {
        "id": uuid.uuid4().hex,
        "created": datetime.now(UTC).isoformat(),
        "how": how,
        "previous": previous,
    }


AuditRecord = tuple[str, str | None, str | None, dict[str, Any], datetime]
"""``(event, breaker, operator, payload, time)`` of one audit entry to append."""

ValueAudit = tuple[str, str | None, str | None, dict[str, Any]]
"""``(event, breaker, operator, payload)``: the audit entry written with a small value."""

ValueUpdate = Callable[[Any], tuple[Any, ValueAudit | None]]
"""``update(old) -> (new, audit)``: a read-modify-write of one small value (see
:meth:`Store.update_value`)."""

logger = logging.getLogger("haltgate.store")


def event_payload(event: BreakerEvent) -> dict[str, Any]:
    """What the audit log keeps of a breaker event."""
    data: dict[str, Any] = to_jsonable(
        {
            "kind": str(event.kind),
            "breaker_type": getattr(event.breaker_type, "value", event.breaker_type),
            "previous_state": getattr(event.previous_state, "value", event.previous_state),
            "state": getattr(event.state, "value", event.state),
            "reason": event.reason,
            "details": dict(event.details),
            "timestamp": event.timestamp,
        }
    )
    return data


def audit_records(events: Sequence[BreakerEvent]) -> list[AuditRecord]:
    """One audit record per state-changing event (a reset's RESETTING step is folded
    into its NORMAL step)."""
    return [
        (
            f"breaker_{event.kind}",
            event.breaker_name,
            event.operator,
            event_payload(event),
            event.timestamp,
        )
        for event in events
        if not (event.kind == "reset" and str(getattr(event.state, "value", "")) == "RESETTING")
    ]


def _mode_problem(recorded: Any, mine: str) -> str:
    if recorded == HMAC_SHA256:
        return (
            "the audit chain is keyed (HMAC-SHA256) and this writer has no key: set "
            "HALTGATE_AUDIT_KEY (appending unkeyed entries would break the chain)"
        )
    return (
        f"the audit chain is {recorded!r} and this writer's is {mine!r}: refusing to append "
        "entries that would break the chain"
    )


def _record_problem(
    name: str,
    snapshot: Mapping[str, Any],
    seq: int | None,
    found: Mapping[int, AuditEntry],
    latest: tuple[AuditEntry, str] | None,
    end: int,
) -> tuple[str | None, str | None]:
    """``(problem, note)`` of one breaker record checked against the log."""
    state = snapshot.get("state")
    if seq is None:
        if latest is not None and latest[1] != state:
            return (
                f"breaker {name!r} is {state} but its last audit entry {latest[0].seq} "
                f"({latest[0].event}) says {latest[1]}",
                None,
            )
        if latest is None and (state != "NORMAL" or snapshot.get("change")):
            return (
                f"breaker {name!r} is {state} (last change: {snapshot.get('change')}) but "
                "names no audit entry, and the log has none for it",
                None,
            )
        if latest is not None:
            return None, (
                f"breaker {name!r}: no audit seq recorded (written before this check "
                f"existed); its state {state} agrees with entry {latest[0].seq}"
            )
        return None, None
    entry = found.get(seq)
    if entry is None:
        return (
            f"breaker {name!r} names audit entry {seq}, which the log does not hold (it "
            f"ends at entry {end})",
            None,
        )
    if entry.breaker != name:
        return (
            f"breaker {name!r} names audit entry {seq}, which is for "
            f"{entry.breaker or 'no breaker'!r} ({entry.event})",
            None,
        )
    recorded = entry_state(entry.event, entry.breaker, entry.payload)
    if recorded != state:
        return (
            f"breaker {name!r} is {state} but its last audit entry {seq} ({entry.event}) "
            f"says {recorded or 'no state'}",
            None,
        )
    if latest is not None and latest[0].seq > seq:
        return (
            f"breaker {name!r} names audit entry {seq} but the log records a later change "
            f"of it, entry {latest[0].seq} ({latest[0].event}: {latest[1]}): its record "
            "was rolled back",
            None,
        )
    return None, None


class Store(ABC):
    """Base class of the stores. Subclasses implement the storage primitives; this class
    wires breakers to them.

    ``fail_open=False`` (the default) refuses trading while the store cannot be reached.
    """

    fail_open: bool = False

    #: Whether this store keeps an epoch marker (``verify`` then fails when it is missing).
    keeps_epoch: bool = False

    def __init__(self, *, audit_key: bytes | None = None, fail_open: bool = False) -> None:
        self.fail_open = to_flag(fail_open, "fail_open")
        self._audit_key = audit_key if audit_key is not None else audit_key_from_env()
        self._attached: dict[str, BaseCircuitBreaker] = {}
        self._attach_lock = threading.Lock()
        self._availability_watchers: list[Callable[[], None]] = []
        self._update_lock = threading.Lock()
        #: Names this store instance (one per process, in practice) in the snapshots it
        #: writes, so other processes know whose trip or self-clear they are looking at.
        self.origin: str = uuid.uuid4().hex
        #: This process's entry in the live-process registry (see :mod:`.registry`).
        self.registration = ProcessRegistration(self)

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    def load_snapshot(self, name: str) -> dict[str, Any] | None:
        """The last saved snapshot of breaker ``name``, or ``None``."""

    @abstractmethod
    def load_all_snapshots(self) -> dict[str, dict[str, Any]]:
        """Every saved snapshot, by breaker name."""

    @abstractmethod
    def write(
        self,
        name: str,
        snapshot: Mapping[str, Any] | None,
        audit: Sequence[AuditRecord],
    ) -> list[AuditEntry]:
        """Atomically save ``snapshot`` (if given) and append the audit records
        ``(event, breaker, operator, payload, time)``; raise
        :class:`~haltgate.StoreUnavailableError` when the store cannot be reached."""

    @abstractmethod
    def iter_audit(self, start_seq: int = 1) -> Iterator[AuditEntry]:
        """Audit entries in order, from ``start_seq``."""

    @abstractmethod
    def get_value(self, key: str) -> Any:
        """A small JSON value (counters, lock-outs), or ``None``."""

    @abstractmethod
    def set_value(
        self,
        key: str,
        value: Any,
        *,
        audit: tuple[str, str | None, str | None, dict[str, Any]] | None = None,
    ) -> None:
        """Save a small JSON value (with an optional audit record, atomically)."""

    def update_value(self, key: str, update: ValueUpdate) -> Any:
        """Atomically replace the small value under ``key`` with ``update(old)``'s new value
        (and its audit entry, in the same write); returns the new value.

        Atomic against every other writer of the store: no two callers, in this process or
        another, see the same ``old`` (the kill-switch guard reserves attempts this way).
        This default is atomic within one process, which is all an in-memory store has;
        stores shared by processes override it."""
        with self._update_lock:
            new, audit = update(self.get_value(key))
            self.set_value(key, new, audit=audit)
            return new

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections and stop background threads."""

    def registry_entries(self) -> dict[str, dict[str, Any]]:
        """The live-process registry's entries by origin (:mod:`.registry`): kept in the
        small value ``process_registry`` by default; a backend may keep them natively."""
        from .registry import REGISTRY_KEY, entries_of

        return entries_of(self.get_value(REGISTRY_KEY))

    def registry_write(self, origin: str, entry: dict[str, Any] | None, now: float) -> None:
        """Write (or, with ``None``, remove) the registry entry of ``origin``, pruning
        entries unseen for long (at ``now`` on :meth:`store_time`)."""
        from .registry import write_generic

        write_generic(self, origin, entry, now)

    def store_time(self) -> float:
        """Seconds since the epoch on the store's clock (the process registry's
        ``last_seen``): this host's wall clock; Redis reads its own ``TIME``, one clock for
        every host."""
        return time.time()

    # ------------------------------------------------------------------ optional
    def rate_window(self, breaker: BaseCircuitBreaker) -> RateWindow | None:
        """A shared order window for ``breaker`` (Redis), or ``None`` to count locally."""
        return None

    def check_window(self, check: OrderCheck) -> KeyedWindow | None:
        """A window shared by every process for a windowed order check (Redis), or
        ``None`` to count in the manager's memory."""
        return None

    def blocking_reason(self) -> str | None:
        """Why trading must be refused because of the store (fail-closed), or ``None``."""
        return None

    def lost_data_reason(self) -> str | None:
        """``store lost its data: ...`` when this store's epoch marker is missing or changed,
        or its audit head went backwards (every process refuses trading until an operator
        re-initialises it), else ``None``."""
        return None

    def load_epoch(self) -> dict[str, Any] | None:
        """The store's epoch marker, or ``None`` when it has none."""
        value = self.get_value(EPOCH_KEY)
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            return value
        return None

    def load_all_records(self) -> dict[str, tuple[dict[str, Any], int | None]] | None:
        """Every saved snapshot with the seq of the last audit entry its record names
        (``None``: the record names none, e.g. it was written by an earlier version), or
        ``None`` when this store does not keep that seq (``verify`` then skips the check)."""
        return None

    # ------------------------------------------------------------------ wiring
    def attach(self, breaker: BaseCircuitBreaker) -> None:
        """Restore ``breaker`` from its last snapshot and make it save through this store."""
        snapshot = self.load_snapshot(breaker.name)
        if snapshot is not None:
            breaker.import_state(snapshot)
            logger.info(
                "breaker_restored", extra={"breaker": breaker.name, "state": snapshot.get("state")}
            )
        window = self.rate_window(breaker)
        if window is not None:
            breaker.use_window(window)  # type: ignore[attr-defined]
        breaker._sink = self
        with self._attach_lock:
            self._attached[breaker.name] = breaker
        self.registration.changed()

    def detach(self, breaker: BaseCircuitBreaker) -> None:
        """Stop saving ``breaker`` through this store."""
        with self._attach_lock:
            self._attached.pop(breaker.name, None)
        if breaker._sink is self:
            breaker._sink = None
        self.registration.changed()

    def add_availability_watcher(self, callback: Callable[[], None]) -> None:
        """Called when the store becomes unreachable or reachable again."""
        self._availability_watchers.append(callback)

    # BreakerSink
    def save(
        self,
        breaker: BaseCircuitBreaker,
        events: list[BreakerEvent],
        snapshot: Mapping[str, Any] | None = None,
    ) -> None:
        """Save ``snapshot`` (default: the breaker's current one) with one audit entry per
        state-changing event."""
        records = audit_records(events)
        if events and all(e.kind == "warning" for e in events):
            snapshot = None
        elif snapshot is None:
            snapshot = breaker.export_state()
        self.write(breaker.name, snapshot, records)

    def request_refresh(self, breaker: BaseCircuitBreaker) -> None:
        """Run ``breaker``'s refresh step (a read saw that time may have changed it). This
        store does no I/O, so it runs at once, unless another thread holds the breaker's
        lock (that thread is changing it and refreshes it itself)."""
        breaker._refresh_now()

    def save_soft(self, breaker: BaseCircuitBreaker) -> None:
        """Save progress (peaks, baselines) without an audit entry; failures are logged."""
        try:
            self.write(breaker.name, breaker.export_state(), [])
        except Exception:
            logger.warning(
                "store_soft_write_failed", extra={"breaker": breaker.name}, exc_info=True
            )

    # ------------------------------------------------------------------ audit
    def append_audit(
        self,
        event: str,
        *,
        breaker: str | None = None,
        operator: str | None = None,
        payload: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> AuditEntry:
        """Append one audit entry (config loads, refused kill-switch resets...)."""
        stamp = time or datetime.now(UTC)
        entries = self.write(
            breaker or "",
            None,
            [(event, breaker, operator, to_jsonable(dict(payload or {})), stamp)],
        )
        return entries[-1]

    def load_audit_head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the chain's last entry as the store's head records it (kept
        apart from the log, written with every append), or ``None`` when none is recorded."""
        value = self.get_value(AUDIT_HEAD_KEY)
        if isinstance(value, dict) and isinstance(value.get("seq"), int):
            return int(value["seq"]), str(value.get("hash", ""))
        return None

    def verify_audit(self, *, expect_head: tuple[int, str] | None = None) -> AuditVerification:
        """Check the whole chain; names the first altered, removed or inserted entry, and
        says which check it made. A chain recorded as keyed is never passed by a verifier
        without the key. The log must end where the store's head says (a cut-off tail, an
        emptied or shorter log is caught), and with ``expect_head`` (``(seq, hash)`` kept
        outside the host) it must hold that entry with that hash."""
        result = self._verify_chain()
        if not result.ok:
            return result
        # The head before the records: every entry up to it was committed before the records
        # were read, so each record reflects them (a later change may race the read).
        settled = self.load_audit_head()
        records = self.load_all_records()
        result = self._verify_head(result, expect_head)
        if not result.ok:
            return result
        result = self._verify_epoch(result)
        if not result.ok or records is None:
            return result
        return self._verify_records(result, records, 0 if settled is None else settled[0])

    def _verify_epoch(self, result: AuditVerification) -> AuditVerification:
        if not self.keeps_epoch or self.load_epoch() is not None:
            return result
        return dataclasses.replace(
            result,
            ok=False,
            first_bad_seq=None,
            problem="the store has no epoch marker: it lost its data (FLUSHDB, a restart "
            f"without persistence, another server) or was never set up; an operator must "
            f"re-initialise it: {LOST_HINT}",
        )

    def _verify_records(
        self,
        result: AuditVerification,
        records: Mapping[str, tuple[dict[str, Any], int | None]],
        settled: int,
    ) -> AuditVerification:
        """Each breaker record against the log: the entry it names exists, is that
        breaker's, records the record's state, and no later entry (up to ``settled``)
        records another change of it."""
        named = {seq for _snapshot, seq in records.values() if seq is not None}
        found: dict[int, AuditEntry] = {}
        latest: dict[str, tuple[AuditEntry, str]] = {}
        end = 0
        for entry in self.iter_audit():
            end = entry.seq
            if entry.seq in named:
                found[entry.seq] = entry
            state = entry_state(entry.event, entry.breaker, entry.payload)
            if state is not None and entry.seq <= settled and entry.breaker:
                latest[entry.breaker] = (entry, state)
        problems: list[str] = []
        notes: list[str] = []
        for name, (snapshot, seq) in sorted(records.items()):
            problem, note = _record_problem(name, snapshot, seq, found, latest.get(name), end)
            if problem is not None:
                problems.append(problem)
            if note is not None:
                notes.append(note)
        if problems:
            return dataclasses.replace(
                result,
                ok=False,
                first_bad_seq=None,
                problem=f"{len(problems)} breaker record(s) disagree with the audit log: "
                + "; ".join(problems),
                records=tuple(problems),
                notes=tuple(notes),
            )
        return dataclasses.replace(result, notes=tuple(notes))

    def _verify_head(
        self, result: AuditVerification, expect_head: tuple[int, str] | None
    ) -> AuditVerification:
        last: AuditEntry | None = None
        wanted: AuditEntry | None = None
        for entry in self.iter_audit(max(result.checked, 1) if expect_head is None else 1):
            last = entry
            if expect_head is not None and entry.seq == expect_head[0]:
                wanted = entry
        head = self.load_audit_head()
        last_seq = 0 if last is None else last.seq
        if (
            head is not None
            and head[0] > 0
            and (head[0] != last_seq or last is None or head[1] != last.hash)
        ):
            return dataclasses.replace(
                result,
                ok=False,
                first_bad_seq=min(last_seq + 1, head[0]),
                problem=f"the store's chain head is entry {head[0]} but the log ends at entry "
                f"{last_seq}: entries were cut off, or the log was emptied or replaced",
            )
        if head is None and last is not None:
            return dataclasses.replace(
                result,
                ok=False,
                first_bad_seq=None,
                problem="the store has no chain head for a log of "
                f"{last_seq} entries: the head was removed (or the store predates it)",
            )
        if expect_head is not None and (wanted is None or wanted.hash != expect_head[1]):
            return dataclasses.replace(
                result,
                ok=False,
                first_bad_seq=expect_head[0],
                problem=f"the log does not hold the expected head {expect_head[0]}:"
                f"{expect_head[1][:16]}...: it was rewritten (or is another store's)",
            )
        return result

    def _verify_chain(self) -> AuditVerification:
        recorded = self.get_value(AUDIT_MODE_KEY)
        if recorded == HMAC_SHA256 and not self._audit_key:
            return AuditVerification(
                False,
                0,
                None,
                "the chain is keyed (HMAC-SHA256): set HALTGATE_AUDIT_KEY to verify it",
                method_text(None),
            )
        return verify_entries(self.iter_audit(), self._audit_key)

    def check_audit_writer(self) -> None:
        """Raise :class:`~haltgate.AuditModeError` when this store's audit key does not
        match the chain's recorded mode (a writer without the key on a keyed chain, or the
        other way round): its entries would break the chain."""
        recorded = self.get_value(AUDIT_MODE_KEY)
        mine = audit_mode(self._audit_key)
        if recorded is not None and recorded != mine:
            raise AuditModeError(_mode_problem(recorded, mine))

    def _audit_mode_for_append(self, recorded: Any) -> str | None:
        """The mode to record with the first entry (``None``: already recorded and the
        same); raises AuditModeError for a writer of the other mode."""
        mine = audit_mode(self._audit_key)
        if recorded is None:
            return mine
        if recorded != mine:
            raise AuditModeError(_mode_problem(recorded, mine))
        return None

    def export_audit_jsonl(self, fp: IO[str]) -> int:
        """Write the audit log to ``fp`` as JSON lines (one entry per line, the fields of
        :meth:`AuditEntry.to_dict` with the payload as its canonical JSON text, so the
        hashes can be checked from the file alone); returns the number of entries."""
        count = 0
        for entry in self.iter_audit():
            fp.write(canonical_json(entry_fields(entry)) + "\n")
            count += 1
        return count

    def tail_audit(self, n: int = 20) -> list[AuditEntry]:
        """The last ``n`` entries."""
        from collections import deque

        return list(deque(self.iter_audit(), maxlen=n))
