"""The kill switch: the max-drawdown breaker, reset only with an operator key.

The key is checked by :class:`haltgate.authority.KeyGuard` (the one guard of every keyed
breaker): in constant time against a hash made by :func:`haltgate.hash_key`, every attempt
reserved atomically in the store before its check and audited; five wrong keys lock resets
out for five minutes, on the clock's wall time, so a restart or another process does not
clear them. Every attempt is also published as a warning event.
"""

from __future__ import annotations

import logging
from typing import Any

from ..authority import (
    LOCKOUT_SECONDS,
    MAX_FAILED_ATTEMPTS,
    GuardStatus,
    KeyGuard,
    KeyRefusedError,
    stored_keys,
)
from ..breakers.threshold import ThresholdCircuitBreaker
from ..clock import Clock
from ..errors import StoreUnavailableError
from ..events import BreakerEvent, EventKind
from ..store.base import Store
from ..values import to_text

__all__ = ["KillSwitch"]

logger = logging.getLogger("haltgate.trading")


class KillSwitch:
    """Guards resets of ``breaker`` (the max-drawdown breaker) with an operator key, through
    the one :class:`~haltgate.authority.KeyGuard` that the CLI and the admin API use too.

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
        self._guard = KeyGuard(
            store,
            breaker.name,
            clock=clock,
            setting="TradingBreakerConfig(kill_switch_key_hash=...)",
        )
        self._clock = clock

    # ------------------------------------------------------------------ reading
    @property
    def key_configured(self) -> bool:
        """True when a key hash is configured."""
        return self._key_hash is not None

    def _read(self) -> GuardStatus:
        try:
            return self._guard.status()
        except StoreUnavailableError:
            logger.error("kill_switch_counters_unavailable", extra={"key": self._guard.key})
            # Unknown counters: the safe reading is "locked out".
            return GuardStatus(self.max_failed_attempts, None, self.lockout_seconds)

    def lockout_remaining(self) -> float:
        """Seconds until resets are accepted again (0 when not locked out)."""
        return self._read().lockout_remaining

    def failed_attempts(self) -> int:
        """Wrong keys since the last success."""
        return self._read().failed_attempts

    def status(self) -> dict[str, Any]:
        """Kill-switch state for status views."""
        read = self._read()
        return {
            "breaker": self.breaker.name,
            "tripped": self.breaker.is_tripped,
            "require_manual_reset": self.latched,
            "key_configured": self.key_configured,
            "failed_attempts": read.failed_attempts,
            "locked_out": read.lockout_remaining > 0,
            "lockout_remaining_seconds": read.lockout_remaining,
        }

    # ------------------------------------------------------------------ reset
    def reset(self, auth_key: Any, operator: str | None = None) -> bool:
        """Reset the kill switch with the operator key; True on success.

        Raises :class:`~haltgate.AuthorizationError` for a wrong key, while locked out,
        and when no key hash is configured.
        """
        if operator is not None:
            operator = to_text(operator, "operator")
        try:
            # The store's hash is the authority (a rotation elsewhere applies at once).
            key_hash = stored_keys(self._guard.store).get(self.breaker.name, self._key_hash)
            record = self._guard.check(auth_key, key_hash, operator)
        except KeyRefusedError as refused:
            self._announce(
                f"Kill switch reset refused: {refused}",
                {"outcome": refused.outcome, **refused.payload},
                operator,
            )
            raise
        was_tripped = self.breaker.state.value != "NORMAL"
        self.breaker.reset(operator=operator, reason="Kill switch reset with a valid key")
        if not was_tripped:
            self._announce("Kill switch reset authorized (it was not tripped)", record, operator)
        return True

    # ------------------------------------------------------------------ internals
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
