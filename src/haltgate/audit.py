"""The tamper-evident audit log: append-only, hash-chained, optionally HMAC-keyed.

Each entry stores ``seq, time, operator, event, breaker, payload`` (canonical JSON), the
previous entry's hash and its own hash over all of those. Change, remove or insert any
entry and :func:`verify_entries` names the first one that no longer fits. With a key (read
from the environment variable named by ``HALTGATE_AUDIT_KEY_ENV``, ``HALTGATE_AUDIT_KEY``
by default) the hashes are HMAC-SHA256, so rewriting the whole chain needs the key too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditVerification",
    "audit_key_from_env",
    "canonical_json",
    "chain_entries",
    "chain_entry",
    "entry_fields",
    "entry_from_fields",
    "entry_state",
    "last_state_seq",
    "verify_entries",
]

GENESIS_HASH = "0" * 64


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
    return repr(value)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, Decimal and datetime as strings."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def to_jsonable(value: Any) -> Any:
    """``value`` with Decimals, datetimes and enums turned into JSON types."""
    result: Any = json.loads(canonical_json(value))
    return result


def audit_key_from_env() -> bytes | None:
    """The HMAC key from the environment, or ``None`` (plain SHA-256 chain)."""
    variable = os.environ.get("HALTGATE_AUDIT_KEY_ENV", "HALTGATE_AUDIT_KEY")
    raw = os.environ.get(variable)
    return raw.encode() if raw else None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the audit log."""

    seq: int
    time: str
    operator: str | None
    event: str
    breaker: str | None
    payload: str  # canonical JSON
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the payload parsed)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "operator": self.operator,
            "event": self.event,
            "breaker": self.breaker,
            "payload": json.loads(self.payload),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The entry's stored fields (payload kept as its canonical JSON text)."""
    return {
        "seq": entry.seq,
        "time": entry.time,
        "operator": entry.operator,
        "event": entry.event,
        "breaker": entry.breaker,
        "payload": entry.payload,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def entry_from_fields(fields: Mapping[str, Any]) -> AuditEntry:
    """The inverse of :func:`entry_fields` (for stores and exported files)."""
    return AuditEntry(
        int(fields["seq"]),
        str(fields["time"]),
        fields.get("operator"),
        str(fields["event"]),
        fields.get("breaker"),
        str(fields["payload"]),
        str(fields["prev_hash"]),
        str(fields["hash"]),
    )


def _digest(
    seq: int,
    time: str,
    operator: str | None,
    event: str,
    breaker: str | None,
    payload: str,
    prev_hash: str,
    key: bytes | None,
) -> str:
    material = canonical_json([seq, time, operator, event, breaker, payload, prev_hash]).encode()
    if key:
        return hmac.new(key, material, hashlib.sha256).hexdigest()
    return hashlib.sha256(material).hexdigest()


def chain_entry(
    previous: AuditEntry | None,
    *,
    time: datetime | str,
    operator: str | None,
    event: str,
    breaker: str | None,
    payload: Mapping[str, Any] | None,
    key: bytes | None,
) -> AuditEntry:
    """The entry that follows ``previous`` (``None`` for the first one)."""
    seq = 1 if previous is None else previous.seq + 1
    prev_hash = GENESIS_HASH if previous is None else previous.hash
    stamp = time.isoformat() if isinstance(time, datetime) else time
    body = canonical_json(dict(payload or {}))
    digest = _digest(seq, stamp, operator, event, breaker, body, prev_hash, key)
    return AuditEntry(seq, stamp, operator, event, breaker, body, prev_hash, digest)


def chain_entries(
    previous: AuditEntry | None,
    records: Iterable[tuple[str, str | None, str | None, Mapping[str, Any], datetime | str]],
    key: bytes | None,
) -> list[AuditEntry]:
    """The entries that follow ``previous`` for ``(event, breaker, operator, payload, time)``
    records, in order (what every store appends)."""
    entries: list[AuditEntry] = []
    for event, breaker, operator, payload, when in records:
        previous = chain_entry(
            previous,
            time=when,
            operator=operator,
            event=event,
            breaker=breaker,
            payload=payload,
            key=key,
        )
        entries.append(previous)
    return entries


STATE_EVENTS = frozenset(
    {"breaker_tripped", "breaker_halted", "breaker_reset", "breaker_reasserted"}
)
"""The audit events that record a breaker's new state (written with its record, in the same
transaction): trips, halts, resets and self-clears, and a state written back after the
store was re-initialised. Warnings, refused resets, key rotations and config loads are not."""


def entry_state(event: str, breaker: str | None, payload: str | Mapping[str, Any]) -> str | None:
    """The state that an audit entry records for its breaker (``payload["state"]``), or
    ``None`` when the entry records no state change (the one rule that says which entry a
    breaker record names, used by every store's writer and by ``verify``)."""
    if event not in STATE_EVENTS or not breaker:
        return None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    state = payload.get("state") if isinstance(payload, Mapping) else None
    return state if isinstance(state, str) else None


def last_state_seq(entries: Iterable[AuditEntry], name: str) -> int | None:
    """The seq of the last of ``entries`` that records a state of breaker ``name`` (what
    its record names, written in the same transaction), or ``None``."""
    found: int | None = None
    for entry in entries:
        if entry.breaker == name and entry_state(entry.event, entry.breaker, entry.payload):
            found = entry.seq
    return found


@dataclass(frozen=True, slots=True)
class AuditVerification:
    """The result of :func:`verify_entries`; ``method`` says which check was made.

    ``records`` names each breaker whose stored record disagrees with the log (its state is
    not what its last audit entry says, or it names an entry the log does not hold);
    ``notes`` says what could not be checked without failing (a record written before
    records named their last entry)."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    method: str = ""
    records: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok


AUDIT_MODE_KEY = "audit_mode"
"""Where a store records its chain's mode, at its first entry: ``sha256`` or
``hmac-sha256``."""

AUDIT_HEAD_KEY = "audit_head"
"""Where SQLite and memory stores keep the chain's head (``{"seq", "hash"}``), written with
every append in the same transaction (Redis keeps it under ``<namespace>:audit:head``)."""

SHA256 = "sha256"
HMAC_SHA256 = "hmac-sha256"


def audit_mode(key: bytes | None) -> str:
    """The chain mode a writer with ``key`` produces."""
    return HMAC_SHA256 if key else SHA256


def method_text(key: bytes | None) -> str:
    """What a verification with ``key`` proves, in words."""
    if key:
        return "HMAC-SHA256 with the key"
    return "SHA-256, unkeyed: anyone with write access could have rewritten it"


def verify_entries(entries: Iterable[AuditEntry], key: bytes | None) -> AuditVerification:
    """Walk the chain; name the first entry that was altered, removed or inserted."""
    result = _verify_entries(entries, key)
    return dataclasses.replace(result, method=method_text(key))


def _verify_entries(entries: Iterable[AuditEntry], key: bytes | None) -> AuditVerification:
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    for entry in entries:
        if entry.seq != expected_seq:
            kind = "removed" if entry.seq > expected_seq else "inserted or reordered"
            return AuditVerification(
                False,
                checked,
                expected_seq,
                f"entry {expected_seq} missing: found seq {entry.seq} (entries {kind})",
            )
        if entry.prev_hash != prev_hash:
            return AuditVerification(
                False,
                checked,
                entry.seq,
                f"entry {entry.seq} does not follow entry {entry.seq - 1} "
                "(an entry before it was removed, inserted or altered)",
            )
        digest = _digest(
            entry.seq,
            entry.time,
            entry.operator,
            entry.event,
            entry.breaker,
            entry.payload,
            entry.prev_hash,
            key,
        )
        if not hmac.compare_digest(digest, entry.hash):
            return AuditVerification(
                False, checked, entry.seq, f"entry {entry.seq} was altered (hash mismatch)"
            )
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    return AuditVerification(True, checked)
