"""The one guard of a keyed kill switch: a key checked against its hash, with a lock-out.

Used by the library (:class:`~haltgate.trading.kill_switch.KillSwitch`, the facade's
``reset_kill_switch``), the CLI (``haltgate reset``) and the admin API alike (SPEC §6):

* one lock-out counter per keyed breaker, in the store (``kill_switch:<name>:lockout``),
  on the injected clock's wall time (the only time that survives a restart and is shared by
  processes);
* every attempt is **reserved** before its key is checked, in one atomic read-modify-write
  of that counter (:meth:`Store.update_value`: SQLite ``BEGIN IMMEDIATE``, a Redis mutex):
  an attempt that finds the counter at the limit is refused without a check, so parallel
  guesses from many clients still lock out after :data:`MAX_FAILED_ATTEMPTS`;
* the scrypt check itself runs outside any lock or transaction; a right key then clears the
  counter, also atomically, and every outcome is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock, SystemClock
from .errors import AuthorizationError, InvalidInputError, StoreUnavailableError
from .keys import verify_key
from .store.base import Store, ValueAudit

__all__ = [
    "AUTHORITY_KEY",
    "LOCKOUT_SECONDS",
    "MAX_FAILED_ATTEMPTS",
    "GuardStatus",
    "KeyGuard",
    "KeyRefusedError",
    "claim_keys",
    "rotate_key",
    "stored_keys",
]

logger = logging.getLogger("haltgate.authority")

MAX_FAILED_ATTEMPTS = 5
LOCKOUT_SECONDS = 300.0

ACCEPTED = "kill_switch_reset_accepted"
REFUSED = "kill_switch_reset_refused"


class KeyRefusedError(AuthorizationError):
    """A kill-switch reset refused by the guard: ``outcome`` (``wrong_key``,
    ``wrong_key_locked_out``, ``locked_out``, ``no_key``, ``not_configured``, ``bad_hash``)
    and the audited ``payload``."""

    def __init__(self, message: str, outcome: str, payload: dict[str, Any]) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.payload = payload


@dataclass(frozen=True, slots=True)
class GuardStatus:
    """The lock-out counter of one keyed breaker, as read now."""

    failed_attempts: int
    locked_until: datetime | None
    lockout_remaining: float


class KeyGuard:
    """Guards resets of the keyed breaker ``breaker`` (see the module docstring)."""

    max_failed_attempts = MAX_FAILED_ATTEMPTS
    lockout_seconds = LOCKOUT_SECONDS

    def __init__(
        self,
        store: Store,
        breaker: str,
        *,
        clock: Clock | None = None,
        setting: str = "[kill_switch] key_hash in the config",
    ) -> None:
        self.store = store
        self.breaker = breaker
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.key = f"kill_switch:{breaker}:lockout"
        #: Where a key hash is configured, for the message when none is.
        self.setting = setting

    # ------------------------------------------------------------------ reading
    def status(self) -> GuardStatus:
        """The counter as stored now (a read: nothing written)."""
        failures, locked_until = self._parse(self.store.get_value(self.key))
        now = self.clock.now()
        remaining = 0.0
        if locked_until is not None and now < locked_until:
            remaining = min((locked_until - now).total_seconds(), self.lockout_seconds)
        return GuardStatus(failures, locked_until if remaining else None, remaining)

    # ------------------------------------------------------------------ the check
    def check(self, key: Any, key_hash: str | None, operator: str | None) -> dict[str, Any]:
        """Return the audited payload if ``key`` is the breaker's key; else raise
        :class:`KeyRefusedError` (an :class:`~haltgate.AuthorizationError`): wrong or
        missing key, locked out, no hash configured, a damaged hash. Every outcome is
        audited. ``StoreUnavailableError`` when the attempt cannot be reserved or recorded:
        a check that cannot be counted is not made."""
        if key_hash is None:
            raise KeyRefusedError(
                "No kill-switch key is configured: make a hash with haltgate.hash_key(secret) "
                f"and pass it as {self.setting} (keep the secret itself out of the config)",
                "not_configured",
                self._audit_only(operator, "not_configured"),
            )
        if not key:
            raise KeyRefusedError(
                f"{self.breaker!r} is a keyed kill switch: give its key",
                "no_key",
                self._audit_only(operator, "no_key"),
            )
        locked, reserved = self._reserve(operator)
        if locked is not None:
            raise KeyRefusedError(locked[0], "locked_out", locked[1])
        try:
            matches = verify_key(key, key_hash)
        except InvalidInputError:
            left, payload = self._settle(operator, accepted=False, outcome="bad_hash")
            raise KeyRefusedError(
                f"the kill-switch key hash of {self.breaker!r} is damaged (not a hash made by "
                "haltgate.hash_key(secret)): make a new one and configure it",
                "bad_hash",
                payload,
            ) from None
        if matches:
            return self._settle(operator, accepted=True, outcome="accepted")[1]
        lock_now = reserved >= self.max_failed_attempts
        outcome = "wrong_key_locked_out" if lock_now else "wrong_key"
        left, payload = self._settle(operator, accepted=False, outcome=outcome)
        if lock_now:
            raise KeyRefusedError(
                f"Wrong kill-switch key for {self.breaker!r}; {self.max_failed_attempts} wrong "
                f"keys: resets are locked out for {self.lockout_seconds:.0f} seconds",
                outcome,
                payload,
            )
        raise KeyRefusedError(
            f"Wrong kill-switch key for {self.breaker!r} ({left} more wrong "
            f"key{'s' if left != 1 else ''} before a {self.lockout_seconds:.0f}-second "
            "lock-out)",
            outcome,
            payload,
        )

    # ------------------------------------------------------------------ internals
    def _parse(self, value: Any) -> tuple[int, datetime | None]:
        if not isinstance(value, dict):
            return 0, None
        failures = value.get("failures", 0)
        failures = failures if isinstance(failures, int) and failures >= 0 else 0
        raw = value.get("locked_until")
        try:
            locked_until = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            locked_until = None
        return failures, locked_until

    def _payload(self, outcome: str, failures: int, locked: datetime | None) -> dict[str, Any]:
        return {
            "outcome": outcome,
            "failed_attempts": failures,
            "locked_out": locked is not None,
            "locked_until": None if locked is None else locked.isoformat(),
            "time": self.clock.now().isoformat(),
        }

    def _reserve(self, operator: str | None) -> tuple[tuple[str, dict[str, Any]] | None, int]:
        """Count this attempt before its check: ``((message, payload), n)`` when locked
        out, else ``(None, n)`` with ``n`` the attempts counted with this one."""
        refusal: list[tuple[str, dict[str, Any]]] = []
        counted: list[int] = []

        def reserve(old: Any) -> tuple[Any, ValueAudit | None]:
            failures, locked_until = self._parse(old)
            now = self.clock.now()
            if locked_until is not None and now < locked_until:
                # A clock stepped back never lengthens the lock-out beyond its own span.
                left = min((locked_until - now).total_seconds(), self.lockout_seconds)
                payload = self._payload("locked_out", failures, locked_until)
                refusal.append(
                    (
                        f"Kill switch resets are locked out for {left:.0f} more seconds "
                        f"after {self.max_failed_attempts} wrong keys ({self.breaker!r})",
                        payload,
                    )
                )
                return old, (REFUSED, self.breaker, operator, payload)
            if locked_until is not None:
                failures, locked_until = 0, None  # the lock-out ran out
            failures += 1
            counted.append(failures)
            if failures >= self.max_failed_attempts:
                # The last allowed attempt: lock now, so that attempts racing it are refused
                # unchecked; a right key lifts the lock-out again.
                locked_until = now + timedelta(seconds=self.lockout_seconds)
            value = {
                "failures": failures,
                "locked_until": None if locked_until is None else locked_until.isoformat(),
            }
            return value, None

        self.store.update_value(self.key, reserve)
        return (refusal[0] if refusal else None), (counted[-1] if counted else 0)

    def _settle(
        self, operator: str | None, *, accepted: bool, outcome: str
    ) -> tuple[int, dict[str, Any]]:
        """Record the checked attempt; ``(attempts left, audited payload)``."""
        left: list[tuple[int, dict[str, Any]]] = []

        def settle(old: Any) -> tuple[Any, ValueAudit | None]:
            failures, locked_until = self._parse(old)
            if accepted:
                failures, locked_until = 0, None
            value = {
                "failures": failures,
                "locked_until": None if locked_until is None else locked_until.isoformat(),
            }
            payload = self._payload(outcome, failures, locked_until)
            left.append((self.max_failed_attempts - failures, payload))
            return value, (ACCEPTED if accepted else REFUSED, self.breaker, operator, payload)

        try:
            self.store.update_value(self.key, settle)
        except StoreUnavailableError:
            logger.critical("kill_switch_audit_failed", extra={"outcome": outcome})
            raise
        return left[0]

    def _audit_only(self, operator: str | None, outcome: str) -> dict[str, Any]:
        failures, locked = self._parse(self.store.get_value(self.key))
        payload = self._payload(outcome, failures, locked)
        try:
            self.store.append_audit(
                REFUSED,
                breaker=self.breaker,
                operator=operator,
                payload=payload,
                time=self.clock.now(),
            )
        except StoreUnavailableError:
            logger.critical("kill_switch_audit_failed", extra={"outcome": outcome})
        return payload


# ---------------------------------------------------------------------- authority in the store
AUTHORITY_KEY = "kill_switch"
"""Where the store keeps which breakers are keyed, and their key hashes."""


def _keys_of(value: Any) -> dict[str, str]:
    """``{breaker: key_hash}`` of a stored authority record (also the older
    ``{"key_hash", "breakers"}`` form)."""
    if not isinstance(value, dict):
        return {}
    keys = value.get("keys")
    if isinstance(keys, dict):
        return {str(k): v for k, v in keys.items() if isinstance(v, str)}
    legacy = value.get("key_hash")
    if isinstance(legacy, str) and legacy:
        return {str(name): legacy for name in (value.get("breakers") or ["manual"])}
    return {}


def stored_keys(store: Store) -> dict[str, str]:
    """The keyed breakers and their key hashes, as the store holds them (the authority)."""
    return _keys_of(store.get_value(AUTHORITY_KEY))


def claim_keys(store: Store, wanted: dict[str, str], *, source: str) -> dict[str, str]:
    """Key the breakers of ``wanted`` that the store does not key yet, atomically and
    audited (``kill_switch_configured``); returns the store's keys afterwards.

    A breaker the store already keys keeps its stored hash: a config or a facade never
    replaces or weakens it (a different hash is logged, ``kill_switch_key_kept``, and
    ignored); changing it takes the current key (:func:`rotate_key`). A breaker the store
    keys stays keyed even when the config no longer lists it."""
    kept: list[str] = []

    def claim(old: Any) -> tuple[Any, ValueAudit | None]:
        keys = _keys_of(old)
        added = {name: h for name, h in wanted.items() if name not in keys}
        kept.extend(name for name, h in wanted.items() if name in keys and keys[name] != h)
        if not added:
            return old, None
        keys.update(added)
        payload = {"breakers": sorted(added), "source": source}
        return {"keys": keys}, ("kill_switch_configured", None, None, payload)

    result = _keys_of(store.update_value(AUTHORITY_KEY, claim))
    for name in kept:
        logger.warning("kill_switch_key_kept", extra={"breaker": name, "source": source})
    return result


def rotate_key(
    store: Store,
    breaker: str,
    current_key: Any,
    new_hash: str,
    operator: str | None,
    *,
    clock: Clock | None = None,
) -> None:
    """Replace the key hash of ``breaker`` with ``new_hash``: needs the current key (checked
    by the guard, with its lock-out); audited as ``kill_switch_key_rotated``."""
    from .keys import check_key_hash

    new_hash = check_key_hash(new_hash, "new_key_hash")
    current = stored_keys(store).get(breaker)
    if current is None:
        raise AuthorizationError(f"{breaker!r} is not a keyed kill switch in this store")
    KeyGuard(store, breaker, clock=clock).check(current_key, current, operator)

    def rotate(old: Any) -> tuple[Any, ValueAudit | None]:
        keys = _keys_of(old)
        keys[breaker] = new_hash
        return {"keys": keys}, ("kill_switch_key_rotated", breaker, operator, {})

    store.update_value(AUTHORITY_KEY, rotate)
