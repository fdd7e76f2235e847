"""Shared order windows in Redis: the checks' windows and the one-round-trip admission.

With :class:`~haltgate.store.redis.RedisStore` the windows of ``DuplicateOrder``,
``MessageThrottle`` and ``ExecutionThrottle`` (SPEC §10) are sorted sets in Redis, shared
by every process of the namespace, counted on Redis's own clock (``TIME``). An admitted
order reserves its slot in every window it touches, the order-rate breakers' included, in
ONE script call (``RedisSharedWindows.reserve_windows``, used by
``manager/windows.admit_to_windows``): the script first counts every window, and only if
none is full records the order in all of them. So a refused order takes no slot anywhere
(nothing to give back), and two processes racing for the last slot cannot both get it.

Key layout (under the store's namespace; every key expires one second after its newest
entry leaves its window, so memory stays bounded by what happened within a window):

* ``NS:window:JSON`` — a check window's sorted set; ``JSON`` is the compact JSON array of
  the check's name and the order's key as the check gives it (the side as a bool, true for
  a buy; Decimals normalised): ``["duplicate_order","SPY",true,"100","101.5"]``,
  ``["execution_throttle","SPY",true]``, ``["message_throttle",0]``. JSON escapes every
  quote and bracket, so no symbol can forge another key or another check's window.
* ``NS:window-index:JSON`` — for a check whose breaker an operator resets (the execution
  throttle), the set of its window keys (``JSON`` is the JSON string of the check's name);
  an operator's reset deletes them all (``RedisSharedWindows.clear_check_windows``).
* ``NS:rate:NAME`` — an order-rate breaker's window (``redis.py``), counted by the same
  script when an admission involves check windows or several rate breakers.

Members are ``<redis µs>-<process origin>-<local sequence>``: unique per call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Sequence
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..errors import StoreUnavailableError

if TYPE_CHECKING:
    from ..checks.base import OrderCheck
    from .redis import RedisRateWindow

__all__ = ["RedisKeyedWindow", "RedisSharedWindows", "encode_window_key"]

logger = logging.getLogger("haltgate.store.redis")

# KEYS: the windows' sorted sets (check windows first, then order-rate windows), then the
#       index sets of the windows an operator's reset empties.
# ARGV[1]: a member suffix unique to this call; then four per window: its limit (-1:
#       record unconditionally), its length in microseconds, keep (a rate breaker's limit:
#       also say when its full window frees a slot; 0: not needed), the position in KEYS
#       of its index set (0: none).
# Every window is counted first; the order is recorded in all of them only if none is
# full. Half-open windows: an entry at t counts while now - window < t <= now.
# Reply: the first full window (1-based; 0: admitted), Redis time (µs), the member, then
# per window its count and, for a full rate window, the score of its keep-th newest entry.
_ADMIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = (#ARGV - 1) / 4
local counts = {}
local refused = 0
for i = 1, n do
  local b = 2 + (i - 1) * 4
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - tonumber(ARGV[b + 1]))
  local count = redis.call('ZCARD', KEYS[i])
  counts[i] = count
  local limit = tonumber(ARGV[b])
  if refused == 0 and limit >= 0 and count >= limit then
    refused = i
  end
end
local member = ''
if refused == 0 then
  member = string.format('%d-', now) .. ARGV[1]
  for i = 1, n do
    local b = 2 + (i - 1) * 4
    local ttl = math.floor(tonumber(ARGV[b + 1]) / 1000) + 1000
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], ttl)
    counts[i] = counts[i] + 1
    local index = tonumber(ARGV[b + 3])
    if index > 0 then
      redis.call('SADD', KEYS[index], KEYS[i])
      redis.call('PEXPIRE', KEYS[index], ttl)
    end
  end
end
local reply = {refused, string.format('%d', now), member}
for i = 1, n do
  local keep = tonumber(ARGV[2 + (i - 1) * 4 + 2])
  local frees = ''
  if keep > 0 and counts[i] >= keep then
    local entry = redis.call('ZRANGE', KEYS[i], -keep, -keep, 'WITHSCORES')
    frees = entry[2]
  end
  reply[#reply + 1] = counts[i]
  reply[#reply + 1] = frees
end
return reply
"""

# KEYS[1]: a window's sorted set. ARGV[1]: its length in microseconds. Its count now.
_COUNT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%d', now - tonumber(ARGV[1])), '+inf')
"""

# KEYS[1]: a check's index set. Deletes every window it names, and itself (atomically).
_CLEAR_WINDOWS_SCRIPT = """
local keys = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(keys) do
  redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
