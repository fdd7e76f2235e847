"""RedisStore: state, audit log and order-rate windows shared by many processes.

* Breaker state: one hash per breaker (``state``, ``data``, ``seq``, ``origin``). A durable
  write is one Lua script that appends the chained audit entries, saves the snapshot, bumps
  the change number and publishes the change — atomic, one round trip.
* Propagation: a background thread listens on the namespace's pub/sub channel and applies
  other processes' changes with ``adopt_remote`` (the one adoption rule,
  breakers/adoption.py), well within 50 ms. After a reconnect it resyncs every breaker
  from the hashes, because messages sent while it was disconnected are lost.
* Order-rate windows: a sorted set per breaker, checked and recorded by one Lua script on
  Redis's own clock (``TIME``), so every process counts the same orders on one clock.
  ``RateWindow.count()`` answers from the last script reply (no I/O).
* Check windows (duplicates, message and execution throttles) and the one-round-trip
  admission through every window of an order: ``redis_windows.py``.
* Fail-closed: every command waits at most ``store_timeout`` (no retries); a failure marks
  the store unavailable, which refuses trading until the thread has reconnected and
  resynced. ``fail_open=True`` keeps trading on local state and local order windows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..audit import (
    AUDIT_MODE_KEY,
    GENESIS_HASH,
    AuditEntry,
    audit_mode,
    canonical_json,
    chain_entries,
    entry_fields,
    entry_from_fields,
    last_state_seq,
    to_jsonable,
)
from ..errors import ConfigError, StoreUnavailableError
from ..redact import redact_url
from ..values import to_flag
from .background import BackgroundStore
from .base import EPOCH_KEY, AuditRecord, ValueUpdate, new_epoch
from .redis_windows import RedisKeyedWindow, RedisSharedWindows

if TYPE_CHECKING:
    from ..breakers.base import BaseCircuitBreaker
    from ..breakers.order_rate import RateWindow
    from ..clock import Clock

__all__ = ["RedisKeyedWindow", "RedisRateWindow", "RedisStore"]

logger = logging.getLogger("haltgate.store.redis")

# Longer than any update holds it (a read, a scrypt-free computation, one write); a holder
# that died frees it by expiry.
_MUTEX_MS = 5_000
_UNLOCK_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)

# Seconds between two PINGs on the subscribed connection (the hung-server watch).
_PING_EVERY = 0.025

# KEYS: breaker hash, change counter, audit list, audit head, small-value key
# ARGV: expected head "seq:hash", name, state JSON ("" = no snapshot), data JSON, origin,
#       channel, small value JSON ("" = none), the seq of the audit entry the record names
#       ("" = keep the one it names), then the audit entries as JSON.
_WRITE_SCRIPT = """
local head = redis.call('GET', KEYS[4]) or ('0:' .. string.rep('0', 64))
if head ~= ARGV[1] then
  return {0, head}
end
local n = #ARGV
for i = 9, n do
  redis.call('RPUSH', KEYS[3], ARGV[i])
end
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[5], ARGV[7])
end
if n >= 9 then
  local last = cjson.decode(ARGV[n])
  redis.call('SET', KEYS[4], tostring(last['seq']) .. ':' .. last['hash'])
  head = redis.call('GET', KEYS[4])
end
local seq = 0
if ARGV[3] ~= '' then
  seq = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], 'state', ARGV[3], 'data', ARGV[4], 'seq', seq, 'origin', ARGV[5])
  if ARGV[8] ~= '' then
    redis.call('HSET', KEYS[1], 'audit_seq', ARGV[8])
  end
  redis.call('PUBLISH', ARGV[6], cjson.encode({name = ARGV[2], seq = seq,
    origin = ARGV[5], state = ARGV[3]}))
