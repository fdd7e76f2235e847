"""The kill switch: the max-drawdown breaker, reset only with an operator key.

The key is checked against a hash made by :func:`haltgate.hash_key` in constant time
(:func:`haltgate.verify_key`). Every attempt is written to the audit log and published as
an event. Five wrong keys in a row lock resets out for five minutes, measured on the
monotonic clock; the counters live in the store so that a restart does not clear them.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from ..breakers.threshold import ThresholdCircuitBreaker
from ..clock import Clock
from ..errors import AuthorizationError, InvalidInputError, StoreUnavailableError
from ..events import BreakerEvent, EventKind
from ..keys import verify_key
from ..store.base import Store
from ..values import to_text

__all__ = ["KillSwitch"]

logger = logging.getLogger("haltgate.trading")

MAX_FAILED_ATTEMPTS = 5
LOCKOUT_SECONDS = 300.0


class KillSwitch:
    """Guards resets of ``breaker`` (the max-drawdown breaker) with an operator key.

    ``latched`` (the config's ``require_manual_reset``) means only :meth:`reset` may clear
    the breaker; the facade's ``reset_breaker`` and ``reset_all`` refuse it.
    """

    max_failed_attempts = MAX_FAILED_ATTEMPTS
    lockout_seconds = LOCKOUT_SECONDS

    def __init__(
        self,
        breaker: ThresholdCircuitBreaker,
        *,
        key_hash: str | None,
        store: Store,
        clock: Clock,
        latched: bool,
    ) -> None:
        self.breaker = breaker
        self.latched = latched
        self._key_hash = key_hash
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._key = f"kill_switch:{breaker.name}:lockout"
        self._failures = 0
        self._locked_at: str | None = None
        self._locked_until: float | None = None
        self._load()

    # ------------------------------------------------------------------ reading
    @property
    def key_configured(self) -> bool:
        """True when a key hash is configured."""
        return self._key_hash is not None

    def lockout_remaining(self) -> float:
        """Seconds until resets are accepted again (0 when not locked out)."""
        with self._lock:
            self._load()
            return self._remaining_locked()

    def failed_attempts(self) -> int:
        """Wrong keys since the last success or lock-out."""
        with self._lock:
            self._load()
            return self._failures

    def status(self) -> dict[str, Any]:
        """Kill-switch state for status views."""
        with self._lock:
            self._load()
            remaining = self._remaining_locked()
            return {
                "breaker": self.breaker.name,
                "tripped": self.breaker.is_tripped,
                "require_manual_reset": self.latched,
                "key_configured": self.key_configured,
                "failed_attempts": self._failures,
                "locked_out": remaining > 0,
                "lockout_remaining_seconds": remaining,
            }

    # ------------------------------------------------------------------ reset
    def reset(self, auth_key: Any, operator: str | None = None) -> bool:
        """Reset the kill switch with the operator key; True on success.

        Raises :class:`~haltgate.AuthorizationError` for a wrong key, while locked out,
        and when no key hash is configured.
        """
        if operator is not None:
            operator = to_text(operator, "operator")
        with self._lock:
            self._load()
            remaining = self._remaining_locked()
            if remaining > 0:
                outcome, message = (
                    "locked_out",
                    f"Kill switch resets are locked out for {remaining:.0f} more seconds after "
                    f"{self.max_failed_attempts} wrong keys",
                )
            elif self._key_hash is None:
                outcome, message = (
                    "not_configured",
                    "No kill-switch key is configured: make a hash with "
                    "haltgate.hash_key(secret) and pass it as "
                    "TradingBreakerConfig(kill_switch_key_hash=...) (keep the secret itself "
                    "out of the config)",
                )
            elif (matches := self._matches(auth_key, self._key_hash)) is None:
                outcome, message = (
                    "bad_hash",
                    "kill_switch_key_hash is damaged (not a hash made by "
                    "haltgate.hash_key(secret)): make a new one and configure it",
                )
            elif not matches:
                self._failures += 1
                if self._failures >= self.max_failed_attempts:
                    self._locked_at = self._clock.now().isoformat()
                    self._locked_until = self._clock.monotonic() + self.lockout_seconds
                    self._failures = 0
                    outcome, message = (
                        "wrong_key_locked_out",
                        f"Wrong kill-switch key; {self.max_failed_attempts} wrong keys: resets "
                        f"are locked out for {self.lockout_seconds:.0f} seconds",
                    )
                else:
                    left = self.max_failed_attempts - self._failures
                    outcome, message = (
                        "wrong_key",
                        f"Wrong kill-switch key ({left} more before a "
                        f"{self.lockout_seconds:.0f}-second lock-out)",
                    )
            else:
                self._failures = 0
                self._locked_at = None
                self._locked_until = None
                outcome, message = "accepted", "Kill switch reset with a valid key"
            record = self._record_locked(outcome, operator)
        if outcome != "accepted":
            self._announce(f"Kill switch reset refused: {message}", record, operator)
            raise AuthorizationError(message)
        was_tripped = self.breaker.state.value != "NORMAL"
        self.breaker.reset(operator=operator, reason=message)
        if not was_tripped:
            self._announce("Kill switch reset authorized (it was not tripped)", record, operator)
        return True

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _matches(auth_key: Any, key_hash: str) -> bool | None:
        """Constant-time check of ``auth_key``; ``None`` when the hash itself is damaged."""
        try:
            return verify_key(auth_key, key_hash)
        except InvalidInputError:
            return None

    def _remaining_locked(self) -> float:
        until = self._locked_until
        if until is None:
            return 0.0
        remaining = until - self._clock.monotonic()
        if remaining <= 0:
            self._locked_until = None
            self._locked_at = None
            return 0.0
        return remaining

    def _load(self) -> None:
        """Adopt the counters in the store (a restart, or another process's attempts)."""
        try:
            data = self._store.get_value(self._key)
        except StoreUnavailableError:
            logger.error("kill_switch_counters_unavailable", extra={"key": self._key})
            return
        if not isinstance(data, dict):
            return
        self._failures = int(data.get("failures", 0))
        locked_at = data.get("locked_at")
        if locked_at == self._locked_at:
            return
        self._locked_at = locked_at
        if locked_at is None:
            self._locked_until = None
            return
        # Only wall time survives a restart. A clock that moved backwards gives the full
        # lock-out again rather than none.
        elapsed = (self._clock.now() - datetime.fromisoformat(locked_at)).total_seconds()
        remaining = min(self.lockout_seconds, self.lockout_seconds - max(elapsed, 0.0))
        self._locked_until = self._clock.monotonic() + max(remaining, 0.0)

    def _record_locked(self, outcome: str, operator: str | None) -> dict[str, Any]:
        """Persist the counters with an audit entry for this attempt."""
        payload = {
            "outcome": outcome,
            "failed_attempts": self._failures,
            "locked_out": self._locked_until is not None,
            "lockout_seconds": self.lockout_seconds if self._locked_until is not None else 0,
            "time": self._clock.now().isoformat(),
        }
        accepted = outcome == "accepted"
        event = "kill_switch_reset_accepted" if accepted else "kill_switch_reset_refused"
        value = {"failures": self._failures, "locked_at": self._locked_at}
        try:
            self._store.set_value(
                self._key, value, audit=(event, self.breaker.name, operator, payload)
            )
        except StoreUnavailableError:
            logger.critical("kill_switch_audit_failed", extra={"outcome": outcome})
            if outcome == "accepted":
                # A reset that cannot be audited does not happen.
                raise
        return payload

    def _announce(self, reason: str, details: dict[str, Any], operator: str | None) -> None:
        state = self.breaker.state
        event = BreakerEvent(
            kind=EventKind.WARNING,
            breaker_name=self.breaker.name,
            breaker_type=self.breaker.breaker_type,
            previous_state=state,
            state=state,
            reason=reason,
            timestamp=self._clock.now(),
            details={"kill_switch_attempt": details["outcome"], **details},
            operator=operator,
        )
        self.breaker._publish([event])
