"""HALF_OPEN permits under threads and asyncio, permits handed back, no lock while the
protected function runs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from cb_support import fail, make

from haltgate import CircuitBreaker, CircuitOpenException, CircuitState, ManualClock

CALLERS = 20
DEADLINE = 10.0  # seconds: bound for waiting on real threads


def half_open(max_calls: int, **settings: object) -> tuple[CircuitBreaker, ManualClock]:
    """A breaker opened once, with its open timeout just passed (next call probes)."""
    clock = ManualClock()
    breaker = make(
        clock,
        failure_threshold=1,
        open_timeout_seconds=10,
        half_open_max_calls=max_calls,
        success_threshold=max_calls,
        **settings,
    )
    fail(breaker)
    clock.advance(10)
    return breaker, clock


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


@pytest.mark.parametrize("max_calls", [1, 3])
def test_threads_at_most_half_open_max_calls_reach_the_function(max_calls: int) -> None:
    breaker, _ = half_open(max_calls)
    release = threading.Event()
    start = threading.Barrier(CALLERS)
    lock = threading.Lock()
    inside = [0]
    peak = [0]
    entered = [0]
    refused: list[CircuitOpenException] = []
    done = [0]

    def probe() -> str:
        with lock:
            entered[0] += 1
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        release.wait(DEADLINE)
        with lock:
            inside[0] -= 1
        return "ok"

    def caller() -> None:
        start.wait()
        try:
            breaker.call_sync(probe)
        except CircuitOpenException as exc:
            with lock:
                refused.append(exc)
        with lock:
            done[0] += 1

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    # Every caller is either inside the function (holding a permit) or refused.
    wait_until(lambda: len(refused) + entered[0] == CALLERS, "callers to settle")
    assert entered[0] == max_calls
    assert len(refused) == CALLERS - max_calls
    assert all(exc.state is CircuitState.HALF_OPEN for exc in refused)
    release.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert done[0] == CALLERS
    assert peak[0] == max_calls
    assert breaker.state is CircuitState.CLOSED  # the max_calls probes all succeeded


@pytest.mark.parametrize("max_calls", [1, 3])
def test_asyncio_at_most_half_open_max_calls_reach_the_function(max_calls: int) -> None:
    breaker, _ = half_open(max_calls)

    async def scenario() -> None:
        release = asyncio.Event()
        entered = 0

        async def probe() -> str:
            nonlocal entered
            entered += 1
            await release.wait()
            return "ok"

        async def caller() -> str:
            try:
                return str(await breaker.call(probe))
            except CircuitOpenException:
                return "refused"

        tasks = [asyncio.create_task(caller()) for _ in range(CALLERS)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert entered == max_calls
        release.set()
        results = await asyncio.gather(*tasks)
        assert results.count("ok") == max_calls
        assert results.count("refused") == CALLERS - max_calls

    asyncio.run(scenario())
    assert breaker.state is CircuitState.CLOSED


def test_a_cancelled_probe_hands_its_permit_back() -> None:
    breaker, _ = half_open(1)

    async def scenario() -> None:
        async def hangs() -> None:
            await asyncio.Event().wait()

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(breaker.call(hangs), timeout=0.01)
        status = breaker.get_status()
        assert status["state"] == "half_open"
        assert status["half_open_in_flight"] == 0  # the permit came back
        assert status["half_open_successes"] == 0  # a cancellation is no success...
        assert status["total_failures"] == 1  # ...and no failure (1 = the trip)

        async def fine() -> str:
            return "ok"

        assert await breaker.call(fine) == "ok"  # the next probe is admitted

    asyncio.run(scenario())
    assert breaker.state is CircuitState.CLOSED


def test_an_ignored_probe_hands_its_permit_back() -> None:
    breaker, _ = half_open(1, ignore_exceptions=KeyError)

    def not_our_concern() -> None:
        raise KeyError("insufficient funds")

    with pytest.raises(KeyError):
        breaker.call_sync(not_our_concern)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.get_status()["half_open_in_flight"] == 0
    assert breaker.call_sync(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_a_refused_caller_does_not_take_a_permit() -> None:
    breaker, _ = half_open(1)
    inner: list[object] = []

    def probe() -> str:
        for _ in range(3):
            with pytest.raises(CircuitOpenException):
                breaker.call_sync(lambda: "never")
        inner.append(breaker.get_status()["half_open_in_flight"])
        return "ok"

    assert breaker.call_sync(probe) == "ok"
    assert inner == [1]
    assert breaker.is_closed


def _eight_concurrent_calls(breaker: CircuitBreaker) -> float:
    start = threading.Barrier(8)

    def io_call() -> str:
        time.sleep(0.02)  # stands for 20 ms of broker I/O
        return "ok"

    def caller() -> None:
        start.wait()
        assert breaker.call_sync(io_call) == "ok"

    threads = [threading.Thread(target=caller) for _ in range(8)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    return time.perf_counter() - began


@pytest.mark.parametrize(
    "settings",
    [{}, {"failure_result": lambda r: r != "ok", "slow_call_seconds": 5}],
    ids=["fast-path", "general-path"],
)
def test_no_lock_is_held_while_the_function_runs(settings: dict[str, object]) -> None:
    breaker = CircuitBreaker("io", config=make(**settings).config)  # real clock
    elapsed = min(_eight_concurrent_calls(breaker) for _ in range(3))
    # Serialised, 8 x 20 ms = 160 ms; run concurrently, about 20 ms plus thread start-up.
    assert elapsed < 0.08, f"8 concurrent 20 ms calls took {elapsed * 1000:.0f} ms"
    assert breaker.get_status()["total_successes"] == 24


def test_half_open_probes_run_concurrently_too() -> None:
    breaker = CircuitBreaker(
        "io",
        config=make(failure_threshold=1, open_timeout_seconds=0.001, half_open_max_calls=8).config,
    )
    fail(breaker)
    time.sleep(0.002)  # real clock: let the 1 ms open timeout pass
    elapsed = _eight_concurrent_calls(breaker)
    assert elapsed < 0.08, f"8 concurrent 20 ms probes took {elapsed * 1000:.0f} ms"
    assert breaker.is_closed  # 8 >= success_threshold 3


def test_many_threads_keep_the_counts_exact() -> None:
    breaker = CircuitBreaker("counts", config=make(failure_threshold=10**6).config)
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        for _ in range(2000):
            breaker.call_sync(lambda: 1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    status = breaker.get_status()
    assert status["total_successes"] == 8000
    assert status["window_calls"] == 8000
