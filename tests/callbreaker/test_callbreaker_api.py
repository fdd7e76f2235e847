"""The ways in: call, call_sync, decorator, with / async with; callbacks and listeners."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading

import pytest
from cb_support import Boom, boom, fail, make, ok

from haltgate import (
    BreakerEvent,
    CircuitBreaker,
    CircuitOpenError,
    CircuitOpenException,
    CircuitState,
    CircuitType,
    EventKind,
    ManualClock,
)


def test_async_call_runs_coroutine_functions_and_plain_functions() -> None:
    breaker = make(failure_threshold=2)

    async def fetch(symbol: str, *, qty: int) -> str:
        await asyncio.sleep(0)
        return f"{symbol}:{qty}"

    async def afail() -> None:
        raise Boom("down")

    async def scenario() -> None:
        assert await breaker.call(fetch, "SPY", qty=3) == "SPY:3"
        assert await breaker.call(ok) == "ok"  # a plain function
        assert await breaker.call(functools.partial(fetch, "QQQ", qty=1)) == "QQQ:1"
        with pytest.raises(Boom):
            await breaker.call(afail)
        with pytest.raises(Boom):
            await breaker.call(boom)
        assert breaker.is_open
        with pytest.raises(CircuitOpenException):
            await breaker.call(fetch, "SPY", qty=1)

    asyncio.run(scenario())


def test_async_call_general_path() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, slow_call_seconds=1)

    async def slow() -> str:
        clock.advance(2)
        return "late"

    async def scenario() -> None:
        assert await breaker.call(slow) == "late"
        assert breaker.is_open

    asyncio.run(scenario())


def test_call_sync_passes_arguments_and_results() -> None:
    breaker = make()
    assert breaker.call_sync(lambda a, b=0: a + b, 2, b=3) == 5
    assert breaker.call_sync(dict, x=1) == {"x": 1}


def test_decorator_on_sync_functions() -> None:
    breaker = make(failure_threshold=2)

    @breaker
    def get_positions(account: str) -> list[str]:
        """Positions of an account."""
        if account == "bad":
            raise Boom("down")
        return ["SPY"]

    assert get_positions.__name__ == "get_positions"
    assert get_positions.__doc__ == "Positions of an account."
    assert get_positions("main") == ["SPY"]
    for _ in range(2):
        with pytest.raises(Boom):
            get_positions("bad")
    with pytest.raises(CircuitOpenException):
        get_positions("main")


def test_decorator_on_async_functions() -> None:
    breaker = make(failure_threshold=1)
    calls: list[str] = []

    @breaker
    async def submit(symbol: str) -> str:
        calls.append(symbol)
        if symbol == "bad":
            raise Boom("rejected")
        return "accepted"

    async def scenario() -> None:
        assert asyncio.iscoroutinefunction(submit)
        assert await submit("SPY") == "accepted"
        with pytest.raises(Boom):
            await submit("bad")
        with pytest.raises(CircuitOpenError):
            await submit("SPY")

    asyncio.run(scenario())
    assert calls == ["SPY", "bad"]


def test_decorator_refuses_non_callables() -> None:
    with pytest.raises(TypeError):
        make()(42)  # type: ignore[call-overload]


def test_with_block_records_its_outcome() -> None:
    breaker = make(failure_threshold=2)
    with breaker:
        pass
    assert breaker.get_status()["total_successes"] == 1
    for _ in range(2):
        with pytest.raises(Boom), breaker:
            raise Boom("down")  # propagates: the breaker never swallows it
    assert breaker.is_open
    ran: list[int] = []
    with pytest.raises(CircuitOpenException), breaker:
        ran.append(1)  # refused on enter: the body never runs
    assert ran == []


def test_with_block_as_probe_and_permit() -> None:
    clock = ManualClock()
    breaker = make(
        clock,
        failure_threshold=1,
        open_timeout_seconds=5,
        half_open_max_calls=1,
        success_threshold=1,
    )
    fail(breaker)
    clock.advance(5)
    with breaker as entered:
        assert entered is breaker
        with pytest.raises(CircuitOpenException):  # the one permit is taken
            breaker.call_sync(ok)
    assert breaker.is_closed


def test_nested_with_blocks_of_two_breakers() -> None:
    outer = make(failure_threshold=1)
    inner = make(failure_threshold=1)
    with pytest.raises(Boom), outer:
        with inner:
            pass
        raise Boom("outer only")
    assert outer.is_open and inner.is_closed


def test_with_blocks_in_threads_keep_their_own_admissions() -> None:
    breaker = make(failure_threshold=10**6, failure_rate_threshold=1)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(200):
                if index % 2:
                    with breaker:
                        pass
                else:
                    with pytest.raises(Boom), breaker:
                        raise Boom("x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    status = breaker.get_status()
    assert (status["total_successes"], status["total_failures"]) == (400, 400)


def test_async_with_block() -> None:
    breaker = make(failure_threshold=1)

    async def scenario() -> None:
        async with breaker:
            await asyncio.sleep(0)
        with pytest.raises(Boom):
            async with breaker:
                raise Boom("down")
        assert breaker.is_open
        ran: list[int] = []
        with pytest.raises(CircuitOpenException):
            async with breaker:
                ran.append(1)
        assert ran == []

    asyncio.run(scenario())
    status = breaker.get_status()
    assert (status["total_successes"], status["total_failures"]) == (1, 1)


def test_async_with_blocks_in_concurrent_tasks() -> None:
    breaker = make(failure_threshold=10**6, failure_rate_threshold=1)

    async def task(fails: bool) -> None:
        for _ in range(50):
            try:
                async with breaker:
                    await asyncio.sleep(0)
                    if fails:
                        raise Boom("x")
            except Boom:
                pass

    async def scenario() -> None:
        await asyncio.gather(*(task(i % 2 == 0) for i in range(6)))

    asyncio.run(scenario())
    status = breaker.get_status()
    assert (status["total_successes"], status["total_failures"]) == (150, 150)


def test_callbacks_receive_name_and_type() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(
        "broker_api",
        CircuitType.RATE_LIMIT,
        make(failure_threshold=1, open_timeout_seconds=1, success_threshold=1).config,
        clock=clock,
    )
    seen: list[tuple[str, str, CircuitType]] = []
    breaker.register_trip_callback(lambda name, kind: seen.append(("trip", name, kind)))
    breaker.register_recovery_callback(lambda name, kind: seen.append(("recovery", name, kind)))
    fail(breaker)
    clock.advance(1)
    assert breaker.call_sync(ok) == "ok"
    breaker.force_open()
    breaker.force_close()
    assert seen == [
        ("trip", "broker_api", CircuitType.RATE_LIMIT),
        ("recovery", "broker_api", CircuitType.RATE_LIMIT),
        ("trip", "broker_api", CircuitType.RATE_LIMIT),
        ("recovery", "broker_api", CircuitType.RATE_LIMIT),
    ]


def test_async_callbacks_run_on_the_running_loop() -> None:
    breaker = make(failure_threshold=1)
    seen: list[str] = []

    async def on_trip(name: str, kind: CircuitType) -> None:
        await asyncio.sleep(0)
        seen.append(name)

    breaker.register_trip_callback(on_trip)

    async def scenario() -> None:
        with pytest.raises(Boom):
            await breaker.call(boom)
        for _ in range(5):
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert seen == ["api"]


def test_async_callbacks_from_sync_code_run_in_the_background() -> None:
    breaker = make(failure_threshold=1)
    done = threading.Event()
    seen: list[str] = []

    async def on_trip(name: str, kind: CircuitType) -> None:
        seen.append(name)
        done.set()

    breaker.register_trip_callback(on_trip)
    fail(breaker)
    assert done.wait(5)
    assert seen == ["api"]


def test_a_failing_callback_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    breaker = make(failure_threshold=1)
    seen: list[str] = []

    def broken(name: str, kind: CircuitType) -> None:
        raise RuntimeError("pager down")

    breaker.register_trip_callback(broken)
    breaker.register_trip_callback(lambda name, kind: seen.append(name))
    with caplog.at_level(logging.ERROR, logger="haltgate"):
        fail(breaker)  # the caller sees its own Boom, not the callback's error
    assert seen == ["api"]
    assert breaker.is_open
    assert any(r.getMessage() == "listener_failed" for r in caplog.records)


def test_a_failing_async_callback_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    breaker = make(failure_threshold=1)
    seen: list[str] = []

    async def broken(name: str, kind: CircuitType) -> None:
        raise RuntimeError("pager down")

    breaker.register_trip_callback(broken)
    breaker.register_trip_callback(lambda name, kind: seen.append(name))

    async def scenario() -> None:
        with pytest.raises(Boom):
            await breaker.call(boom)
        for _ in range(5):
            await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="haltgate"):
        asyncio.run(scenario())
    assert seen == ["api"]
    assert any(r.getMessage() == "listener_failed" for r in caplog.records)


def test_callbacks_must_be_callable() -> None:
    breaker = make()
    with pytest.raises(TypeError):
        breaker.register_trip_callback("alert")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        breaker.register_recovery_callback(None)  # type: ignore[arg-type]


def test_listeners_receive_breaker_events() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, open_timeout_seconds=1, success_threshold=1)
    events: list[BreakerEvent] = []
    breaker.add_listener(events.append)
    fail(breaker)
    clock.advance(1)
    breaker.call_sync(ok)
    assert [(e.kind, e.previous_state, e.state) for e in events] == [
        (EventKind.TRIPPED, CircuitState.CLOSED, CircuitState.OPEN),
        (EventKind.RESET, CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    assert events[0].breaker_name == "api"
    assert events[0].breaker_type is CircuitType.CONNECTION_FAILURE
    assert events[0].timestamp.tzinfo is not None
    assert events[0].details["consecutive_failures"] == 1
    assert events[0].to_dict()["state"] == "open"
    breaker.remove_listener(events.append)
    fail(breaker)
    assert len(events) == 2


def test_transitions_are_logged_with_stable_names(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, open_timeout_seconds=1, success_threshold=1)
    with caplog.at_level(logging.INFO, logger="haltgate.callbreaker"):
        fail(breaker)
        clock.advance(1)
        breaker.call_sync(ok)
        breaker.force_open()
    assert [r.getMessage() for r in caplog.records] == [
        "call_breaker_opened",
        "call_breaker_half_open",
        "call_breaker_closed",
        "call_breaker_forced_open",
    ]
    assert caplog.records[0].breaker == "api"  # type: ignore[attr-defined]


def test_circuit_open_exception_carries_name_state_retry_after() -> None:
    breaker = make(failure_threshold=1, open_timeout_seconds=7)
    fail(breaker)
    with pytest.raises(CircuitOpenException) as caught:
        breaker.call_sync(ok)
    exc = caught.value
    assert (exc.name, exc.state, exc.retry_after) == ("api", CircuitState.OPEN, 7.0)
    assert str(exc) == "circuit 'api' is open; retry after 7.000s"