return #keys
"""


def _jsonable(part: Any) -> Any:
    if isinstance(part, Enum):
        return _jsonable(part.value)
    if isinstance(part, Decimal):
        # Decimal("100") and Decimal("100.0") are one key, as in the local window.
        from ..checks.base import fmt

        return fmt(part)
    if isinstance(part, tuple | list):
        return [_jsonable(p) for p in part]
    if part is None or isinstance(part, str | int | float):
        return part
    return str(part)


def encode_window_key(name: str, key: Hashable) -> str:
    """The unambiguous text of a check window's key: the compact JSON array of the check's
    name and the parts of ``key`` (enums by value, Decimals normalised)."""
    parts = list(key) if isinstance(key, tuple) else [key]
    return json.dumps(
        [name, *(_jsonable(p) for p in parts)], separators=(",", ":"), ensure_ascii=True
    )


class RedisSharedWindows:
    """The shared-window part of :class:`~haltgate.store.redis.RedisStore` (a mixin: it
    uses the store's client, key prefix, origin and ``_call``)."""

    # Provided by RedisStore.
    _client: Any
    _origin: str
    _member_seq: Any
    _down_reason: str | None
    _lost_reason: str | None
    fail_open: bool
    _admit_script: Any
    _clear_script: Any
    _count_script: Any

    def _key(self, *parts: str) -> str:  # pragma: no cover - RedisStore's
        raise NotImplementedError

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _register_window_scripts(self) -> None:
        """Register the window scripts with the client (in the store's constructor)."""
        self._admit_script = self._client.register_script(_ADMIT_SCRIPT)
        self._clear_script = self._client.register_script(_CLEAR_WINDOWS_SCRIPT)
        self._count_script = self._client.register_script(_COUNT_SCRIPT)

    def _load_window_scripts(self) -> None:
        """Load the window scripts (after a (re)connect: one round trip per admission)."""
        for script in (self._admit_script, self._clear_script, self._count_script):
            self._client.script_load(script.script)

    # ------------------------------------------------------------------ keys
    def _window_key(self, name: str, key: Hashable) -> str:
        return self._key("window", encode_window_key(name, key))

    def _window_index_key(self, name: str) -> str:
        return self._key("window-index", json.dumps(name, ensure_ascii=True))

    # ------------------------------------------------------------------ the seam
    def check_window(self, check: OrderCheck) -> RedisKeyedWindow | None:
        """A window in Redis for a windowed order check, shared by every process using
        this namespace (``manager.add_check`` asks for it)."""
        if check.window is None:
            return None
        return RedisKeyedWindow(self, check)

    def reserve_windows(
        self,
        checks: Sequence[tuple[object, Hashable, int]],
        rate: Sequence[tuple[object, int]],
    ) -> tuple[int, int] | None:
        """One order in every window, or in none, in one script call: ``checks`` are
        (check window, the order's key, limit), ``rate`` (order-rate window, limit). Returns
        ``(index, count)``: the first full window in ``[*checks, *rate]`` and its count, or
        ``(-1, 0)`` when the order was recorded everywhere. Each rate window keeps what the
        reply says of it (its count, when it frees) and the token of its reservation, which
        its next ``reserve`` returns without I/O. ``None``: some window is not this store's,
        or the store is down with ``fail_open`` (the caller admits window by window, each
        falling back to its local window). Raises
        :class:`~haltgate.StoreUnavailableError` when Redis cannot be reached (fail
        closed)."""
        ran = self._admit_windows(checks, rate)
        if ran is None:
            return None
        refused, _member, counts = ran
        return (-1, 0) if refused < 0 else (refused, counts[refused])

    def _admit_windows(
        self,
        checks: Sequence[tuple[object, Hashable, int]],
        rate: Sequence[tuple[object, int]],
    ) -> tuple[int, str, list[int]] | None:
        """The script call of :meth:`reserve_windows`: the first full window (-1: none),
        the member recorded (``""`` when refused) and every window's count."""
        from .redis import RedisRateWindow

        if self._lost_reason is not None:
            # Nothing is written to a store that lost its data (not even an order).
            raise StoreUnavailableError(self._lost_reason)
        if self._down_reason is not None:
            if self.fail_open:
                return None
            raise StoreUnavailableError(self._down_reason)
        keys: list[str] = []
        args: list[Any] = [f"{self._origin}-{next(self._member_seq)}"]
        indexes: list[str] = []
        n = len(checks) + len(rate)
        for window, key, limit in checks:
            if not isinstance(window, RedisKeyedWindow) or window._store is not self:
                return None
            keys.append(window._redis_key(key))
            position = 0
            if window._index:
                indexes.append(window._index)
                position = n + len(indexes)
            args += (limit, window._micros, 0, position)
        rate_windows: list[RedisRateWindow] = []
        for window, limit in rate:
            if not isinstance(window, RedisRateWindow) or window._store is not self:
                return None
            keys.append(self._key("rate", window._name))
            args += (limit, round(window._window * 1_000_000), max(window._limit, 1), 0)
            rate_windows.append(window)
        try:
            reply: list[Any] = self._call(
                "admit order", self._admit_script, keys=keys + indexes, args=args
            )
        except StoreUnavailableError:
            if self.fail_open:
                return None
            raise
        refused = int(reply[0]) - 1
        now = int(reply[1])
        member = str(reply[2])
        counts = [int(reply[3 + 2 * i]) for i in range(n)]
        base = len(checks)
        for j, window in enumerate(rate_windows):
            window._adopt_reply(now, counts[base + j], reply[4 + 2 * (base + j)])
            if refused < 0:
                window._pending = member
            elif refused == base + j:
                window._pending = ""
        return refused, member, counts

    def clear_check_windows(self, name: str) -> int:
        """Delete every shared window of the check named ``name`` that an operator's reset
        empties (the execution throttle's), atomically; returns how many. Called by
        :meth:`~haltgate.store.redis.RedisStore.write` before it saves the reset: while the
        breaker is still tripped every order is refused, so no order admitted meanwhile is
        lost, and a reset the store refuses leaves the breaker tripped (fail closed)."""
        cleared = self._call(
            "clear check windows", self._clear_script, keys=[self._window_index_key(name)]
        )
        return int(cleared)


class RedisKeyedWindow:
    """A :class:`~haltgate.checks.windows.KeyedWindow` kept in Redis (see the module
    docstring): counted on Redis time, shared by every process of the namespace. Falls
    back to a local window while Redis is down with ``fail_open``. ``now`` (the manager's
    monotonic time) is used only by that fallback."""

    def __init__(self, store: RedisSharedWindows, check: OrderCheck) -> None:
        from ..checks.windows import LocalKeyedWindow

        spec = check.window
        assert spec is not None
        self._store = store
        self.name = check.name
        self.window_seconds = spec.window_seconds
        self._micros = round(spec.window_seconds * 1_000_000)
        # A check whose breaker an operator resets has its windows indexed, so the reset
        # can delete them all at once.
        self._index = store._window_index_key(check.name) if check.companion_breaker() else ""
        compact = spec.limit if check.counts_messages else None
        self._local = LocalKeyedWindow(spec.window_seconds, compact_above=compact)
        # The last reservation (key, Redis member or None when local), for cancel().
        self._last: tuple[Hashable, str | None] | None = None

    def _redis_key(self, key: Hashable) -> str:
        return self._store._window_key(self.name, key)

    def _fallback(self) -> bool:
        """True while the store is down with ``fail_open`` (count locally); raises while it
        is down and fail closed."""
        store = self._store
        if store._lost_reason is not None:
            raise StoreUnavailableError(store._lost_reason)
        if store._down_reason is None:
            return False
        if store.fail_open:
            return True
        raise StoreUnavailableError(store._down_reason)

    def reserve(self, key: Hashable, now: float, limit: int) -> bool:
        """Record one event under ``key`` if fewer than ``limit`` are counted (one round
        trip); False (nothing recorded) when full."""
        if not self._fallback():
            ran = self._store._admit_windows(((self, key, limit),), ())
            if ran is not None:
                refused, member, _counts = ran
                if refused >= 0:
                    return False
                self._last = (key, member)
                return True
        if not self._local.reserve(key, now, limit):
            return False
        self._last = (key, None)
        return True

    def cancel(self, key: Hashable, now: float) -> None:
        """Undo the event :meth:`reserve` just recorded under ``key`` (another window of
        the same order refused it, in the same lock hold)."""
        last, self._last = self._last, None
        if last is None or last[0] != key:
            return
        member = last[1]
        if member is None:
            self._local.cancel(key, now)
        else:
            store = self._store
            store._call("cancel", store._client.zrem, self._redis_key(key), member)

    def count(self, key: Hashable, now: float) -> int:
        """Events under ``key`` in the window now (one round trip)."""
        if self._fallback():
            return self._local.count(key, now)
        store = self._store
        return int(
            store._call(
                "count window",
                store._count_script,
                keys=[self._redis_key(key)],
                args=[self._micros],
            )
        )

    def add(self, key: Hashable, now: float) -> int:
        """Record one event under ``key`` unconditionally (one round trip); the new count."""
        if not self._fallback():
            ran = self._store._admit_windows(((self, key, -1),), ())
            if ran is not None:
                return ran[2][0]
        return self._local.add(key, now)

    def clear(self) -> None:
        """Forget the events counted locally (the fallback). The shared window is emptied
        by the reset's write itself (``RedisSharedWindows.clear_check_windows``), once, by
        the process that makes the reset; a process adopting it must not empty it again
        (that would drop orders admitted since)."""
        self._local.clear()
