"""The breaker against a plain reference model of SPEC §4, on random call sequences."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from cb_support import Boom, make
from hypothesis import given, settings
from hypothesis import strategies as st

from haltgate import CircuitOpenException, CircuitState, ManualClock

WINDOW = 60.0


@dataclass
class Model:
    """SPEC §4 written as directly as possible (single caller, calls take no time)."""

    failure_threshold: int
    minimum_calls: int
    rate: float
    success_threshold: int
    base_timeout: float
    multiplier: float
    cap: float
    state: str = "closed"
    consecutive: int = 0
    events: list[tuple[float, bool]] = field(default_factory=list)
    timeout: float = 0.0
    open_until: float = 0.0
    probe_successes: int = 0

    def __post_init__(self) -> None:
        self.timeout = self.base_timeout

    def _open(self, now: float, from_half_open: bool) -> None:
        if from_half_open:
            self.timeout = min(self.timeout * self.multiplier, self.cap)
        self.open_until = now + self.timeout
        self.state = "open"

    def call(self, now: float, outcome: str) -> bool:
        """Apply one call; returns whether it was admitted."""
        if self.state == "open":
            if now < self.open_until:
                return False
            self.state = "half_open"
            self.probe_successes = 0
        if self.state == "half_open":
            if outcome == "success":
                self.probe_successes += 1
                if self.probe_successes >= self.success_threshold:
                    self.state = "closed"
                    self.consecutive = 0
                    self.events = []
                    self.timeout = self.base_timeout
            elif outcome == "failure":
                self._open(now, from_half_open=True)
            return True
        if outcome == "ignored":
            return True
        failed = outcome == "failure"
        self.events.append((now, failed))
        if not failed:
            self.consecutive = 0
            return True
        self.consecutive += 1
        if self.consecutive >= self.failure_threshold:
            self._open(now, from_half_open=False)
            return True
        window = [f for t, f in self.events if now - WINDOW < t <= now]
        if len(window) >= self.minimum_calls and sum(window) >= self.rate * len(window):
            self._open(now, from_half_open=False)
        return True


steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.0, 0.5, 1.0, 5.0, 20.0, 61.0]),
        st.sampled_from(["success", "failure", "failure", "ignored"]),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    failure_threshold=st.integers(1, 6),
    minimum_calls=st.integers(1, 12),
    rate=st.sampled_from(["0.25", "0.5", "0.75", "1"]),
    success_threshold=st.integers(1, 4),
)
def test_breaker_follows_the_model(
    steps: list[tuple[float, str]],
    failure_threshold: int,
    minimum_calls: int,
    rate: str,
    success_threshold: int,
) -> None:
    clock = ManualClock()
    breaker = make(
        clock,
        failure_threshold=failure_threshold,
        minimum_calls=minimum_calls,
        failure_rate_threshold=rate,
        success_threshold=success_threshold,
        half_open_max_calls=1,
        open_timeout_seconds=10,
        backoff_multiplier=2,
        max_backoff_seconds=45,
        failure_window_seconds=WINDOW,
        ignore_exceptions=KeyError,
    )
    model = Model(failure_threshold, minimum_calls, float(rate), success_threshold, 10, 2, 45)
    for advance, outcome in steps:
        clock.advance(advance)
        now = clock.monotonic()

        def protected(outcome: str = outcome) -> str:
            if outcome == "failure":
                raise Boom("down")
            if outcome == "ignored":
                raise KeyError("not ours")
            return "ok"

        admitted = model.call(now, outcome)
        if admitted:
            if outcome == "success":
                assert breaker.call_sync(protected) == "ok"
            else:
                with pytest.raises((Boom, KeyError)):
                    breaker.call_sync(protected)
        else:
            with pytest.raises(CircuitOpenException) as caught:
                breaker.call_sync(protected)
            assert caught.value.retry_after == pytest.approx(model.open_until - now)
        assert breaker.state is CircuitState(model.state), (advance, outcome)
        assert breaker.get_status()["open_timeout_seconds"] == model.timeout
