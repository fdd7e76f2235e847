"""The shared state machine (BaseCircuitBreaker) and the operator's ManualCircuitBreaker."""

from __future__ import annotations

from typing import Any

import pytest

from haltgate import (
    BaseCircuitBreaker,
    CircuitBreakerState,
    CircuitBreakerType,
    HaltgateError,
    ManualCircuitBreaker,
    ManualClock,
)

NORMAL = CircuitBreakerState.NORMAL
TRIPPED = CircuitBreakerState.TRIPPED
HALTED = CircuitBreakerState.MANUALLY_HALTED
RESETTING = CircuitBreakerState.RESETTING


class Threshold(BaseCircuitBreaker):
    """A minimal custom breaker: trips when ``x`` is above 10."""

    def can_trade(self, x: int = 0) -> bool:  # type: ignore[override]
        if self.is_tripped:
            return False
        if x > 10:
            self._trip(reason=f"x={x} above 10", details={"threshold": 10, "observed": x})
            return False
        return True


def test_enums_match_the_spec() -> None:
    assert [s.value for s in CircuitBreakerState] == [
        "NORMAL",
        "TRIPPED",
        "MANUALLY_HALTED",
        "RESETTING",
    ]
    assert [t.value for t in CircuitBreakerType] == [
        "drawdown",
        "daily_loss",
        "order_rate",
        "error_rate",
        "manual",
        "position_concentration",
        "volatility",
        "connection",
        "custom",
    ]
    assert str(CircuitBreakerState.TRIPPED) == "TRIPPED"


def test_base_defaults(clock: ManualClock) -> None:
    breaker = BaseCircuitBreaker(clock=clock)
    assert breaker.breaker_type is CircuitBreakerType.CUSTOM
    assert breaker.name == "custom"
    assert breaker.state is NORMAL
    assert breaker.can_trade()
    assert breaker.get_trip_reason() is None
    assert breaker.get_trip_details() == {}
    assert breaker.clock is clock
    named = BaseCircuitBreaker("volatility", name="  vol-1  ")
    assert named.breaker_type is CircuitBreakerType.VOLATILITY
    assert named.name == "vol-1"


def test_trip_is_idempotent_and_keeps_the_first_reason(clock: ManualClock) -> None:
    breaker = Threshold(clock=clock)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    assert not breaker.can_trade(x=11)
    clock.advance(5)
    assert not breaker._trip("second reason")
    assert breaker.get_trip_reason() == "x=11 above 10"
    assert len(seen) == 1
    event = seen[0]
    assert (event.kind, event.previous_state, event.state) == ("tripped", NORMAL, TRIPPED)
    assert event.breaker_name == "custom"
    assert event.breaker_type is CircuitBreakerType.CUSTOM
    assert event.details == {"threshold": 10, "observed": 11}
    assert event.timestamp == breaker.get_trip_details()["tripped_at"]
    assert event.timestamp.tzinfo is not None


def test_trip_never_overrides_a_manual_halt_but_is_recorded_beneath_it(
    clock: ManualClock,
) -> None:
    # SPEC §3: a halt is a layer above the breaker's own condition.
    breaker = Threshold(clock=clock)
    breaker.trigger_halt("operator stop", "alice")
    assert breaker._trip("automatic")
    assert not breaker._trip("automatic again")  # idempotent: the first reason is kept
    assert breaker.state is HALTED
    assert breaker.get_trip_reason() == "operator stop"
    assert breaker.get_trip_details()["condition"]["reason"] == "automatic"


def test_halt_over_a_trip_keeps_the_previous_reason_in_details(clock: ManualClock) -> None:
    breaker = Threshold(clock=clock)
    breaker.can_trade(x=50)
    breaker.trigger_halt("taking over", "alice")
    details = breaker.get_trip_details()
    assert details["previous_reason"] == "x=50 above 10"
    assert details["operator"] == "alice"
    assert details["state"] == "MANUALLY_HALTED"


