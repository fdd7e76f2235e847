"""The windowed checks (duplicates, message and execution throttles): half-open windows
(SPEC §2), and the all-or-none admission with the order-rate windows: an order refused
anywhere (a check, a breaker, a window) takes no slot in any window."""

from __future__ import annotations

import threading

import pytest

from haltgate import (
    DrawdownCircuitBreaker,
    InvalidInputError,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from haltgate.checks import DuplicateOrder, ExecutionThrottle, MaxOrderQuantity, MessageThrottle
from haltgate.checks.windows import LocalKeyedWindow

from .support import buy, manager, sell


def slots(mgr: object, name: str, key: object) -> int:
    check = mgr.get_check(name)  # type: ignore[attr-defined]
    return int(check.window_count(key))


# ----------------------------------------------------------------------------- duplicates
def test_duplicate_order_window_is_half_open() -> None:
    mgr, clock = manager(DuplicateOrder(5))
    assert mgr.admit_order(order=buy(100, price=10)) == []
    clock.advance(4.999999)
    assert mgr.admit_order(order=buy(100, price=10)) == [
        "duplicate_order: SPY BUY 100 @ 10 already admitted within 5s"
    ]
    clock.advance(0.000001)  # exactly 5 s after the first: it left the window
    assert mgr.admit_order(order=buy("100.0", price="10.00")) == []


def test_a_duplicate_differs_in_any_of_symbol_side_quantity_price() -> None:
    mgr, _ = manager(DuplicateOrder(60))
    assert mgr.admit_order(order=buy(100, price=10)) == []
    for other in (
        buy(100, "QQQ", 10),
        sell(100, price=10),
        buy(101, price=10),
        buy(100, price=11),
        buy(100),
    ):
        assert mgr.admit_order(order=other) == [], other
    assert mgr.check_order(buy(100)).reason == "SPY BUY 100 @ market already admitted within 60s"


def test_a_refused_duplicate_is_not_remembered() -> None:
    mgr, clock = manager(DuplicateOrder(5))
    mgr.admit_order(order=buy(1))
    clock.advance(3)
    assert mgr.admit_order(order=buy(1))  # refused at t=3 ...
    clock.advance(2)
    assert mgr.admit_order(order=buy(1)) == []  # ... so at t=5 only the first counted


# ----------------------------------------------------------------------------- messages
def test_message_throttle_counts_submits_modifies_and_cancels() -> None:
    mgr, clock = manager(MessageThrottle(4, 1))
    assert mgr.admit_order(order=buy(1)) == []
    assert mgr.record_message("modify") is True
    assert mgr.record_message("cancel") is True
    assert mgr.admit_order(order=buy(2)) == []  # the 4th message: at the limit
    assert mgr.admit_order(order=buy(3)) == ["message_throttle: 5 > 4 messages in 1s"]
    # A cancel is never refused, only counted (and said to be over the limit).
    assert mgr.record_message("cancel") is False
    clock.advance(1)  # everything was sent at t=0: all of it left the window
    assert mgr.admit_order(order=buy(4)) == []


def test_record_message_without_a_throttle_and_bad_kinds() -> None:
    mgr, _ = manager()
    assert mgr.record_message("cancel") is True
    for bad in ("submit", "CANCEL", "", "fill"):
        with pytest.raises(InvalidInputError) as info:
            mgr.record_message(bad)
        assert info.value.parameter == "kind"
    for bad in (None, 1, True):
        with pytest.raises(TypeError):
            mgr.record_message(bad)  # type: ignore[arg-type]


def test_message_throttle_needs_no_order() -> None:
    mgr, _ = manager(MessageThrottle(2, 60))
    assert mgr.record_order() and mgr.record_order()
    assert not mgr.record_order()


def test_checks_that_judge_orders_refuse_an_admission_without_one() -> None:
    mgr, _ = manager(MaxOrderQuantity(10), breakers=[OrderRateCircuitBreaker(5)])
    with pytest.raises(TypeError) as info:
        mgr.record_order()
    assert "order" in str(info.value)
    assert mgr.get_breaker("order_rate").get_order_count() == 0  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- execution
def test_execution_throttle_counts_per_symbol_and_side() -> None:
    mgr, clock = manager(ExecutionThrottle(2, 60))
    assert mgr.admit_order(order=buy(1)) == []
    assert mgr.admit_order(order=buy(2)) == []
    assert mgr.admit_order(order=sell(1)) == []  # other side
    assert mgr.admit_order(order=buy(1, "QQQ")) == []  # other symbol
    assert mgr.check_order(buy(3)).reason == "3 > 2 orders for SPY BUY in 60s"
    assert mgr.get_breaker("execution_throttle").state == "NORMAL"  # type: ignore[union-attr]
    clock.advance(60)  # both left the window (half-open)
    assert mgr.check_order(buy(3)).allowed


# ----------------------------------------------------------------------------- atomicity
def all_windows() -> tuple[object, ...]:
    return (DuplicateOrder(60), MessageThrottle(100, 60), ExecutionThrottle(100, 60))


def counts(mgr: object) -> tuple[int, ...]:
    rate = mgr.get_breaker("order_rate")  # type: ignore[attr-defined]
    return (
        rate.get_order_count(),
        slots(mgr, "duplicate_order", ("SPY", True, 5, None)),
        slots(mgr, "message_throttle", 0),
        slots(mgr, "execution_throttle", ("SPY", True)),
    )


def test_an_admitted_order_takes_its_slot_in_every_window() -> None:
    mgr, _ = manager(*all_windows(), breakers=[OrderRateCircuitBreaker(10)])  # type: ignore[arg-type]
    assert mgr.admit_order(order=buy(5)) == []
    assert counts(mgr) == (1, 1, 1, 1)


def test_an_order_refused_by_a_check_takes_no_slot_anywhere() -> None:
    mgr, _ = manager(
        MaxOrderQuantity(10),
        *all_windows(),
        breakers=[OrderRateCircuitBreaker(10)],  # type: ignore[arg-type]
    )
    assert mgr.admit_order(order=buy(5)) == []
    before = counts(mgr)
    assert mgr.admit_order(order=buy(500))[0].startswith("max_order_quantity")
    assert counts(mgr) == before
    # A duplicate refused by its window takes no rate, message or execution slot either.
    assert mgr.admit_order(order=buy(5))[0].startswith("duplicate_order")
    assert counts(mgr) == before


def test_an_order_refused_by_a_breaker_or_the_rate_window_takes_no_check_slot() -> None:
    halt = ManualCircuitBreaker()
    rate = OrderRateCircuitBreaker(1)
    second = OrderRateCircuitBreaker(5, name="slow_rate")
    mgr, _ = manager(*all_windows(), breakers=[halt, rate, second])  # type: ignore[arg-type]
    assert mgr.admit_order(order=buy(5)) == []
    before = counts(mgr)
    assert mgr.admit_order(order=buy(6))[0].startswith("order_rate")  # its window is full
    assert counts(mgr) == before
    assert second.get_order_count() == 1  # rolled back in the other rate window too
    halt.trigger_halt("stop", "ops")
    assert "manual: stop" in mgr.admit_order(order=buy(7))
    assert counts(mgr) == before


def test_a_tripped_risk_breaker_refuses_before_any_window() -> None:
    drawdown = DrawdownCircuitBreaker("0.1")
    mgr, _ = manager(*all_windows(), breakers=[drawdown, OrderRateCircuitBreaker(10)])  # type: ignore[arg-type]
    mgr.can_trade(current_portfolio_value=100)
    mgr.can_trade(current_portfolio_value=50)
    assert mgr.admit_order(order=buy(5))[0].startswith("drawdown")
    assert counts(mgr) == (0, 0, 0, 0)


def test_check_order_is_pure() -> None:
    mgr, _ = manager(*all_windows(), breakers=[OrderRateCircuitBreaker(10)])  # type: ignore[arg-type]
    for _ in range(3):
        assert mgr.check_order(buy(5)).allowed
        assert mgr.check_order(buy(10**6, price=1)).allowed
    assert counts(mgr) == (0, 0, 0, 0)
    assert mgr.get_refusal_counts() == {}


def test_threads_never_admit_more_than_the_windows_allow() -> None:
    mgr, _ = manager(ExecutionThrottle(50, 60), breakers=[OrderRateCircuitBreaker(30)])
    admitted: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        for _ in range(40):
            if mgr.admit_order(order=buy(1)) == []:
                with lock:
                    admitted.append(1)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 30  # the rate window, then nothing
    assert slots(mgr, "execution_throttle", ("SPY", True)) == 30


def test_local_keyed_window_memory_stays_bounded() -> None:
    from haltgate import ManualClock

    clock = ManualClock()
    window = LocalKeyedWindow(1)
    for i in range(10_000):
        clock.advance(0.01)
        assert window.reserve(("SPY", i), clock.monotonic(), 1)
    assert len(window) <= 256  # about 100 keys live in any 1 s window, swept as it doubles


def test_a_raising_key_function_gives_back_every_slot() -> None:
    class Broken(DuplicateOrder):
        name = "broken"

        def window_key(self, order: object) -> object:
            raise RuntimeError("bug in a user's check")

    mgr, _ = manager(ExecutionThrottle(5, 60), Broken(60), breakers=[OrderRateCircuitBreaker(5)])
    with pytest.raises(RuntimeError):
        mgr.admit_order(order=buy(1))
    assert slots(mgr, "execution_throttle", ("SPY", True)) == 0
    assert mgr.get_breaker("order_rate").get_order_count() == 0  # type: ignore[union-attr]
