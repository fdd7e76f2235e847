"""OrderRateCircuitBreaker: an admission limit over a half-open sliding window."""

from __future__ import annotations

import threading
from typing import Any

from haltgate import CircuitBreakerState, ManualClock, OrderRateCircuitBreaker


def make(clock: ManualClock, n: int = 3, window: Any = 60, **kw: Any) -> OrderRateCircuitBreaker:
    return OrderRateCircuitBreaker(
        max_orders_per_minute=n, window_seconds=window, clock=clock, **kw
    )


def test_at_most_n_orders_are_admitted(clock: ManualClock) -> None:
    breaker = make(clock)
    assert [breaker.try_record_order() for _ in range(5)] == [True, True, True, False, False]
    assert breaker.get_order_count() == 3
    assert breaker.state is CircuitBreakerState.TRIPPED
    assert breaker.get_trip_reason() == "Order rate limit reached: 3 orders in the last 60s (max 3)"
    details = breaker.get_trip_details()
    assert (details["threshold"], details["observed"], details["window_seconds"]) == (3, 3, 60)


def test_can_trade_is_true_while_one_more_order_fits(clock: ManualClock) -> None:
    breaker = make(clock)
    for _ in range(2):
        assert breaker.can_trade()
        assert breaker.record_order()
    assert breaker.can_trade()  # the third fits
    assert breaker.record_order()
    assert breaker.state is CircuitBreakerState.NORMAL  # at the limit, not over it
    assert not breaker.can_trade()  # full: refuses and trips
    assert breaker.state is CircuitBreakerState.TRIPPED


def test_record_order_over_the_limit_trips_and_reports_it(clock: ManualClock) -> None:
    breaker = make(clock, n=2)
    assert breaker.record_order()
    assert breaker.record_order()
    assert not breaker.record_order()  # the order was sent anyway: it is counted
    assert breaker.get_order_count() == 3
    assert breaker.get_trip_reason() == "Order rate exceeded: 3 orders in the last 60s (max 2)"


def test_half_open_window_boundary(clock: ManualClock) -> None:
    breaker = make(clock, n=1, window=10)
    assert breaker.try_record_order()  # at t = 0
    clock.advance(9.999)
    assert breaker.get_order_count() == 1  # 0 > now - 10 = -0.001: still counted
    assert not breaker.try_record_order()
    clock.advance(0.001)  # now = 10: the order at 0 is no longer > now - 10
    assert breaker.get_order_count() == 0
    assert breaker.try_record_order()


def test_self_clears_when_orders_age_out(clock: ManualClock) -> None:
    breaker = make(clock, n=2, window=60)
    seen: list[Any] = []
    breaker.add_listener(seen.append)
    breaker.try_record_order()
    clock.advance(30)
    breaker.try_record_order()
    assert not breaker.try_record_order()
    clock.advance(30)  # the first order ages out: one slot free
    assert breaker.state is CircuitBreakerState.NORMAL
    assert [(e.kind, e.state) for e in seen] == [
        ("tripped", CircuitBreakerState.TRIPPED),
        ("reset", CircuitBreakerState.RESETTING),
        ("reset", CircuitBreakerState.NORMAL),
    ]
    assert seen[-1].details["cause"] == "orders_aged_out"
    assert breaker.try_record_order()
    assert not breaker.try_record_order()


def test_at_most_n_in_any_window_over_a_long_run(clock: ManualClock) -> None:
    breaker = make(clock, n=5, window=10)
    admitted: list[float] = []
    for _ in range(2000):
        if breaker.try_record_order():
            admitted.append(clock.monotonic())
        clock.advance(0.25)
    for i, t in enumerate(admitted):
        in_window = [u for u in admitted[: i + 1] if t - 10 < u <= t]
        assert len(in_window) <= 5
    assert len(admitted) >= 5 * (2000 * 0.25 / 10) - 5  # and the limit is usable


def test_cooldown_delays_the_self_clear(clock: ManualClock) -> None:
    breaker = make(clock, n=1, window=10, cooldown_seconds=100)
    breaker.try_record_order()
    assert not breaker.try_record_order()
    clock.advance(99.9)
    assert breaker.state is CircuitBreakerState.TRIPPED
    clock.advance(0.1)
    assert breaker.state is CircuitBreakerState.NORMAL


def test_reset_keeps_the_window(clock: ManualClock) -> None:
    breaker = make(clock, n=2)
    breaker.try_record_order()
    breaker.try_record_order()
    assert not breaker.can_trade()
    breaker.reset(operator="ops")
    assert breaker.state is CircuitBreakerState.NORMAL
    assert breaker.get_order_count() == 2  # the orders were really sent
    assert not breaker.try_record_order()  # so the window is still full


def test_manual_halt_blocks_orders_even_with_room(clock: ManualClock) -> None:
    breaker = make(clock)
    breaker.trigger_halt("runaway suspected", "ops")
    assert not breaker.can_trade()
    assert not breaker.try_record_order()
    assert breaker.get_order_count() == 0
    clock.advance(3600)
    assert breaker.state is CircuitBreakerState.MANUALLY_HALTED


def test_fractional_window(clock: ManualClock) -> None:
    breaker = make(clock, n=1, window="0.5")
    assert breaker.try_record_order()
    clock.advance(0.5)
    assert breaker.try_record_order()


def test_forty_threads_race_for_ten_slots(clock: ManualClock) -> None:
    breaker = make(clock, n=10)
    barrier = threading.Barrier(40)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        ok = breaker.try_record_order()
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 10
    assert results.count(False) == 30
    assert breaker.get_order_count() == 10


def test_many_orders_at_high_rate_stay_exact_with_compaction(clock: ManualClock) -> None:
    breaker = make(clock, n=10_000, window=60)
    for _ in range(10_000):
        assert breaker.try_record_order()
        clock.advance(0.001)
    assert not breaker.try_record_order()
    assert breaker.get_order_count() == 10_000
    clock.advance(60)
    assert breaker.get_order_count() == 0
