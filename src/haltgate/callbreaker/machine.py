"""The call breaker's state machine: admission, outcomes and transitions.

Every transition happens under one short lock and bumps an *epoch* number. A call remembers
the epoch it was admitted in; its outcome only counts while that epoch is current, so a call
that started before a transition never moves the new state. The protected function always
runs with the lock released. Callbacks, listeners and logging run after the lock is released.

The CLOSED state is read without the lock on the success path. Writers keep the order that
makes that safe: leaving CLOSED clears the ``_closed_fast`` flag *before* bumping the epoch,
entering CLOSED bumps the epoch *before* setting the flag. A reader loads the epoch first,
then the flag, so "flag set and epoch still current when the call finishes" implies the call
ran in that CLOSED epoch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from ..clock import Clock, SystemClock
from ..errors import CircuitOpenException, InvalidTypeError
from ..events import BreakerEvent, EventKind, Listener, ListenerSet, call_isolated
from ..filters import CompiledFilter, compile_filter
from ..values import to_text
from .config import CircuitBreakerConfig
from .metrics import OutcomeWindow
from .state import CircuitState, CircuitType

__all__ = ["FAILURE", "IGNORED", "SUCCESS", "CallStateMachine", "StateCallback"]

logger = logging.getLogger("haltgate.callbreaker")

CLOSED: Final = CircuitState.CLOSED
OPEN: Final = CircuitState.OPEN
HALF_OPEN: Final = CircuitState.HALF_OPEN
FORCED_OPEN: Final = CircuitState.FORCED_OPEN

# Outcome of one finished call.
SUCCESS: Final = 0
FAILURE: Final = 1
IGNORED: Final = 2

StateCallback = Callable[[str, CircuitType], Any]
"""``cb(name, circuit_type)``; may return an awaitable."""

_EVENT_KINDS = {OPEN: EventKind.TRIPPED, FORCED_OPEN: EventKind.HALTED, CLOSED: EventKind.RESET}
_LOG = {
    OPEN: ("call_breaker_opened", logging.ERROR),
    FORCED_OPEN: ("call_breaker_forced_open", logging.CRITICAL),
    HALF_OPEN: ("call_breaker_half_open", logging.INFO),
    CLOSED: ("call_breaker_closed", logging.WARNING),
}


class _Transition:
    """One state change, recorded under the lock and published after it."""

    __slots__ = ("details", "operator", "previous", "reason", "state")

    def __init__(
        self,
        previous: CircuitState,
        state: CircuitState,
        reason: str,
        details: dict[str, Any],
        operator: str | None,
    ) -> None:
        self.previous = previous
        self.state = state
        self.reason = reason
        self.details = details
        self.operator = operator


def _describe(cause: BaseException | str) -> str:
    """A short text for a failure (formatted only when a transition needs it)."""
    if isinstance(cause, str):
        return cause
    return f"{type(cause).__name__}: {cause!s:.200}"


class CallStateMachine:
    """CLOSED / OPEN / HALF_OPEN / FORCED_OPEN with epochs; the core of ``CircuitBreaker``."""

    __slots__ = (
        "_closed_fast",
        "_consecutive",
        "_epoch",
        "_failure_result",
        "_fast_success",
        "_half_open_max",
        "_ignore",
        "_listeners",
        "_lock",
        "_monotonic",
        "_open_timeout",
        "_open_until",
        "_opened_at",
        "_probe_successes",
        "_probes",
        "_rate_den",
        "_rate_num",
        "_record",
        "_record_all",
        "_recovery_callbacks",
        "_state",
        "_successes",
        "_totals",
        "_trip_callbacks",
        "_window",
        "circuit_type",
        "clock",
        "config",
        "name",
    )

    def __init__(
        self,
        name: str,
        circuit_type: CircuitType | str = CircuitType.CONNECTION_FAILURE,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.name: str = to_text(name, "name")
        try:
            self.circuit_type = CircuitType(circuit_type)
        except ValueError:
            raise InvalidTypeError("circuit_type", circuit_type, "must be a CircuitType") from None
        if config is None:
            config = CircuitBreakerConfig()
        elif not isinstance(config, CircuitBreakerConfig):
            raise InvalidTypeError("config", config, "must be a CircuitBreakerConfig")
        if clock is not None and not (hasattr(clock, "monotonic") and hasattr(clock, "now")):
            raise InvalidTypeError("clock", clock, "must have monotonic() and now()")
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._monotonic: Callable[[], float] = self.clock.monotonic
        rate = config.failure_rate_threshold
        assert isinstance(rate, Decimal)
        self._rate_num, self._rate_den = rate.as_integer_ratio()
        assert config.half_open_max_calls is not None  # resolved by the config
        self._half_open_max: int = config.half_open_max_calls
        self._record = compile_filter(
            config.record_exceptions, "record_exceptions", match_counts=True, allow_empty=True
        )
        self._record_all = config.record_exceptions in (Exception, (Exception,))
        self._ignore = compile_filter(
            config.ignore_exceptions, "ignore_exceptions", match_counts=False, allow_empty=True
        )
        self._failure_result = (
            None
            if config.failure_result is None
            else CompiledFilter(
                "failure_result", match_counts=True, predicate=config.failure_result
            )
        )
        # Success needs no timing and no result check: the hot path can skip both.
        self._fast_success = config.slow_call_seconds is None and config.failure_result is None
        self._lock = threading.Lock()
        self._state = CLOSED
        self._epoch = 0
        self._closed_fast = self._fast_success
        self._consecutive = 0
        self._window = OutcomeWindow(config.failure_window_seconds)
        self._open_timeout = config.open_timeout_seconds
        self._open_until = 0.0
        self._opened_at: Any = None
        self._probes: list[float] = []
        self._probe_successes = 0
        # [unused, failures, ignored, rejected, stale (outcomes of an earlier epoch)], indexed
        # by outcome; successes have their own counter for the hot path.
        self._totals = [0, 0, 0, 0, 0]
        self._successes = 0
        self._trip_callbacks: tuple[StateCallback, ...] = ()
        self._recovery_callbacks: tuple[StateCallback, ...] = ()
        self._listeners = ListenerSet()

    # ------------------------------------------------------------------ transitions
    def _enter_locked(
        self,
        state: CircuitState,
        reason: str,
        details: dict[str, Any],
        operator: str | None,
        out: list[_Transition],
    ) -> None:
        previous = self._state
        if state is CLOSED:
            self._state = state
            self._epoch += 1
            self._consecutive = 0
            self._window.clear()
            self._open_timeout = self.config.open_timeout_seconds
            self._opened_at = None
            self._closed_fast = self._fast_success
        else:
            self._closed_fast = False
            self._state = state
            self._epoch += 1
        self._probes = []
        self._probe_successes = 0
        out.append(_Transition(previous, state, reason, details, operator))

    def _open_locked(
        self, now: float, reason: str, details: dict[str, Any], out: list[_Transition]
    ) -> None:
        config = self.config
        if self._state is HALF_OPEN and config.exponential_backoff:
            self._open_timeout = min(
                self._open_timeout * config.backoff_multiplier, config.max_backoff_seconds
            )
        self._open_until = now + self._open_timeout
        self._opened_at = self.clock.now()
        details["open_timeout_seconds"] = self._open_timeout
        self._enter_locked(OPEN, reason, details, None, out)

    def _refresh_locked(self, now: float, out: list[_Transition]) -> None:
        """Apply the transitions that time alone causes (OPEN → HALF_OPEN, stuck probes)."""
        state = self._state
        if state is OPEN and now >= self._open_until:
            self._enter_locked(
                HALF_OPEN,
                "open timeout passed; probing",
                {"open_timeout_seconds": self._open_timeout},
                None,
                out,
            )
        elif state is HALF_OPEN and self._probes:
            limit = self.config.half_open_timeout_seconds
            oldest = min(self._probes)
            if now - oldest >= limit:
                self._open_locked(
                    now,
                    f"half-open probe did not finish within {limit:g}s",
                    {"half_open_timeout_seconds": limit, "probes_in_flight": len(self._probes)},
                    out,
                )

    def _retry_after_locked(self, now: float) -> float | None:
        state = self._state
        if state is OPEN:
            return max(0.0, self._open_until - now)
        if state is HALF_OPEN and self._probes:
            return max(0.0, min(self._probes) + self.config.half_open_timeout_seconds - now)
        if state is FORCED_OPEN:
            return None
        return 0.0

    # ------------------------------------------------------------------ admission
    def _admit(self) -> tuple[int, float]:
        """Admit one call or raise :class:`CircuitOpenException`; returns (epoch, start)."""
        lock = self._lock
        while True:
            out: list[_Transition] | None = None
            lock.acquire()
            try:
                now = self._monotonic()
                state = self._state
                if state is CLOSED:
                    return self._epoch, now
                if state is OPEN and now < self._open_until:
                    # The common refusal, kept short: no transition, nothing to publish.
                    self._totals[3] += 1
                    retry_after: float | None = self._open_until - now
                    ticket = None
                elif state is FORCED_OPEN:
                    self._totals[3] += 1
                    retry_after = None
                    ticket = None
                else:
                    # Time may have moved the state (OPEN timeout, stuck probes).
                    out = []
                    self._refresh_locked(now, out)
                    state = self._state
                    if state is CLOSED:
                        ticket = (self._epoch, now)
                    elif state is HALF_OPEN and len(self._probes) < self._half_open_max:
                        self._probes.append(now)
                        ticket = (self._epoch, now)
                    else:
                        self._totals[3] += 1
                        retry_after = self._retry_after_locked(now)
                        ticket = None
            finally:
                lock.release()
            if out:
                # Publication runs outside the lock and may run user code (log handlers,
                # callbacks) that changes the state: then this admission no longer holds
                # (the transition dropped its permit) and is decided again.
                self._publish(out)
                if ticket is not None and ticket[0] != self._epoch:
                    continue
            if ticket is None:
                raise CircuitOpenException(self.name, state, retry_after)
            return ticket

    # ------------------------------------------------------------------ outcomes
    def _classify(self, exc: BaseException) -> int:
        """FAILURE or IGNORED for an exception raised by the protected function."""
        if isinstance(exc, asyncio.CancelledError):
            return IGNORED
        ignore = self._ignore
        if ignore is not None and ignore.matches(exc, self.name):
            return IGNORED
        if self._record_all:
            return FAILURE if isinstance(exc, Exception) else IGNORED
        record = self._record
        return FAILURE if record is not None and record.matches(exc, self.name) else IGNORED

    def _result_outcome(
        self, start: float, result: Any, now: float, check: bool
    ) -> tuple[int, str]:
        """SUCCESS or FAILURE for a call that returned ``result`` (checked when ``check``)."""
        slow = self.config.slow_call_seconds
        if slow is not None and now - start > slow:
            return FAILURE, f"slow call: {now - start:.3f}s > {slow:g}s"
        failure_result = self._failure_result
        if check and failure_result is not None and failure_result.matches(result, self.name):
            return FAILURE, f"failure result: {result!r:.200}"
        return SUCCESS, ""

    def _closed_success(self, epoch: int) -> None:
        """The success path of a call admitted while CLOSED with no timing to check: one
        clock read and one short lock (explicit acquire/release: a ``with`` block costs
        about twice as much here)."""
        now = self._monotonic()
        lock = self._lock
        lock.acquire()
        try:
            self._successes += 1
            if epoch == self._epoch:
                self._consecutive = 0
                self._window.record(now, False)
        finally:
            lock.release()

    def _finish_exception(self, epoch: int, start: float, exc: BaseException) -> None:
        self._finish(epoch, start, self._classify(exc), exc)

    def _finish_result(self, epoch: int, start: float, result: Any, check: bool = True) -> None:
        now = self._monotonic()
        outcome, why = self._result_outcome(start, result, now, check)
        self._finish(epoch, start, outcome, why, now)

    def _finish(
        self,
        epoch: int,
        start: float,
        outcome: int,
        cause: BaseException | str,
        now: float | None = None,
    ) -> None:
        """Apply one call's outcome if its epoch is still current."""
        out: list[_Transition] = []
        lock = self._lock
        lock.acquire()
        try:
            if now is None:
                now = self._monotonic()
            if epoch == self._epoch and self._state is HALF_OPEN:
                # A probe that finishes after half_open_timeout_seconds did not finish in
                # time, even if nobody looked meanwhile: re-open, and its outcome is stale.
                self._refresh_locked(now, out)
            if epoch == self._epoch:
                self._apply_locked(start, outcome, cause, now, out)
            else:
                self._totals[4] += 1
        finally:
            lock.release()
        if out:
            self._publish(out)

    def _apply_locked(
        self,
        start: float,
        outcome: int,
        cause: BaseException | str,
        now: float,
        out: list[_Transition],
    ) -> None:
        """Apply a current-epoch outcome (lock held)."""
        if outcome == SUCCESS:
            self._successes += 1
        else:
            self._totals[outcome] += 1
        state = self._state
        if state is CLOSED:
            if outcome == SUCCESS:
                self._consecutive = 0
                self._window.record(now, False)
            elif outcome == FAILURE:
                self._closed_failure_locked(now, cause, out)
        elif state is HALF_OPEN:
            # Every admitted probe holds one permit; hand it back.
            if start in self._probes:
                self._probes.remove(start)
            if outcome == SUCCESS:
                self._probe_successes += 1
                if self._probe_successes >= self.config.success_threshold:
                    self._enter_locked(
                        CLOSED,
                        f"{self._probe_successes} successful probes",
                        {"probe_successes": self._probe_successes},
                        None,
                        out,
                    )
            elif outcome == FAILURE:
                why = _describe(cause)
                self._open_locked(now, f"probe failed: {why}", {"last_failure": why}, out)

    def _closed_failure_locked(
        self, now: float, cause: BaseException | str, out: list[_Transition]
    ) -> None:
        self._consecutive += 1
        window = self._window
        window.record(now, True)
        config = self.config
        if self._consecutive >= config.failure_threshold:
            why = _describe(cause)
            self._open_locked(
                now,
                f"{self._consecutive} consecutive failures (threshold "
                f"{config.failure_threshold}); last: {why}",
                {
                    "consecutive_failures": self._consecutive,
                    "failure_threshold": config.failure_threshold,
                    "last_failure": why,
                },
                out,
            )
            return
        if window.calls_upper_bound() < config.minimum_calls:
            return
        calls, failures = window.counts(now)
        if calls >= config.minimum_calls and failures * self._rate_den >= self._rate_num * calls:
            why = _describe(cause)
            self._open_locked(
                now,
                f"failure rate {failures}/{calls} in {config.failure_window_seconds:g}s "
                f">= {config.failure_rate_threshold}; last: {why}",
                {
                    "window_calls": calls,
                    "window_failures": failures,
                    "failure_rate_threshold": str(config.failure_rate_threshold),
                    "last_failure": why,
                },
                out,
            )

    # ------------------------------------------------------------------ publication
    def _publish(self, transitions: list[_Transition]) -> None:
        listeners = self._listeners
        for change in transitions:
            state = change.state
            message, level = _LOG[state]
            logger.log(
                level,
                message,
                extra={
                    "breaker": self.name,
                    "circuit_type": self.circuit_type.value,
                    "previous_state": change.previous.value,
                    "state": state.value,
                    "reason": change.reason,
                    "operator": change.operator,
                },
            )
            kind = _EVENT_KINDS.get(state)
            if kind is None:
                continue
            if listeners:
                listeners.emit(
                    BreakerEvent(
                        kind=kind,
                        breaker_name=self.name,
                        breaker_type=self.circuit_type,
                        previous_state=change.previous,
                        state=state,
                        reason=change.reason,
                        timestamp=self.clock.now(),
                        details=change.details,
                        operator=change.operator,
                    )
                )
            callbacks = self._recovery_callbacks if state is CLOSED else self._trip_callbacks
            what = "recovery_callback" if state is CLOSED else "trip_callback"
            for callback in callbacks:
                call_isolated(callback, self.name, self.circuit_type, what=what)

    def _add_listener(self, callback: Listener) -> None:
        self._listeners.add(callback)
