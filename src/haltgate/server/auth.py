"""The one check of the admin API's bearer tokens (SPEC §8): cached, bounded, per client.

Checking a token is one scrypt per configured operator (16 MiB of memory and ~50 ms of CPU
each, with :func:`haltgate.hash_key`'s default), slow on purpose; so a flood of unknown
tokens, checked as they come, would take the memory, the CPU and the threads an operator's
halt needs. :class:`TokenAuthenticator` bounds that cost:

- **Known tokens cost no scrypt.** A token this process has verified is recognised again
  from an in-memory map keyed by HMAC-SHA256 of the token under a random key made per
  process (the plain token is never kept; the key never leaves memory). A hit counts only
  while that same operator entry (name, hash and role) is configured:
  :meth:`TokenAuthenticator.set_operators` drops the entries of an operator that was removed
  or whose hash changed, and a check that was running meanwhile caches nothing.
- **Bounded checks.** Other tokens are checked in a pool of ``max_concurrent`` threads of
  its own (never the event loop, never the threads halt and reset run in; on Linux at nice
  +:data:`CHECK_NICENESS`), behind at most
  ``max_waiting`` queued checks; beyond that a token is refused at once, unchecked
  (:class:`TokenCheckRefused`, answered 429 with ``Retry-After``). Memory is bounded by
  ``max_concurrent`` scrypts, whatever the flood.
- **Per-client failure limit.** A client (an IPv4 address; an IPv6 /64) gets at most
  ``failure_limit`` checks that did not verify within ``failure_window`` seconds; further
  unknown tokens from it are refused at once until the oldest failure ages out. A check is
  counted when it starts and uncounted when its token verifies, so parallel requests cannot
  slip past the limit. A known token is never limited: an operator sharing an address with
  the flood (127.0.0.1) still gets through.
- **Repeated wrong tokens.** A token rejected recently is answered "unknown" from a bounded
  set of digests, without a check and without counting another failure (a status page
  polling with a mistyped token costs one check, not one every two seconds).

The failure window runs on an injectable :class:`~haltgate.Clock` (``monotonic()``). The
HTTP layer (:class:`haltgate.server.app.AdminService`) answers 401 and 429 after
``REFUSAL_DELAY``, and takes the client from the connection, never from a header.
Standard library only: importing it needs no extra.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import secrets
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

from ..clock import Clock, SystemClock
from ..errors import InvalidInputError, InvalidTypeError
from ..values import to_seconds

if TYPE_CHECKING:
    from ..config import OperatorConfig

__all__ = [
    "CHECK_NICENESS",
    "FAILURE_LIMIT",
    "FAILURE_WINDOW",
    "MAX_CONCURRENT",
    "MAX_WAITING",
    "Outcome",
    "TokenAuthenticator",
    "TokenCheckRefused",
    "client_key",
]

logger = logging.getLogger("haltgate.server")

Outcome = Literal["cached", "verified", "rejected", "throttled_client", "throttled_busy"]
"""What became of one token check (the ``outcome`` label of
``haltgate_token_checks_total``): known from the cache, verified by scrypt, rejected as
unknown, refused unchecked because the client is over its failure limit, or because the
check queue is full."""

MAX_CONCURRENT = 1
"""Token checks that run at once by default (each needs 16 MiB with the default hash)."""
MAX_WAITING = 4
"""Token checks that may wait for a thread by default; one more is refused at once."""
FAILURE_LIMIT = 10
"""Checks that did not verify, per client and window, by default."""
FAILURE_WINDOW = 60.0
"""The default window of :data:`FAILURE_LIMIT`, in seconds."""

CHECK_NICENESS = 10
"""How much the check threads lower their own CPU priority (Linux, where the nice value is
per thread): on a busy machine, the event loop and the threads a halt runs in go first."""

_LOG_EVERY = 10.0  # seconds between two token_check_throttled log lines of one reason


class TokenCheckRefused(Exception):
    """A token was not checked: the client is over its failure limit (``reason`` =
    ``"client_limit"``) or the check queue is full (``"busy"``). ``retry_after`` is whole
    seconds to wait."""

    def __init__(self, reason: Literal["client_limit", "busy"], retry_after: int) -> None:
        self.reason = reason
        self.retry_after = retry_after
        if reason == "client_limit":
            message = "too many unknown tokens from this client: try again later"
        else:
            message = "too many token checks in progress: try again later"
        # Said to whoever is refused, maybe an operator in a hurry: the CLI needs no server.
        super().__init__(
            f"{message} (Retry-After: {retry_after} s); `haltgate halt` works without the server"
        )


def client_key(client: str | None) -> str:
    """The key a client's failures are counted under: its IPv4 address, or the /64 of an
    IPv6 address (one host usually holds a whole /64); an IPv4-mapped IPv6 address counts
    as the IPv4 address."""
    if not client:
        return "unknown"
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def _lower_priority() -> None:
    # Runs in each new check thread. Only on Linux: elsewhere the call would reprioritise
    # the whole process (or fail).
    if sys.platform.startswith("linux") and hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            os.setpriority(
                os.PRIO_PROCESS, threading.get_native_id(), min(19, niceness + CHECK_NICENESS)
            )


def _positive(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(name, value, "must be a whole number")
    if value < 1:
        raise InvalidInputError(name, value, "must be at least 1")


class TokenAuthenticator:
    """Checks bearer tokens against ``operators`` (see the module docstring for the rules).

    ``verify(token, token_hash)`` defaults to :func:`haltgate.keys.verify_key`;
    ``on_outcome`` is called with the :data:`Outcome` of every check (the server counts them
    in ``/metrics``)."""

    def __init__(
        self,
        operators: Iterable[OperatorConfig] = (),
        *,
        clock: Clock | None = None,
        max_concurrent: int = MAX_CONCURRENT,
        max_waiting: int = MAX_WAITING,
        failure_limit: int = FAILURE_LIMIT,
        failure_window: float = FAILURE_WINDOW,
        verify: Callable[[str, str], bool] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        max_cached: int = 1024,
        max_rejected: int = 4096,
        max_clients: int = 4096,
    ) -> None:
        for name, value in (
            ("max_concurrent", max_concurrent),
            ("max_waiting", max_waiting),
            ("failure_limit", failure_limit),
            ("max_cached", max_cached),
            ("max_rejected", max_rejected),
            ("max_clients", max_clients),
        ):
            _positive(value, name)
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.failure_limit = failure_limit
        self.failure_window = to_seconds(failure_window, "failure_window")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._verify = verify
        self._on_outcome = on_outcome
        self._max_cached = max_cached
        self._max_rejected = max_rejected
        self._max_clients = max_clients
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._operators: tuple[OperatorConfig, ...] = ()
        self._configured: frozenset[OperatorConfig] = frozenset()
        self._generation = 0
        self._known: dict[bytes, tuple[bytes, OperatorConfig]] = {}
        self._rejected: dict[bytes, None] = {}
        self._failures: dict[str, deque[float]] = {}
        self._in_flight = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        self._logged: dict[str, tuple[float, int]] = {}
        self.set_operators(operators)

    # ------------------------------------------------------------------ config
    def set_operators(self, operators: Iterable[OperatorConfig]) -> None:
        """Check tokens against ``operators`` from now on. Cached tokens of an operator no
        longer configured exactly so (removed, new hash or new role) stop being accepted,
        and the rejected set is cleared (a token added now may be one rejected before)."""
        with self._lock:
            self._operators = tuple(operators)
            self._configured = frozenset(self._operators)
            self._generation += 1
            self._known = {
                digest: entry
                for digest, entry in self._known.items()
                if entry[1] in self._configured
            }
            self._rejected.clear()

    @property
    def in_flight(self) -> int:
        """Checks running or queued right now."""
        return self._in_flight

    def close(self) -> None:
        """Stop the check threads (checks already queued still finish); from now on an
        unknown token is refused unchecked (known tokens still answer)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    # ------------------------------------------------------------------ checks
    async def authenticate(self, token: str, client: str | None) -> OperatorConfig | None:
        """The operator of ``token``, or ``None`` when it is unknown; a known token answers
        at once, an unknown one after its check in the pool. Raises
        :class:`TokenCheckRefused` (without checking) when ``client`` is over its failure
        limit or the queue is full."""
        started = self._start(token, client)
        if isinstance(started, concurrent.futures.Future):
            # The check's bookkeeping happens in its thread: a request that goes away while
            # it waits frees no slot early and loses no failure.
            return await asyncio.wrap_future(started)
        return started

    def warm(self, token: str, client: str | None) -> None:
        """Start a check of ``token`` if it is not known yet and one may start now, without
        waiting for it: a token verified this way is known from then on. Nothing is raised
        and nothing is answered (the server calls it for a token sent with a read that
        needs none, so the status page caches the operator's token before a halt)."""
        with contextlib.suppress(TokenCheckRefused):
            self._start(token, client)

    def known(self, token: str) -> OperatorConfig | None:
        """The operator of ``token`` if this process has verified it (no scrypt), else
        ``None``."""
        digest = self._digest(token)
        with self._lock:
            return self._cached(digest)

    def _digest(self, token: str) -> bytes:
        data = token.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def _cached(self, digest: bytes) -> OperatorConfig | None:
        entry = self._known.get(digest)
        # The map is keyed by a digest nobody outside can compute; the comparison is
        # constant-time all the same.
        if entry is None or not hmac.compare_digest(entry[0], digest):
            return None
        return entry[1] if entry[1] in self._configured else None

    def _start(
        self, token: str, client: str | None
    ) -> OperatorConfig | concurrent.futures.Future[OperatorConfig | None] | None:
        digest = self._digest(token)
        refused: TokenCheckRefused | None = None
        with self._lock:
            hit = self._cached(digest)
            answer_now = hit is not None or not self._operators or digest in self._rejected
            if not answer_now:
                key = client_key(client)
                now = self._clock.monotonic()
                window = self._window(key, now)
                if len(window) >= self.failure_limit:
                    wait = window[0] + self.failure_window - now
                    refused = TokenCheckRefused("client_limit", max(1, math.ceil(wait)))
                elif self._closed or self._in_flight >= self.max_concurrent + self.max_waiting:
                    refused = TokenCheckRefused("busy", 1)
                else:
                    window.append(now)  # counted as a failure until the token verifies
                    self._in_flight += 1
                    generation = self._generation
                    operators = self._operators
                    executor = self._pool()
        if answer_now:
            self._count("cached" if hit is not None else "rejected")
            return hit
        if refused is not None:
            self._count(
                "throttled_client" if refused.reason == "client_limit" else "throttled_busy"
            )
            self._log_throttled(refused, client)
            raise refused
        try:
            return executor.submit(self._check, token, digest, key, now, generation, operators)
        except RuntimeError:  # closed meanwhile: the server is stopping
            with self._lock:
                self._in_flight -= 1
            raise TokenCheckRefused("busy", 1) from None

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.max_concurrent,
                thread_name_prefix="haltgate-token-check",
                initializer=_lower_priority,
            )
        return self._executor

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._failures.get(key)
        if window is None:
            if len(self._failures) >= self._max_clients:
                # Forget the client seen longest ago; the global queue bound still holds.
                del self._failures[next(iter(self._failures))]
            window = self._failures[key] = deque()
        while window and window[0] <= now - self.failure_window:
            window.popleft()
        return window

    def _check(
        self,
        token: str,
        digest: bytes,
        key: str,
        reserved_at: float,
        generation: int,
        operators: tuple[OperatorConfig, ...],
    ) -> OperatorConfig | None:
        from ..config import find_operator

        try:
            found = find_operator(operators, token, self._verify)
        except Exception:  # a check that fails is not a verification: refuse
            logger.exception("token_check_failed")
            found = None
        with self._lock:
            self._in_flight -= 1
            if found is not None and found not in self._configured:
                found = None  # removed or changed while it was being checked
            if generation == self._generation:  # else the operators changed: cache nothing
                if found is not None:
                    if len(self._known) >= self._max_cached:
                        del self._known[next(iter(self._known))]
                    self._known[digest] = (digest, found)
                    window = self._failures.get(key)
                    if window is not None and reserved_at in window:
                        window.remove(reserved_at)
                else:
                    if len(self._rejected) >= self._max_rejected:
                        del self._rejected[next(iter(self._rejected))]
                    self._rejected[digest] = None
        if found is not None:
            self._count("verified")
            logger.info("api_token_verified", extra={"operator": found.name})
            return found
        self._count("rejected")
        logger.warning("api_token_rejected", extra={"client": key})
        return None

    def _count(self, outcome: Outcome) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _log_throttled(self, refused: TokenCheckRefused, client: str | None) -> None:
        # One line per reason every _LOG_EVERY seconds, with how many were not logged: a
        # flood must not turn into a flood of log lines.
        now = self._clock.monotonic()
        with self._lock:
            last, suppressed = self._logged.get(refused.reason, (-math.inf, 0))
            if now - last < _LOG_EVERY:
                self._logged[refused.reason] = (last, suppressed + 1)
                return
            self._logged[refused.reason] = (now, 0)
        logger.warning(
            "token_check_throttled",
            extra={
                "reason": refused.reason,
                "client": client_key(client),
                "retry_after": refused.retry_after,
                "suppressed": suppressed,
            },
        )
