"""Many threads and many asyncio tasks at once: exact counts, no exception, no lost event."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from haltgate import (
    BreakerEvent,
    CircuitBreakerManager,
    CircuitBreakerState,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    ManualClock,
    OrderRateCircuitBreaker,
)

THREADS = 32


def run_threads(n: int, target: Callable[[int], None]) -> list[BaseException]:
    """Start ``n`` threads together; return every exception they raised."""
    barrier = threading.Barrier(n)
    failures: list[BaseException] = []
    lock = threading.Lock()

    def body(i: int) -> None:
        barrier.wait()
        try:
            target(i)
        except BaseException as exc:  # collected and asserted on below
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    return failures


def test_threads_hammering_record_order_and_record_error_get_exact_counts(
    clock: ManualClock,
) -> None:
    manager = CircuitBreakerManager(clock=clock)
    per_minute = OrderRateCircuitBreaker(1000, window_seconds=60, name="per_minute")
    per_hour = OrderRateCircuitBreaker(1500, window_seconds=3600, name="per_hour")
    errors = ErrorRateCircuitBreaker(10**6, window_seconds=300)
    manager.add_breaker(per_minute)
    manager.add_breaker(per_hour)
    manager.add_breaker(errors)
    manager.add_breaker(DrawdownCircuitBreaker("0.5"))
    admitted = Counter[int]()
    reads = Counter[int]()

    def worker(i: int) -> None:
        for _ in range(100):
            if manager.record_order():
                admitted[i] += 1
            manager.record_error(TimeoutError("x") if i % 2 else None)
            if manager.can_trade(current_portfolio_value=1000 + i):
                reads[i] += 1

    assert run_threads(THREADS, worker) == []
    assert sum(admitted.values()) == 1000  # exactly the slots of the tighter window
    assert per_minute.get_order_count() == 1000
    assert per_hour.get_order_count() == 1000  # atomic: no order recorded in one window only
    assert errors.get_error_count() == THREADS * 100
    assert errors.get_error_categories() == {"TimeoutError": 1600, "error": 1600}
    assert manager.get_status()["drawdown"] == "NORMAL"
    clock.advance(60)
    assert manager.record_order()  # the minute window frees; the hour window still has room


def test_threads_mixing_halts_resets_orders_and_errors(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    orders = OrderRateCircuitBreaker(10**6, window_seconds=60)
    errors = ErrorRateCircuitBreaker(10**6)
    manual = ManualCircuitBreaker()
    manager.add_breaker(orders)
    manager.add_breaker(errors)
    manager.add_breaker(manual)
    events: list[BreakerEvent] = []
    events_lock = threading.Lock()

    def listener(event: BreakerEvent) -> None:
        with events_lock:
            events.append(event)

    manager.add_listener(listener)
    admitted = Counter[int]()
    recorded_errors = Counter[int]()

    def worker(i: int) -> None:
        rng = random.Random(i)
        for _ in range(300):
            op = rng.randrange(5)
            if op == 0:
                if manager.record_order():
                    admitted[i] += 1
            elif op == 1:
                manager.record_error()
                recorded_errors[i] += 1
            elif op == 2:
                manager.can_trade()
            elif op == 3:
                manager.halt_all(reason=f"halt by {i}", operator=f"op{i}")
            else:
                manager.reset("manual", operator=f"op{i}")

    assert run_threads(16, worker) == []
    assert orders.get_order_count() == sum(admitted.values())
    assert errors.get_error_count() == sum(recorded_errors.values())
    manager.reset_all(operator="final")
    assert set(manager.get_status().values()) == {"NORMAL"}
    assert manager.can_trade()
    # Every halt was followed by exactly one reset (→ RESETTING → NORMAL): nothing was lost.
    manual_events = [e for e in events if e.breaker_name == "manual"]
    kinds = Counter((e.kind, e.state) for e in manual_events)
    halts = kinds[("halted", CircuitBreakerState.MANUALLY_HALTED)]
    assert halts > 0
    assert kinds[("reset", CircuitBreakerState.RESETTING)] == halts
    assert kinds[("reset", CircuitBreakerState.NORMAL)] == halts
    refused = [e for e in events if e.kind == "order_refused"]
    assert all("manual" in (e.reason or "") for e in refused)


def test_quiet_fast_path_under_concurrent_trips(clock: ManualClock) -> None:
    """Readers on the fast path never answer True for a halt that completed before they
    asked and was not reset since."""
    manager = CircuitBreakerManager(clock=clock)
    manual = ManualCircuitBreaker()
    manager.add_breaker(manual)
    manager.add_breaker(DrawdownCircuitBreaker("0.1"))
    phase = [0]  # odd: a halt has completed and no reset has started
    wrong: list[int] = []
    checked = Counter[str]()

    done = threading.Event()

    def reader(i: int) -> None:
        while not done.is_set():
            before = phase[0]
            answer = manager.can_trade()
            if before % 2 == 1 and phase[0] == before:
                checked["halted"] += 1
                if answer:
                    wrong.append(before)

    def writer(i: int) -> None:
        try:
            for n in range(300):
                manual.trigger_halt(f"h{n}", "ops")
                phase[0] += 1
                assert not manager.can_trade()
                seen = checked["halted"]
                for _ in range(10_000):  # give the readers a chance to ask while halted
                    if checked["halted"] > seen:
                        break
                    time.sleep(0)
                phase[0] += 1
                manual.reset(operator="ops")
                assert manager.can_trade()
        finally:
            done.set()

    def role(i: int) -> None:
        (writer if i == 0 else reader)(i)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings
    try:
        assert run_threads(5, role) == []
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
    assert checked["halted"] > 0


def test_many_asyncio_tasks(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(OrderRateCircuitBreaker(50, window_seconds=60))
    manager.add_breaker(ErrorRateCircuitBreaker(10**6))
    manager.add_breaker(ManualCircuitBreaker())
    delivered: list[Any] = []

    async def async_listener(event: BreakerEvent) -> None:
        await asyncio.sleep(0)
        delivered.append(event.kind)

    manager.add_listener(async_listener)

    async def task(i: int) -> bool:
        await asyncio.sleep(0)
        manager.record_error(category=f"task{i % 3}")
        await asyncio.sleep(0)
        ok = manager.can_trade() and manager.record_order()
        await asyncio.sleep(0)
        return ok

    async def main() -> list[bool]:
        results = await asyncio.gather(*(task(i) for i in range(500)))
        manager.halt_all("stop", "ops")
        refused = await asyncio.gather(*(task(i) for i in range(50)))
        assert not any(refused)
        manager.reset_all(operator="ops")
        for _ in range(20):  # let the scheduled listener coroutines finish
            await asyncio.sleep(0)
        return list(results)

    results = asyncio.run(main())
    assert results.count(True) == 50
    errors = manager.get_breaker("error_rate")
    assert errors.get_error_count() == 550  # type: ignore[union-attr]
    assert errors.get_error_categories() == {  # type: ignore[union-attr]
        "task0": 167 + 17,
        "task1": 167 + 17,
        "task2": 166 + 16,
    }
    assert delivered.count("halted") == 1
    assert delivered.count("reset") == 2 + 2  # the manual reset and the order-rate reset
    assert delivered.count("tripped") == 1  # the order window filled once