end
return {1, head, seq}
"""

# Progress only: the data field (and the state if the breaker has none yet; seq 0 so it
# never propagates as a change).
_SOFT_SCRIPT = """
redis.call('HSET', KEYS[1], 'data', ARGV[2])
if redis.call('HSETNX', KEYS[1], 'state', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'seq', 0, 'origin', ARGV[3])
end
return 1
"""

# KEYS: window sorted set
# ARGV: limit (-1 = record unconditionally), window in microseconds, the breaker's limit,
#       a member suffix unique to this call (process origin + local sequence,
#       so no counter key is needed). Half-open window: an order at t counts while
#       now - window < t <= now. The key expires one second after its newest order leaves
#       the window, so it only needs a new expiry when an order is added.
_RATE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[1])
local member = ''
local admitted = 0
if limit < 0 or count < limit then
  member = string.format('%d-', now) .. ARGV[4]
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
  count = count + 1
  admitted = 1
end
-- When the window is full, the time its oldest blocking order leaves (the breaker's
-- limit-th newest order): all a process needs to answer "is it full?" without asking.
local limit_of_breaker = tonumber(ARGV[3])
local frees = ''
if count >= limit_of_breaker then
  local entry = redis.call('ZRANGE', KEYS[1], -limit_of_breaker, -limit_of_breaker, 'WITHSCORES')
  frees = entry[2]
end
return {admitted, count, string.format('%d', now), member, frees}
"""


def _head_seq(raw: str | None) -> int:
    """The seq of a ``seq:hash`` head (0 when there is none)."""
    seq_text = str(raw or "").partition(":")[0]
    return int(seq_text) if seq_text.isdigit() else 0


def _int_or_none(raw: Any) -> int | None:
    text = str(raw) if raw is not None else ""
    return int(text) if text.isdigit() else None


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("RedisStore needs redis-py: pip install 'haltgate[redis]'") from None
    return redis


def check_namespace(namespace: Any) -> str:
    """``namespace`` if it can prefix Redis keys (a non-empty string without ``:``, which
    separates the parts of a key); else a :class:`ConfigError` naming ``store.namespace``."""
    if not isinstance(namespace, str) or not namespace or ":" in namespace:
        raise ConfigError(
            "store.namespace",
            f"{namespace!r}: must be a non-empty string without ':' (it prefixes every key)",
        )
    return namespace


