"""SQLiteStore: state and audit log in one SQLite file, shared by the processes on a host.

* WAL journal, ``synchronous=FULL``: a trip, halt or reset and its audit entries are one
  transaction, committed to disk before the call that made them returns.
* The audit table is append-only: triggers refuse UPDATE and DELETE.
* Other processes' changes arrive through a background poller that watches
  ``PRAGMA data_version`` (no disk read while nothing changed) and applies changed rows
  with ``adopt_remote`` (the one adoption rule, breakers/adoption.py) — well within 250 ms.
* Every wait on the database (busy lock) is bounded by ``store_timeout``.
* A damaged or read-only file is refused at open (:class:`StoreUnavailableError` naming
  the file), and a file damaged under a running process fails it closed: the poller
  re-checks the tables on a fresh connection whenever the file itself changes (its page
  cache would go on serving the old pages).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..audit import (
    AUDIT_HEAD_KEY,
    AUDIT_MODE_KEY,
    AuditEntry,
    canonical_json,
    chain_entries,
    last_state_seq,
)
from ..errors import AuditModeError, ConfigError, StoreUnavailableError
from .background import BackgroundStore
from .base import EPOCH_KEY, AuditRecord, ValueAudit, ValueUpdate, new_epoch

__all__ = ["SQLiteStore"]

logger = logging.getLogger("haltgate.store.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS breakers (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    change_seq INTEGER NOT NULL DEFAULT 0,
    origin TEXT,
    audit_seq INTEGER
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('change_seq', 0);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    operator TEXT,
    event TEXT NOT NULL,
    breaker TEXT,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'haltgate audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'haltgate audit log is append-only'); END;
"""


def _split(snapshot: Mapping[str, Any]) -> tuple[str, str]:
    state = {k: v for k, v in snapshot.items() if k != "data"}
    return canonical_json(state), canonical_json(snapshot.get("data") or {})