def test_reset_goes_through_resetting_and_listeners_see_it(clock: ManualClock) -> None:
    breaker = Threshold(clock=clock)
    states_seen_inside: list[CircuitBreakerState] = []
    events: list[Any] = []

    def listener(event: Any) -> None:
        events.append(event)
        states_seen_inside.append(event.state)

    breaker.add_listener(listener)
    breaker.can_trade(x=11)
    breaker.reset(operator="bob", reason="checked")
    assert [(e.kind, e.previous_state, e.state) for e in events] == [
        ("tripped", NORMAL, TRIPPED),
        ("reset", TRIPPED, RESETTING),
        ("reset", RESETTING, NORMAL),
    ]
    assert all(e.operator == "bob" and e.reason == "checked" for e in events[1:])
    assert events[1].details["cleared_reason"] == "x=11 above 10"
    assert events[1].details["cause"] == "manual"
    assert breaker.state is NORMAL
    assert breaker.get_trip_details() == {}


def test_reset_defaults_and_noop(clock: ManualClock) -> None:
    breaker = Threshold(clock=clock)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    breaker.reset()
    assert seen == []
    breaker.can_trade(x=11)
    breaker.reset()
    assert seen[-1].reason == "manual reset"
    assert seen[-1].operator is None


def test_manual_breaker_halt_and_reset(clock: ManualClock) -> None:
    breaker = ManualCircuitBreaker(clock=clock)
    assert breaker.breaker_type is CircuitBreakerType.MANUAL
    assert breaker.name == "manual"
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    breaker.trigger_halt(reason="flash crash", operator="trader_john")
    assert breaker.state is HALTED
    assert breaker.is_tripped
    assert not breaker.can_trade()
    assert breaker.get_trip_reason() == "flash crash"
    assert breaker.since == clock.now()
    clock.advance(10 * 86400)
    assert breaker.state is HALTED  # latched
    breaker.trigger_halt(reason="again", operator="x")  # already halted: nothing new
    assert breaker.get_trip_reason() == "flash crash"
    breaker.reset(operator="trader_john")
    assert breaker.state is NORMAL
    assert [(e.kind, e.state) for e in seen] == [
        ("halted", HALTED),
        ("reset", RESETTING),
        ("reset", NORMAL),
    ]
    assert seen[0].operator == "trader_john"


@pytest.mark.parametrize(("reason", "operator"), [("", "op"), ("why", "  "), (None, "op")])
def test_manual_halt_requires_reason_and_operator(reason: Any, operator: Any) -> None:
    breaker = ManualCircuitBreaker()
    with pytest.raises(HaltgateError):
        breaker.trigger_halt(reason, operator)
    assert breaker.state is NORMAL


def test_listener_can_be_removed(clock: ManualClock) -> None:
    breaker = ManualCircuitBreaker(clock=clock)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    breaker.add_listener(seen.append)  # twice: delivered once
    breaker.trigger_halt("a", "b")
    breaker.remove_listener(seen.append)
    breaker.reset()
    assert len(seen) == 1


def test_export_and_import_state_round_trip(clock: ManualClock) -> None:
    breaker = Threshold(clock=clock)
    breaker.can_trade(x=12)
    snapshot = breaker.export_state()
    assert snapshot["state"] == "TRIPPED"
    assert snapshot["trip"]["reason"] == "x=12 above 10"
    restored = Threshold(clock=clock)
    restored.import_state(snapshot)
    assert restored.state is TRIPPED
    assert restored.get_trip_reason() == "x=12 above 10"
    assert restored.get_trip_details()["tripped_at"] == clock.now()


def test_event_is_frozen_and_serialisable(clock: ManualClock) -> None:
    breaker = ManualCircuitBreaker(clock=clock)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    breaker.trigger_halt("stop", "ops")
    event = seen[0]
    with pytest.raises(AttributeError):
        event.reason = "changed"
    with pytest.raises(TypeError):
        event.details["x"] = 1
    as_dict = event.to_dict()
    assert as_dict["kind"] == "halted"
    assert as_dict["state"] == "MANUALLY_HALTED"
    assert as_dict["previous_state"] == "NORMAL"
    assert as_dict["breaker_type"] == "manual"
    assert as_dict["timestamp"] == clock.now().isoformat()