class RedisStore(RedisSharedWindows, BackgroundStore):
    """Breaker state, counters, the audit chain and order windows in Redis.

    ``url`` is a redis URL (``redis://host:6379/0``); ``namespace`` prefixes every key and
    the pub/sub channel, so several independent systems can share one server. Every call
    waits at most ``store_timeout`` seconds for Redis (default 0.25); while Redis cannot
    be reached trading is refused (fail-closed) unless ``fail_open=True``.

    A namespace is set up by writing its epoch marker: ``create=True`` does it for a
    namespace that holds nothing yet (tests, the demo), ``haltgate store init URL`` for
    any. A namespace without its marker is never taken for a new one: the store refuses
    trading with ``store lost its data`` (every process using it), and so it does when the
    marker disappears or changes, or the audit head goes back, while it runs.
    """

    keeps_epoch = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "haltgate",
        store_timeout: float = 0.25,
        fail_open: bool = False,
        audit_key: bytes | None = None,
        create: bool = False,
    ) -> None:
        super().__init__(store_timeout=store_timeout, fail_open=fail_open, audit_key=audit_key)
        redis = _redis_module()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.namespace = check_namespace(namespace)
        self._redis_errors: tuple[type[BaseException], ...] = (
            redis.RedisError,
            OSError,
            ValueError,
        )
        options: dict[str, Any] = {
            # A little below store_timeout so the whole call, parsing included, stays
            # within it even when the server hangs.
            "socket_timeout": self.store_timeout * 0.8,
            "socket_connect_timeout": self.store_timeout * 0.8,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False,
            "health_check_interval": 0,
            "decode_responses": True,
            # RESP2: a PING on the subscribed connection answers with a "pong" message
            # (the listener's health check relies on it).
            "protocol": 2,
        }
        self._client = redis.Redis.from_url(url, **options)
        # The watcher's poll of the epoch marker and head has its own connection, so the
        # order path's connection carries nothing but orders.
        self._watch_client = redis.Redis.from_url(url, **options)
        self._origin = self.origin
        # The audit chain's mode was checked against this writer's (see _write).
        self._mode_recorded = False
        self._member_seq = itertools.count(1)
        self._channel = f"{namespace}:changes"
        self._write_script = self._client.register_script(_WRITE_SCRIPT)
        self._soft_script = self._client.register_script(_SOFT_SCRIPT)
        self._rate_script = self._client.register_script(_RATE_SCRIPT)
        self._register_window_scripts()
        self._audit_head = f"0:{GENESIS_HASH}"
        self._pubsub: Any = None
        self._last_ping = 0.0
        # When the oldest PING still without a reply was sent (None: none outstanding).
        self._waiting_since: float | None = None
        # A PING unanswered for as long as a call's socket timeout means a call would have
        # failed: the store is down. Capped so a process that only calls can_trade()
        # notices a hung server within 0.3 s (SPEC §6): at most _PING_EVERY until the
        # first unanswered PING, this allowance, one tick.
        self._pong_allowance = min(max(self.store_timeout * 0.8, 0.1), 0.2)
        self._windows: dict[str, RedisRateWindow] = {}
        self._create = to_flag(create, "create")
        self._expects_marker = True
        # The marker and head as last read by the watcher (parsed only when they change).
        self._seen_epoch: tuple[str | None, str | None] = ("", "")
        self._synced_once = False
        try:
            self._client.ping()
        except self._redis_errors as exc:
            if not fail_open:
                raise StoreUnavailableError(f"cannot reach {self.describe()}: {exc}") from exc
            self._down_reason = f"store {self.describe()} unavailable: {exc}"
        else:
            try:
                self._sync_epoch()
            except StoreUnavailableError:
                if not fail_open:
                    raise
                # Down (marked by _call): the watcher reads the marker when it reconnects.
        self._start()

    def describe(self) -> str:
        return f"{redact_url(self.url)} (namespace {self.namespace})"

    # ------------------------------------------------------------------ epoch
    def _sync_epoch(self) -> None:
        """Read the marker (creating it, with ``create=True``, in a namespace that holds
        nothing yet) and the head, and apply the one epoch rule."""
        marker_key = self._key("kv", EPOCH_KEY)
        raw = self._call("read epoch", self._client.get, marker_key)
        if raw is None and self._create and self._epoch is None:
            if self._namespace_empty():
                fresh = canonical_json(new_epoch("created"))
                if self._call("create epoch", self._client.set, marker_key, fresh, nx=True):
                    logger.info("store_created", extra={"store": self.describe()})
            # Another process may have set it up meanwhile (its marker is then all there is).
            raw = self._call("read epoch", self._client.get, marker_key)
            if raw is None:
                logger.error("store_not_created", extra={"store": self.describe()})
                self._lose(
                    "has no epoch marker but holds haltgate data (a namespace of an earlier "
                    "version, or one that lost its marker): create=True sets up only an "
                    "empty namespace"
                )
        head = self._call("read audit head", self._client.get, self._key("audit", "head"))
        self._observe_raw(raw, head)

    def _observe_raw(self, raw: str | None, head: str | None) -> None:
        if (raw, head) == self._seen_epoch and self._lost_reason is None:
            return
        self._seen_epoch = (raw, head)
        try:
            marker = json.loads(raw) if raw else None
        except ValueError:
            marker = None
        self._observe_epoch(marker, _head_seq(head))

    def _namespace_empty(self) -> bool:
        keys = self._call(
            "scan", lambda: next(iter(self._client.scan_iter(self._key("*"), count=200)), None)
        )
        return keys is None

    def _forget_numbers(self) -> None:
        super()._forget_numbers()
        self._mode_recorded = False

    def _key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one Redis command; an outage marks the store down and raises
        :class:`StoreUnavailableError`."""
        try:
            return fn(*args, **kwargs)
        except self._redis_errors as exc:
            self._mark_down(f"{what}: {type(exc).__name__}: {exc}")
            raise StoreUnavailableError(
                f"store {self.describe()} unavailable ({what}: {exc})"
            ) from exc

    # ------------------------------------------------------------------ reads
    def load_snapshot(self, name: str) -> dict[str, Any] | None:
        fields = self._call("load", self._client.hgetall, self._key("breaker", name))
        return self._snapshot(fields)

    @staticmethod
    def _snapshot(fields: Mapping[str, str]) -> dict[str, Any] | None:
        if not fields or "state" not in fields:
            return None
        snapshot: dict[str, Any] = json.loads(fields["state"])
        snapshot["data"] = json.loads(fields.get("data") or "{}")
        return snapshot

    def load_all_snapshots(self) -> dict[str, dict[str, Any]]:
        return {
            name: snapshot
            for name, (_seq, snapshot) in self._load_all_with_seq().items()
            if snapshot is not None
        }

    def load_all_records(self) -> dict[str, tuple[dict[str, Any], int | None]]:
        """Every record with the seq of the audit entry it names (its ``audit_seq``)."""
        return {
            name: (snapshot, audit_seq)
            for name, (_seq, snapshot, audit_seq) in self._load_all_fields().items()
            if snapshot is not None
        }

    def _load_all_with_seq(self) -> dict[str, tuple[int, dict[str, Any] | None]]:
        return {
            name: (seq, snapshot)
            for name, (seq, snapshot, _named) in self._load_all_fields().items()
        }

    def _load_all_fields(self) -> dict[str, tuple[int, dict[str, Any] | None, int | None]]:
        prefix = self._key("breaker", "")
        keys = sorted(self._call("scan", lambda: list(self._client.scan_iter(prefix + "*"))))
        if not keys:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        rows = self._call("load", pipe.execute)
        return {
            key[len(prefix) :]: (
                int(fields.get("seq") or 0),
                self._snapshot(fields),
                _int_or_none(fields.get("audit_seq")),
            )
            for key, fields in zip(keys, rows, strict=True)
        }

    def iter_audit(self, start_seq: int = 1) -> Iterator[AuditEntry]:
        key = self._key("audit")
        index = max(start_seq, 1) - 1
        while True:
            chunk = self._call("audit", self._client.lrange, key, index, index + 499)
            if not chunk:
                return
            for raw in chunk:
                yield entry_from_fields(json.loads(raw))
            index += len(chunk)

    def get_value(self, key: str) -> Any:
        raw = self._call("get", self._client.get, self._key("kv", key))
        return None if raw is None else json.loads(raw)

    def store_time(self) -> float:
        """Redis's own clock (``TIME``): one clock for the registry of every host."""
        seconds, micros = self._call("time", self._client.time)
        return float(seconds) + float(micros) / 1_000_000

    def _registry_fields(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for origin, text in self._call(
            "read registry", self._client.hgetall, self._key("processes")
        ).items():
            try:
                found[origin] = json.loads(text)
            except ValueError:
                found[origin] = None  # malformed: dropped at the next prune
        return found

    def registry_entries(self) -> dict[str, dict[str, Any]]:
        """The registry's entries: one field per process in the hash
        ``<namespace>:processes``."""
        from .registry import valid_entries

        return valid_entries(self._registry_fields())

    #: Heartbeats written by this store (every 60th also prunes).
    _registry_writes = 0

    def registry_write(self, origin: str, entry: dict[str, Any] | None, now: float) -> None:
        """One ``HSET`` (or ``HDEL``) of this process's own field: no lock shared with other
        processes, so a heartbeat never waits on another process (it shares the thread that
        adopts their changes). Pruned on registration, withdrawal and every 60 writes."""
        from .registry import pruned, valid_entries

        key = self._key("processes")
        if entry is None:
            self._call("withdraw", self._client.hdel, key, origin)
        else:
            self._call("heartbeat", self._client.hset, key, origin, canonical_json(entry))
        self._registry_writes += 1
        if entry is None or self._registry_writes % 60 == 1:
            fields = self._registry_fields()
            drop = set(fields) - set(pruned(valid_entries(fields), now))
            if drop:
                self._call("prune registry", self._client.hdel, key, *sorted(drop))

    # ------------------------------------------------------------------ writes
    def write(
        self,
        name: str,
        snapshot: Mapping[str, Any] | None,
        audit: Sequence[AuditRecord],
    ) -> list[AuditEntry]:
        """One Lua script: append the chained audit entries (if the chain head is the one
        this process last saw; else re-chain on the new head and retry), save the snapshot
        (naming its last audit entry), bump the change number and publish it.

        An operator's reset that leaves the breaker NORMAL first empties the shared check
        windows named after it (the execution throttle's, see :meth:`clear_check_windows`)."""
        self._guard_lost()
        if (
            snapshot is not None
            and snapshot.get("change") == "reset"
            and snapshot.get("state") == "NORMAL"
        ):
            self.clear_check_windows(name)
        return self._write(name, snapshot, audit)

    def _write(
        self,
        name: str,
        snapshot: Mapping[str, Any] | None,
        audit: Sequence[AuditRecord],
        value: tuple[str, str] | None = None,
    ) -> list[AuditEntry]:
        if audit and not self._mode_recorded:
            # The chain's mode is recorded with (just before) its first entry; SET NX makes
            # the first writer's mode the chain's, and a writer of the other mode stops here.
            mode_key = self._key("kv", AUDIT_MODE_KEY)
            mine = canonical_json(audit_mode(self._audit_key))
            self._call("record audit mode", self._client.set, mode_key, mine, nx=True)
            recorded = self._call("read audit mode", self._client.get, mode_key)
            self._audit_mode_for_append(None if recorded is None else json.loads(recorded))
            self._mode_recorded = True
        if snapshot is not None:
            state = canonical_json({k: v for k, v in snapshot.items() if k != "data"})
            data = canonical_json(snapshot.get("data") or {})
        else:
            state = data = ""
        deadline = time.monotonic() + self.store_timeout
        keys = [
            self._key("breaker", name),
            self._key("seq"),
            self._key("audit"),
            self._key("audit", "head"),
            self._key("kv", value[0]) if value else self._key("kv", ""),
        ]
        while True:
            entries = self._chain(audit)
            named = last_state_seq(entries, name) if snapshot is not None else None
            args = [
                self._audit_head,
                name,
                state,
                data,
                self._origin,
                self._channel,
                value[1] if value else "",
                "" if named is None else str(named),
                *(canonical_json(entry_fields(e)) for e in entries),
            ]
            reply = self._call("write", self._write_script, keys=keys, args=args)
            self._audit_head = str(reply[1])
            if int(reply[0]) == 1:
                if snapshot is not None:
                    self._own_seq[name] = int(reply[2])
                return entries
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"store {self.describe()}: audit chain contended for "
                    f"more than {self.store_timeout:g}s"
                )

    def _chain(self, audit: Sequence[AuditRecord]) -> list[AuditEntry]:
        seq_text, _, head_hash = self._audit_head.partition(":")
        previous: AuditEntry | None = None
        if int(seq_text) > 0:
            previous = AuditEntry(int(seq_text), "", None, "", None, "{}", "", head_hash)
        return chain_entries(previous, audit, self._audit_key)

    def set_value(
        self,
        key: str,
        value: Any,
        *,
        audit: tuple[str, str | None, str | None, dict[str, Any]] | None = None,
    ) -> None:
        """Save ``value`` (JSON) under ``key``; with ``audit``, the value and its audit
        entry are written by one script (atomically)."""
        self._guard_lost()
        text = canonical_json(value)
        if audit is None:
            self._call("set", self._client.set, self._key("kv", key), text)
            return
        event, breaker, operator, payload = audit
        record: AuditRecord = (event, breaker, operator, to_jsonable(payload), datetime.now(UTC))
        with self._locked():
            self._write(breaker or "", None, [record], (key, text))

    def load_audit_head(self) -> tuple[int, str] | None:
        """The head the write script keeps (``<namespace>:audit:head``, ``seq:hash``)."""
        raw = self._call("read audit head", self._client.get, self._key("audit", "head"))
        if not raw:
            return None
        seq_text, _, head_hash = str(raw).partition(":")
        try:
            return int(seq_text), head_hash
        except ValueError:
            return None

    def update_value(self, key: str, update: ValueUpdate) -> Any:
        """Read, update and write ``key`` atomically against every process of the
        namespace: under a short Redis mutex (``SET NX PX``, released only by its holder),
        waited for at most ``store_timeout``."""
        self._guard_lost()
        mutex = self._key("kv", key, "mutex")
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.store_timeout
        while not self._call("lock", self._client.set, mutex, token, nx=True, px=_MUTEX_MS):
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"store {self.describe()}: {key!r} busy for more than {self.store_timeout:g}s"
                )
            time.sleep(0.002)
        try:
            new, audit = update(self.get_value(key))
            self.set_value(key, new, audit=audit)
            return new
        finally:
            self._call("unlock", self._client.eval, _UNLOCK_SCRIPT, 1, mutex, token)

    def _write_soft(self, name: str, snapshot: Mapping[str, Any]) -> None:
        self._guard_lost()
        state = canonical_json({k: v for k, v in snapshot.items() if k != "data"})
        data = canonical_json(snapshot.get("data") or {})
        self._call(
            "write progress",
            self._soft_script,
            keys=[self._key("breaker", name)],
            args=[state, data, self._origin],
        )

    # ------------------------------------------------------------------ order windows
    def rate_window(self, breaker: BaseCircuitBreaker) -> RateWindow | None:
        """A window in Redis shared by every process using this namespace (order-rate
        breakers only)."""
        from ..breakers.order_rate import OrderRateCircuitBreaker

        if not isinstance(breaker, OrderRateCircuitBreaker):
            return None
        window = RedisRateWindow(self, breaker)
        self._windows[breaker.name] = window
        return window

    def _rate(self, name: str, limit: int, window_seconds: float, keep: int) -> list[Any]:
        reply: list[Any] = self._call(
            "record order",
            self._rate_script,
            keys=[self._key("rate", name)],
            args=[
                limit,
                round(window_seconds * 1_000_000),
                max(keep, 1),
                f"{self._origin}-{next(self._member_seq)}",
            ],
        )
        return reply

    def _cancel(self, name: str, member: str) -> None:
        self._call("cancel order", self._client.zrem, self._key("rate", name), member)

    # ------------------------------------------------------------------ watching
    def _tick(self) -> None:
        if self._pubsub is not None and self._down_reason is not None:
            # A command failed (a timeout on any thread) while the subscription looked
            # healthy: reconnect and resync, which is what ends the outage (else the store
            # would stay fail-closed for good).
            self._drop_pubsub()
        if self._pubsub is None:
            self._connect_pubsub()
            return
        try:
            now = time.monotonic()
            if now - self._last_ping >= _PING_EVERY:
                self._pubsub.ping()
                self._last_ping = now
                if self._waiting_since is None:
                    self._waiting_since = now
            message = self._pubsub.get_message(timeout=self.tick_seconds)
            while message is not None:
                self._on_message(message)
                message = self._pubsub.get_message(timeout=0)
            # Counted from the oldest unanswered PING, not from the last reply: if this
            # thread was starved (a busy trading thread, a loaded host) no PING was sent
            # meanwhile, so only a silent server can run this out.
            waiting = self._waiting_since
            if waiting is not None and time.monotonic() - waiting > self._pong_allowance:
                raise TimeoutError(
                    f"no reply to PING from redis within {self._pong_allowance * 1000:.0f} ms"
                )
            # FLUSHDB (or another epoch) does not drop the connection: look every poll.
            raw, head = self._watch_client.mget(
                self._key("kv", EPOCH_KEY), self._key("audit", "head")
            )
            self._observe_raw(raw, head)
        except self._redis_errors as exc:
            self._drop_pubsub()
            self._mark_down(f"{type(exc).__name__}: {exc}")

    def _heartbeat_safe(self) -> bool:
        # Only right after the server answered: a heartbeat blocked on a hung server would
        # hold up the PING watch (SPEC §6: a hung Redis is noticed within 0.3 s).
        return (
            super()._heartbeat_safe() and self._pubsub is not None and self._waiting_since is None
        )

    def _on_message(self, message: Mapping[str, Any]) -> None:
        # Any reply on the subscribed connection shows the server is alive.
        self._waiting_since = None
        if message.get("type") == "message":
            change = json.loads(message["data"])
            if change.get("origin") != self._origin:
                self._apply_remote(
                    str(change["name"]), int(change["seq"]), json.loads(change["state"])
                )

    def _connect_pubsub(self) -> None:
        pubsub = self._client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            # Subscribed before reading, so no change falls between the resync and the
            # first message.
            self._resync()
        except self._redis_errors as exc:
            with contextlib.suppress(Exception):
                pubsub.close()
            self._mark_down(f"{type(exc).__name__}: {exc}")
            self._stopping.wait(0.05)
            return
        except StoreUnavailableError:
            with contextlib.suppress(Exception):
                pubsub.close()
            self._stopping.wait(0.05)
            return
        self._pubsub = pubsub
        self._last_ping = time.monotonic()
        self._waiting_since = None
        self._mark_up()

    def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _resync(self) -> None:
        """Apply every breaker's stored state (after a (re)connect: messages sent while
        this process was disconnected are lost)."""
        # Load the scripts now (a restarted server forgot them), so the first order after
        # a (re)connect is still one round trip.
        for script in (self._write_script, self._soft_script, self._rate_script):
            self._client.script_load(script.script)
        self._load_window_scripts()
        head = self._client.get(self._key("audit", "head"))
        self._audit_head = str(head) if head else f"0:{GENESIS_HASH}"
        # A server that restarted empty has no marker: the store lost its data, and this
        # process holds its trips and halts until an operator re-initialises it.
        self._sync_epoch()
        # A server that lost its data restarts its change counter: forget which numbers
        # this process wrote (the stored state is the latest anyway; a write racing this
        # resync records its new number before the guard compares).
        self._own_seq.clear()
        stored = self._load_all_with_seq()
        for name, (seq, snapshot) in stored.items():
            if snapshot is not None and seq > 0:
                self._apply_remote(name, seq, snapshot)
        # A record that disappeared (the marker did not) must not make this process forget
        # a trip or halt it still holds: write those back, audited.
        # (Not at the first sync: this process's state came from the store at attach, and
        # a trip made since is being written by its own save.)
        if self._lost_reason is None and self._synced_once:
            missing = {name for name in self._attached if name not in stored}
            if missing:
                self._reassert_held("its record was missing from the store", only=missing)
        self._synced_once = True

    def close(self) -> None:
        super().close()
        self._drop_pubsub()
        with contextlib.suppress(Exception):
            self._client.close()
        with contextlib.suppress(Exception):
            self._watch_client.close()


