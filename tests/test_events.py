"""Listeners: sync and async, isolated from each other and from trading."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from haltgate import (
    BreakerEvent,
    CircuitBreakerManager,
    CircuitBreakerState,
    DrawdownCircuitBreaker,
    HaltgateError,
    ManualCircuitBreaker,
    ManualClock,
)


def test_sync_listener_gets_every_field(clock: ManualClock) -> None:
    breaker = ManualCircuitBreaker(clock=clock)
    seen: list[BreakerEvent] = []
    breaker.add_listener(seen.append)
    breaker.trigger_halt("stop", "alice")
    [event] = seen
    assert event.kind == "halted"
    assert event.breaker_name == "manual"
    assert event.breaker_type == "manual"
    assert event.previous_state is CircuitBreakerState.NORMAL
    assert event.state is CircuitBreakerState.MANUALLY_HALTED
    assert event.reason == "stop"
    assert event.operator == "alice"
    assert dict(event.details) == {}
    assert event.timestamp == clock.now()


def test_listener_must_be_callable() -> None:
    breaker = ManualCircuitBreaker()
    with pytest.raises(HaltgateError, match="callback"):
        breaker.add_listener("not callable")  # type: ignore[arg-type]


def test_failing_listener_is_logged_and_changes_nothing(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(DrawdownCircuitBreaker("0.10"))
    before: list[BreakerEvent] = []
    after: list[BreakerEvent] = []

    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener bug")

    manager.add_listener(before.append)
    manager.add_listener(broken)
    manager.add_listener(after.append)
    with caplog.at_level(logging.ERROR, logger="haltgate.events"):
        assert manager.can_trade(current_portfolio_value=100)
        assert not manager.can_trade(current_portfolio_value=80)  # the trip itself works
    assert [e.kind for e in before] == ["tripped"]
    assert [e.kind for e in after] == ["tripped"]
    failures = [r for r in caplog.records if r.getMessage() == "listener_failed"]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "listener bug" in str(failures[0].exc_info[1])
    assert manager.get_status() == {"drawdown": "TRIPPED"}
    manager.reset("drawdown", operator="ops")  # resets work with the broken listener too
    assert manager.get_status() == {"drawdown": "NORMAL"}
    assert [e.state for e in after][-2:] == [
        CircuitBreakerState.RESETTING,
        CircuitBreakerState.NORMAL,
    ]


def test_async_listener_is_awaited_in_the_running_loop(clock: ManualClock) -> None:
    breaker = ManualCircuitBreaker(clock=clock)
    seen: list[tuple[str, int]] = []

    async def main() -> None:
        done = asyncio.Event()
        loop_thread = threading.get_ident()

        async def listener(event: BreakerEvent) -> None:
            await asyncio.sleep(0)  # really a coroutine that suspends
            seen.append((event.kind, threading.get_ident()))
            if event.state is CircuitBreakerState.NORMAL:
                done.set()

        breaker.add_listener(listener)
        breaker.trigger_halt("stop", "ops")
        breaker.reset(operator="ops")
        await asyncio.wait_for(done.wait(), timeout=5)
        assert {thread for _kind, thread in seen} == {loop_thread}

    asyncio.run(main())
    assert [kind for kind, _t in seen] == ["halted", "reset", "reset"]


def test_async_listener_runs_when_emitted_from_plain_sync_code(clock: ManualClock) -> None:
    breaker = ManualCircuitBreaker(clock=clock)
    received = threading.Event()
    seen: list[str] = []

    async def listener(event: BreakerEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.kind)
        received.set()

    breaker.add_listener(listener)
    breaker.trigger_halt("stop", "ops")  # no event loop in this thread
    assert received.wait(timeout=5)  # delivered by haltgate's background loop
    assert seen == ["halted"]


def test_failing_async_listener_is_logged(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = ManualCircuitBreaker(clock=clock)
    later = threading.Event()

    async def broken(event: BreakerEvent) -> None:
        raise RuntimeError("async listener bug")

    async def fine(event: BreakerEvent) -> None:
        later.set()

    breaker.add_listener(broken)
    breaker.add_listener(fine)
    with caplog.at_level(logging.ERROR, logger="haltgate.events"):
        breaker.trigger_halt("stop", "ops")
        assert later.wait(timeout=5)
    assert breaker.state is CircuitBreakerState.MANUALLY_HALTED
    assert any(r.getMessage() == "listener_failed" for r in caplog.records)


def test_breaker_logs_stable_event_names(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = DrawdownCircuitBreaker("0.10", clock=clock)
    with caplog.at_level(logging.INFO, logger="haltgate"):
        breaker.update(100)
        breaker.update(50)
        breaker.reset(operator="ops")
        breaker.trigger_halt("x", "ops")
    names = [r.getMessage() for r in caplog.records]
    assert names == ["circuit_breaker_tripped", "circuit_breaker_reset", "circuit_breaker_halted"]
    tripped = caplog.records[0]
    assert tripped.breaker == "drawdown"  # type: ignore[attr-defined]
    assert tripped.state == "TRIPPED"  # type: ignore[attr-defined]


def _events(manager: CircuitBreakerManager) -> list[Any]:
    seen: list[Any] = []
    manager.add_listener(seen.append)
    return seen


def test_manager_forwards_breaker_events_and_can_remove_listeners(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(ManualCircuitBreaker())
    seen = _events(manager)
    manager.halt_all("stop", "ops")
    manager.remove_listener(seen.append)
    manager.reset_all(operator="ops")
    assert [e.kind for e in seen] == ["halted"]
