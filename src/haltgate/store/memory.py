"""MemoryStore: state and audit log in this process only (the library default)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..audit import AUDIT_HEAD_KEY, AUDIT_MODE_KEY, AuditEntry, chain_entries, last_state_seq
from .base import EPOCH_KEY, AuditRecord, Store, new_epoch

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Keeps snapshots, counters and the audit chain in memory; lost when the process ends.

    It is set up (its epoch marker written) when it is made: it cannot lose its data while
    it lives, and nobody else can see it afterwards."""

    keeps_epoch = True

    def __init__(self, *, audit_key: bytes | None = None) -> None:
        super().__init__(audit_key=audit_key)
        self._lock = threading.Lock()
        self._snapshots: dict[str, dict[str, Any]] = {}
        # The seq of the last audit entry each record names (written with the record).
        self._record_seqs: dict[str, int] = {}
        self._values: dict[str, Any] = {EPOCH_KEY: new_epoch("created")}
        self._audit: list[AuditEntry] = []

    def load_snapshot(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            snapshot = self._snapshots.get(name)
            return copy.deepcopy(snapshot) if snapshot is not None else None

    def load_all_snapshots(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._snapshots)

    def load_all_records(self) -> dict[str, tuple[dict[str, Any], int | None]]:
        with self._lock:
            return {
                name: (copy.deepcopy(snapshot), self._record_seqs.get(name))
                for name, snapshot in self._snapshots.items()
            }

    def write(
        self,
        name: str,
        snapshot: Mapping[str, Any] | None,
        audit: Sequence[AuditRecord],
    ) -> list[AuditEntry]:
        with self._lock:
            if audit:
                new_mode = self._audit_mode_for_append(self._values.get(AUDIT_MODE_KEY))
                if new_mode is not None:
                    self._values[AUDIT_MODE_KEY] = new_mode
            if snapshot is not None:
                self._snapshots[name] = copy.deepcopy(dict(snapshot))
            added = chain_entries(self._audit[-1] if self._audit else None, audit, self._audit_key)
            named = last_state_seq(added, name) if snapshot is not None else None
            if named is not None:
                self._record_seqs[name] = named
            self._audit.extend(added)
            if added:
                self._values[AUDIT_HEAD_KEY] = {"seq": added[-1].seq, "hash": added[-1].hash}
            return added

    def iter_audit(self, start_seq: int = 1) -> Iterator[AuditEntry]:
        with self._lock:
            entries = list(self._audit[max(start_seq - 1, 0) :])
        return iter(entries)

    def get_value(self, key: str) -> Any:
        with self._lock:
            return copy.deepcopy(self._values.get(key))

    def set_value(
        self,
        key: str,
        value: Any,
        *,
        audit: tuple[str, str | None, str | None, dict[str, Any]] | None = None,
    ) -> None:
        from datetime import UTC

        with self._lock:
            self._values[key] = copy.deepcopy(value)
        if audit is not None:
            event, breaker, operator, payload = audit
            self.write(
                breaker or "", None, [(event, breaker, operator, payload, datetime.now(UTC))]
            )