class RedisRateWindow:
    """A :class:`~haltgate.breakers.order_rate.RateWindow` kept in Redis (see the module
    docstring). Falls back to a local window while Redis is down with ``fail_open``."""

    def __init__(self, store: RedisStore, breaker: BaseCircuitBreaker) -> None:
        from ..breakers.order_rate import LocalRateWindow

        self._store = store
        self._name = breaker.name
        self._window = float(getattr(breaker, "window_seconds", 60.0))
        self._limit = int(getattr(breaker, "max_orders_per_minute", 1))
        self._clock: Clock = breaker.clock
        self._local = LocalRateWindow(self._window, self._clock, compact_above=self._limit)
        # From the last script reply: the count, when a full window frees a slot (Redis
        # seconds, None when not full), and Redis time minus this host's real monotonic
        # clock (the window runs on Redis time, not on the breaker's clock, which may be a
        # ManualClock).
        self._count = 0
        self._frees: float | None = None
        self._offset = 0.0
        # The answer of the store's one-round-trip admission of every window
        # (redis_windows.py) for this window, returned by the next reserve() without I/O:
        # the reservation's token, "" when this window refused, None when there is none.
        self._pending: str | None = None

    def _redis_now(self) -> float:
        return time.monotonic() + self._offset

    def _run(self, limit: int) -> list[Any] | None:
        store = self._store
        if store._lost_reason is not None:
            # Nothing is written to a store that lost its data (not even an order).
            raise StoreUnavailableError(store._lost_reason)
        if store._down_reason is not None:
            if store.fail_open:
                return None
            raise StoreUnavailableError(store._down_reason)
        try:
            reply = store._rate(self._name, limit, self._window, self._limit)
        except StoreUnavailableError:
            if store.fail_open:
                return None
            raise
        self._adopt_reply(int(reply[2]), int(reply[1]), reply[4])
        return reply

    def _adopt_reply(self, now_us: int, count: int, frees: Any) -> None:
        """Keep what a script said of this window: Redis time (µs), the count, and the
        score of the limit-th newest order when full (``""`` otherwise)."""
        self._offset = now_us / 1_000_000 - time.monotonic()
        self._count = count
        self._frees = int(float(frees)) / 1_000_000 + self._window if frees else None

    def count(self) -> int:
        """Orders in the window, from the last reply (no I/O)."""
        if self._store._down_reason is not None and self._store.fail_open:
            return self._local.count()
        frees = self._frees
        if frees is not None and self._redis_now() >= frees:
            # The blocking order has left: at most limit - 1 remain (an upper bound; the
            # next reply has the exact count, including other processes' orders).
            return min(self._count, self._limit - 1)
        return self._count

    def record(self) -> int:
        """Record one order unconditionally (one round trip)."""
        reply = self._run(-1)
        if reply is None:
            return self._local.record()
        return int(reply[1])

    def reserve(self, limit: int) -> object | None:
        """Admit and record one order if fewer than ``limit`` are in the window (one
        round trip, atomic across processes; none when the store's admission of every
        window already made it)."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending or None
        reply = self._run(limit)
        if reply is None:
            token = self._local.reserve(limit)
            return None if token is None else ("local", token)
        return str(reply[3]) if int(reply[0]) == 1 else None

    def forget_pending(self) -> None:
        """Drop a token of the one-round-trip admission that no breaker took."""
        self._pending = None

    def cancel(self, token: object) -> None:
        """Undo a reservation."""
        if isinstance(token, tuple):
            self._local.cancel(token[1])
            return
        if isinstance(token, str):
            self._store._cancel(self._name, token)
            self._count = max(self._count - 1, 0)
            if self._count < self._limit:
                self._frees = None

    def frees_at(self, limit: int) -> float | None:
        """Time on the breaker's clock when one more order fits (from the last reply)."""
        if self._store._down_reason is not None and self._store.fail_open:
            return self._local.frees_at(limit)
        if self.count() < limit or self._frees is None:
            return None
        wait = self._frees - self._redis_now()
        return self._clock.monotonic() + max(wait, 0.0)