class SQLiteStore(BackgroundStore):
    """Breaker state, counters and the audit chain in the SQLite file ``path``.

    A new file is set up with its epoch marker (a missing file is a new store); a file of
    an earlier version (haltgate's tables, no marker) is adopted once, audited
    (``store_epoch_adopted``). The poller reads the marker and the audit head whenever
    the file changed, so a marker removed or replaced, or a head gone back, fails every
    process closed with ``store lost its data``.

    ``store_timeout`` bounds every wait on a lock held by another process (default
    0.25 s); ``fail_open=True`` keeps trading while the database cannot record changes
    (the default refuses: fail-closed). ``poll_interval`` is how often the poller looks
    for other processes' changes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        store_timeout: float = 0.25,
        fail_open: bool = False,
        poll_interval: float = 0.02,
        audit_key: bytes | None = None,
    ) -> None:
        super().__init__(store_timeout=store_timeout, fail_open=fail_open, audit_key=audit_key)
        self.path = Path(path)
        self.tick_seconds = float(poll_interval)
        self._origin = self.origin
        self._writer = self._connect()
        self._reader_lock = threading.Lock()
        self._reader = self._connect()
        self._poll_conn: sqlite3.Connection | None = None
        self._data_version: int | None = None
        # The main file's (inode, size, mtime) when the tables were last checked, and what
        # that check found (kept until the file changes again).
        self._file_signature: tuple[int, int, int] | None = None
        self._damage: str | None = None
        self._fresh_file = False
        try:
            with self._write_lock:
                self._init_schema()
                self._check_writable()
            self._file_signature = self._signature()
            damage = self._damage_found(self._reader)
            if damage is not None:
                raise StoreUnavailableError(f"{self.describe()} is damaged: {damage}")
            with self._write_lock:
                self._open_epoch()
            self._seen_seq = self._max_seq()
        except BaseException:
            self._close_connections()
            raise
        self._start()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db``; query parameters
        ``store_timeout``, ``fail_open`` and ``poll_interval`` are accepted too."""
        parts = urlsplit(url)
        if parts.scheme != "sqlite" or parts.netloc not in ("", "localhost"):
            raise ConfigError("store.url", f"not a sqlite URL: {url!r} (use sqlite:///FILE)")
        path = unquote(parts.path)
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ConfigError("store.url", f"no database file in {url!r}")
        for key, value in parse_qsl(parts.query):
            if key in ("store_timeout", "poll_interval"):
                options.setdefault(key, float(value))
            elif key == "fail_open":
                options.setdefault(key, value.lower() in ("1", "true", "yes", "on"))
            else:
                raise ConfigError("store.url", f"unknown sqlite URL parameter {key!r}")
        return cls(path, **options)

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    # ------------------------------------------------------------------ connections
    def _connect(self) -> sqlite3.Connection:
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # The file holds the audit log and kill-switch hashes: made owner-only (0600)
            # before SQLite sees it. SQLite gives the -wal and -shm files it makes later the
            # database file's permissions, so they are 0600 too. (An empty file is a valid
            # empty database.) O_EXCL, and nothing when it exists: closing a descriptor of a
            # file this process has open in SQLite would drop SQLite's POSIX locks on it.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(
                self.path,
                timeout=self.store_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.store_timeout * 1000)}")
            # Switching a new file to WAL takes an exclusive lock that SQLite does not wait
            # for (busy at once when another process is creating the same store): retry
            # within store_timeout.
            deadline = time.monotonic() + self.store_timeout
            while True:
                try:
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"could not enable WAL (journal_mode={mode})")
            conn.execute("PRAGMA synchronous = FULL")
            return conn
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"cannot open {self.describe()}: {exc}") from exc

    keeps_epoch = True

    def _init_schema(self) -> None:
        try:
            # Skip the write when the schema is complete and the file has its marker, so a
            # process can start while another one holds the write lock.
            (present,) = self._writer.execute(
                "SELECT count(*) FROM sqlite_master WHERE name IN "
                "('breakers', 'kv', 'counters', 'audit', 'audit_no_update', 'audit_no_delete')"
            ).fetchone()
            fresh = present == 0
            if fresh:
                # A new file gets its marker in the transaction that creates its tables, so
                # a process opening it meanwhile never sees tables without a marker (and
                # takes it for a file of an earlier version).
                marker = canonical_json(new_epoch("created")).replace("'", "''")
                self._writer.executescript(
                    "BEGIN IMMEDIATE;\n"
                    + _SCHEMA
                    + f"INSERT OR IGNORE INTO kv (key, value) VALUES ('{EPOCH_KEY}', '{marker}');\n"
                    + "COMMIT;"
                )
            elif present < 6:
                self._writer.executescript(_SCHEMA)
            columns = {row[1] for row in self._writer.execute("PRAGMA table_info(breakers)")}
            if "audit_seq" not in columns:
                # A file of an earlier version: its records name no audit entry yet.
                with self._transaction() as conn:
                    columns = {row[1] for row in conn.execute("PRAGMA table_info(breakers)")}
                    if "audit_seq" not in columns:
                        conn.execute("ALTER TABLE breakers ADD COLUMN audit_seq INTEGER")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot prepare {self.describe()}: {exc}") from exc
        self._fresh_file = fresh

    def _open_epoch(self) -> None:
        """Read the marker (writing it for a new file, adopting a file of an earlier
        version) and the head this process starts from."""
        try:
            marker = self._read_epoch(self._writer)
            if marker is None:
                marker = self._set_up_epoch(self._fresh_file)
            self._epoch = marker
            self._expects_marker = marker is not None
            self._head_high = self._read_head(self._writer)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot prepare {self.describe()}: {exc}") from exc

    def _set_up_epoch(self, fresh: bool) -> dict[str, Any] | None:
        """Write the marker of a new file (not audited: nothing was there to lose), or adopt
        a file of an earlier version (audited as ``store_epoch_adopted``). Adopting is safe
        because a file cannot lose its data and keep haltgate's tables: it is this store,
        and a log cut off or rewritten is caught by verify (the head, the records, the
        outside anchor). A writer of the other audit mode leaves it for one with the key."""
        marker = new_epoch("created" if fresh else "adopted")
        try:
            with self._transaction() as conn:
                if self._read_epoch(conn) is None:
                    audit: ValueAudit | None = None
                    if not fresh:
                        audit = (
                            "store_epoch_adopted",
                            None,
                            None,
                            {"epoch": marker["id"], "why": "a file of an earlier version"},
                        )
                    self._set_value_rows(conn, EPOCH_KEY, marker, audit)
        except AuditModeError:
            logger.warning("store_epoch_not_adopted", extra={"store": self.describe()})
            return None
        found = self._read_epoch(self._writer)
        # A file without a marker may also be one whose marker was removed: an operator's
        # initialise() right after this open re-initialises it (running processes that
        # knew its marker wait for that).
        self._adopted_now = not fresh and found is not None and found["id"] == marker["id"]
        return found

    @staticmethod
    def _read_kv(conn: sqlite3.Connection, key: str) -> Any:
        """A small value read on ``conn`` (text that is not JSON reads as ``None``)."""
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        try:
            return json.loads(row[0]) if row else None
        except (TypeError, ValueError):
            return None

    @classmethod
    def _read_epoch(cls, conn: sqlite3.Connection) -> dict[str, Any] | None:
        value = cls._read_kv(conn, EPOCH_KEY)
        return value if isinstance(value, dict) and isinstance(value.get("id"), str) else None

    @classmethod
    def _read_head(cls, conn: sqlite3.Connection) -> int:
        value = cls._read_kv(conn, AUDIT_HEAD_KEY)
        seq = value.get("seq") if isinstance(value, dict) else None
        return seq if isinstance(seq, int) else 0

    def _watch_epoch(self, conn: sqlite3.Connection) -> None:
        self._observe_epoch(self._read_epoch(conn), self._read_head(conn))

    def _check_writable(self) -> None:
        """Refuse a file this process can only read (found now, not at the first trip)."""
        conn = self._writer
        try:
            # No wait: another process holding the write lock shows the file is writable.
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("BEGIN IMMEDIATE")
            # In WAL mode BEGIN IMMEDIATE succeeds on a read-only file (its locks live in
            # the -shm file): only writing a page tells. Rolled back, so nothing is written.
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            conn.execute(f"PRAGMA user_version = {int(version)}")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise StoreUnavailableError(
                    f"{self.describe()} cannot be written by this process: {exc}"
                ) from exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute(f"PRAGMA busy_timeout = {int(self.store_timeout * 1000)}")

    @staticmethod
    def _damage_found(conn: sqlite3.Connection) -> str | None:
        """What is wrong with the tables trading depends on, or None. Cheap: the small
        tables whole (with their indexes) and the audit log's tail, never the whole log.
        A failure that is not damage (a lock, an I/O error) is raised."""
        try:
            for table in ("breakers", "kv", "counters"):
                rows = conn.execute(f"PRAGMA quick_check({table})").fetchall()
                if rows != [("ok",)]:
                    return f"table {table}: {rows[0][0] if rows else 'no answer'}"
            conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return None

    def _signature(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _watch_file(self) -> str | None:
        """The damage found in the main file, re-checked on a fresh connection only when
        the file changed (a checkpoint, or someone writing it): an open connection's page
        cache is only invalidated by SQLite's own commits and would hide the damage."""
        try:
            signature = self._signature()
        except OSError as exc:
            return f"cannot stat the database file: {exc}"
        if signature == self._file_signature:
            return self._damage
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            damage = self._damage_found(conn)
            if damage is None:
                # The file itself changed (perhaps replaced): its marker and head, read
                # on a connection that sees the file as it is now.
                self._watch_epoch(conn)
        except (sqlite3.Error, StoreUnavailableError) as exc:
            # Not damage (a lock, a failed open): check again at the next tick.
            self._file_signature = None
            return f"cannot check the database file: {exc}"
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self._file_signature = signature
        if damage is not None and self._damage is None:
            logger.error("store_file_damaged", extra={"store": self.describe(), "damage": damage})
        self._damage = damage
        return None if damage is None else f"file damaged: {damage}"

    def _max_seq(self) -> int:
        row = self._read("SELECT MAX(change_seq) FROM breakers", ())
        return int(row[0][0] or 0)

    def _close_connections(self) -> None:
        for conn in (self._writer, self._reader, self._poll_conn):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    def _forget_numbers(self) -> None:
        super()._forget_numbers()
        self._seen_seq = 0
        self._data_version = None

    def close(self) -> None:
        super().close()
        self._close_connections()

    # ------------------------------------------------------------------ reads
    def load_snapshot(self, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT state, data FROM breakers WHERE name = ?", (name,))
        if not rows:
            return None
        return self._join(rows[0][0], rows[0][1])

    def load_all_snapshots(self) -> dict[str, dict[str, Any]]:
        rows = self._read("SELECT name, state, data FROM breakers", ())
        return {name: self._join(state, data) for name, state, data in rows}

    def load_all_records(self) -> dict[str, tuple[dict[str, Any], int | None]]:
        """Every record with the seq of the audit entry it names (``audit_seq``)."""
        rows = self._read("SELECT name, state, data, audit_seq FROM breakers", ())
        return {
            name: (self._join(state, data), None if seq is None else int(seq))
            for name, state, data, seq in rows
        }

    @staticmethod
    def _join(state: str, data: str) -> dict[str, Any]:
        snapshot: dict[str, Any] = json.loads(state)
        snapshot["data"] = json.loads(data)
        return snapshot

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            with self._reader_lock:
                return self._reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.describe()}: {exc}") from exc

    def iter_audit(self, start_seq: int = 1) -> Iterator[AuditEntry]:
        seq = max(start_seq, 1) - 1
        while True:
            rows = self._read(
                "SELECT seq, time, operator, event, breaker, payload, prev_hash, hash "
                "FROM audit WHERE seq > ? ORDER BY seq LIMIT 500",
                (seq,),
            )
            if not rows:
                return
            for row in rows:
                yield AuditEntry(*row)
            seq = rows[-1][0]

    def get_value(self, key: str) -> Any:
        rows = self._read("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ writes
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection: committed when the block ends,
        rolled back if it raises; any SQLite failure becomes StoreUnavailableError."""
        conn = self._writer
        started = time.monotonic()
        try:
            # Whatever the caller already waited for the write lock counts against its
            # timeout.
            conn.execute(f"PRAGMA busy_timeout = {max(int(self._remaining() * 1000), 1)}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            waited = time.monotonic() - started
            raise StoreUnavailableError(
                f"{self.describe()}: could not write within {self.store_timeout:g}s "
                f"({exc}; waited {waited:.3f}s)"
            ) from exc

    def write(
        self,
        name: str,
        snapshot: Mapping[str, Any] | None,
        audit: Sequence[AuditRecord],
    ) -> list[AuditEntry]:
        """One transaction: the snapshot (with a new change number, so other processes
        pick it up) and the chained audit entries. Call with the write lock held, or let
        :meth:`save` take it. The record names its last audit entry (``audit_seq``; kept
        when this write adds none for it)."""
        self._guard_lost()
        with self._transaction() as conn:
            added = self._append_audit_rows(conn, audit)
            seq = 0
            if snapshot is not None:
                (seq,) = conn.execute(
                    "UPDATE counters SET value = value + 1 WHERE name = 'change_seq' "
                    "RETURNING value"
                ).fetchone()
                state, data = _split(snapshot)
                conn.execute(
                    "INSERT INTO breakers (name, state, data, change_seq, origin, audit_seq) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                    "state = excluded.state, data = excluded.data, "
                    "change_seq = excluded.change_seq, origin = excluded.origin, "
                    "audit_seq = COALESCE(excluded.audit_seq, breakers.audit_seq)",
                    (name, state, data, seq, self._origin, last_state_seq(added, name)),
                )
        if snapshot is not None:
            self._own_seq[name] = int(seq)
        return added

    def _append_audit_rows(
        self, conn: sqlite3.Connection, audit: Sequence[AuditRecord]
    ) -> list[AuditEntry]:
        if not audit:
            return []
        mode_row = conn.execute("SELECT value FROM kv WHERE key = ?", (AUDIT_MODE_KEY,)).fetchone()
        new_mode = self._audit_mode_for_append(json.loads(mode_row[0]) if mode_row else None)
        if new_mode is not None:
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?)",
                (AUDIT_MODE_KEY, canonical_json(new_mode)),
            )
        row = conn.execute(
            "SELECT seq, time, operator, event, breaker, payload, prev_hash, hash "
            "FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        previous = AuditEntry(*row) if row else None
        added = chain_entries(previous, audit, self._audit_key)
        if added:
            head = canonical_json({"seq": added[-1].seq, "hash": added[-1].hash})
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (AUDIT_HEAD_KEY, head),
            )
        for entry in added:
            conn.execute(
                "INSERT INTO audit (seq, time, operator, event, breaker, payload, prev_hash, "
                "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.seq,
                    entry.time,
                    entry.operator,
                    entry.event,
                    entry.breaker,
                    entry.payload,
                    entry.prev_hash,
                    entry.hash,
                ),
            )
        return added

    def set_value(
        self,
        key: str,
        value: Any,
        *,
        audit: tuple[str, str | None, str | None, dict[str, Any]] | None = None,
    ) -> None:
        """Save ``value`` (JSON) under ``key`` with an optional audit entry, in one
        transaction."""
        self._guard_lost()
        with self._locked(), self._transaction() as conn:
            self._set_value_rows(conn, key, value, audit)

    def update_value(self, key: str, update: ValueUpdate) -> Any:
        """Read, update and write ``key`` in one ``BEGIN IMMEDIATE`` transaction: atomic
        against every process that uses the file."""
        self._guard_lost()
        with self._locked(), self._transaction() as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            new, audit = update(json.loads(row[0]) if row else None)
            self._set_value_rows(conn, key, new, audit)
            return new

    def _set_value_rows(
        self, conn: sqlite3.Connection, key: str, value: Any, audit: ValueAudit | None
    ) -> None:
        from ..audit import to_jsonable

        records: list[AuditRecord] = []
        if audit is not None:
            event, breaker, operator, payload = audit
            records.append((event, breaker, operator, to_jsonable(payload), datetime.now(UTC)))
        conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, canonical_json(value)),
        )
        self._append_audit_rows(conn, records)

    def _write_soft(self, name: str, snapshot: Mapping[str, Any]) -> None:
        self._guard_lost()
        state, data = _split(snapshot)
        with self._transaction() as conn:
            # A new row starts at change_seq 0: progress never propagates as a change.
            conn.execute(
                "INSERT INTO breakers (name, state, data, change_seq, origin) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
                (name, state, data, self._origin),
            )

    # ------------------------------------------------------------------ watching
    def _tick(self) -> None:
        self._wake.wait(self.tick_seconds)
        self._wake.clear()
        try:
            problem = self._watch_file()
            if problem is not None:
                raise StoreUnavailableError(problem)
            conn = self._poll_conn
            if conn is None:
                conn = self._poll_conn = self._connect()
            (version,) = conn.execute("PRAGMA data_version").fetchone()
            if version != self._data_version:
                self._data_version = version
                self._watch_epoch(conn)
                rows = conn.execute(
                    "SELECT name, state, change_seq, origin FROM breakers "
                    "WHERE change_seq > ? ORDER BY change_seq",
                    (self._seen_seq,),
                ).fetchall()
                for name, state, seq, origin in rows:
                    self._seen_seq = max(self._seen_seq, int(seq))
                    if origin != self._origin:
                        self._apply_remote(name, int(seq), json.loads(state))
        except (sqlite3.Error, StoreUnavailableError) as exc:
            conn, self._poll_conn = self._poll_conn, None
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._mark_down(str(exc))
            # Back up: look at every row again (changes may have been missed).
            self._seen_seq = 0
            self._data_version = None
            return
        self._mark_up()
