"""ExecutionThrottle (RTS 6 Art. 15(3)): more than N orders for one symbol and side in the
window trips the latched breaker ``execution_throttle``: audited, durable (a restart keeps
it tripped), visible in status and metrics like any breaker, blocking every order (reducing
ones too) until a named operator resets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import haltgate
from haltgate import CircuitBreakerManager, InvalidInputError, ManualClock, OrderContext
from haltgate.breakers.execution_throttle import ExecutionThrottleBreaker
from haltgate.checks import ExecutionThrottle, MaxOrderQuantity
from haltgate.store.sqlite import SQLiteStore

from .support import START, Recorder, buy, manager, sell


def tripped_manager() -> tuple[CircuitBreakerManager, ManualClock, Recorder]:
    mgr, clock = manager(ExecutionThrottle(3, 60))
    seen = Recorder()
    mgr.add_listener(seen)
    for _ in range(3):
        assert mgr.admit_order(order=buy(1)) == []
    assert mgr.admit_order(order=buy(1)) == ["execution_throttle: 4 > 3 orders for SPY BUY in 60s"]
    return mgr, clock, seen


def test_the_order_over_the_limit_is_refused_and_trips_the_latched_breaker() -> None:
    mgr, clock, seen = tripped_manager()
    breaker = mgr.get_breaker("execution_throttle")
    assert isinstance(breaker, ExecutionThrottleBreaker)
    assert mgr.get_status()["execution_throttle"] == "TRIPPED"
    assert breaker.get_trip_reason() == "4 > 3 orders for SPY BUY in 60s"
    assert mgr.get_blocking_reasons() == ["execution_throttle: 4 > 3 orders for SPY BUY in 60s"]
    details = breaker.get_trip_details()
    assert (details["threshold"], details["observed"], details["symbol"], details["side"]) == (
        3,
        4,
        "SPY",
        "BUY",
    )
    refused = seen.kinds("order_refused")
    assert [e.details["code"] for e in refused] == ["execution_throttle"]
    assert refused[0].details["check"] == "execution_throttle"
    assert refused[0].details["symbol"] == "SPY"
    assert [e.breaker_name for e in seen.kinds("tripped")] == ["execution_throttle"]
    assert mgr.get_refusal_counts() == {"execution_throttle": 1}
    # Latched: every order is refused, any symbol, any side, reducing or not, for ever.
    clock.advance(3600)
    assert not mgr.can_trade()
    assert mgr.admit_order(order=buy(1, "QQQ"))[0].startswith("execution_throttle: ")
    closing = sell(10)
    assert mgr.admit_order(order=closing, context=OrderContext(position=10), reduce_only=True)
    assert mgr.get_status()["execution_throttle"] == "TRIPPED"


def test_only_a_named_operators_reset_clears_it_and_it_empties_the_window() -> None:
    mgr, _clock, _seen = tripped_manager()
    breaker = mgr.get_breaker("execution_throttle")
    assert breaker is not None
    with pytest.raises(InvalidInputError) as info:
        breaker.reset()
    assert info.value.parameter == "operator"
    with pytest.raises(InvalidInputError):
        mgr.reset("execution_throttle")
    with pytest.raises(InvalidInputError):
        mgr.reset_all()
    assert breaker.is_tripped
    mgr.reset("execution_throttle", operator="alice", reason="runaway strategy stopped")
    assert mgr.get_status()["execution_throttle"] == "NORMAL"
    assert breaker.get_trip_details() == {}
    assert mgr.get_details()[0]["operator"] == "alice"
    # The window starts empty: the acknowledged burst does not re-trip the next order.
    assert mgr.get_check("execution_throttle").window_count(("SPY", True)) == 0  # type: ignore[union-attr]
    for _ in range(3):
        assert mgr.admit_order(order=buy(1)) == []
    assert mgr.admit_order(order=buy(1))
    assert breaker.is_tripped


def test_a_breach_of_another_check_does_not_trip_it() -> None:
    mgr, _ = manager(MaxOrderQuantity(5), ExecutionThrottle(1, 60))
    for _ in range(5):
        assert mgr.admit_order(order=buy(50))[0].startswith("max_order_quantity")
    assert mgr.get_status()["execution_throttle"] == "NORMAL"


def test_add_and_remove_check_register_the_breaker() -> None:
    mgr, _ = manager()
    check = ExecutionThrottle(1, 60)
    mgr.add_check(check)
    assert mgr.get_breaker("execution_throttle") is check.breaker
    assert mgr.remove_check("execution_throttle") is check
    assert mgr.get_breaker("execution_throttle") is None  # NORMAL: goes with its check
    mgr.add_check(check)  # may join again once removed
    mgr.admit_order(order=buy(1))
    mgr.admit_order(order=buy(1))
    assert check.breaker.is_tripped
    mgr.remove_check("execution_throttle")
    # Tripped: stays, still blocking, until an operator resets it.
    assert mgr.get_breaker("execution_throttle") is check.breaker
    assert not mgr.can_trade()
    again = ExecutionThrottle(5, 60)
    mgr.add_check(again)  # takes over the tripped breaker, never replaces it
    assert again.breaker is check.breaker and again.breaker.is_tripped
    mgr.reset("execution_throttle", operator="bob")
    assert mgr.can_trade()


def test_a_check_belongs_to_one_manager_and_names_are_unique() -> None:
    check = ExecutionThrottle(1, 60)
    first, _ = manager(check)
    second, _ = manager()
    with pytest.raises(InvalidInputError):
        second.add_check(check)
    assert second.get_checks() == [] and second.get_breaker("execution_throttle") is None
    with pytest.raises(InvalidInputError):
        first.add_check(ExecutionThrottle(2, 60))
    from haltgate import ManualCircuitBreaker

    third, _ = manager(breakers=[ManualCircuitBreaker(name="execution_throttle")])
    with pytest.raises(InvalidInputError):
        third.add_check(ExecutionThrottle(1, 60))
    assert third.get_checks() == []


def test_the_trip_is_durable_and_audited_in_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    clock = ManualClock(START)
    mgr = CircuitBreakerManager(clock=clock, store=url)
    mgr.add_check(ExecutionThrottle(1, 60))
    assert mgr.admit_order(order=buy(1)) == []
    assert mgr.admit_order(order=buy(1))
    mgr.close()

    # A restart with the same store: still tripped, before and after the check is added.
    again = CircuitBreakerManager(clock=ManualClock(START), store=url)
    again.add_check(ExecutionThrottle(1, 60))
    assert again.get_status()["execution_throttle"] == "TRIPPED"
    assert again.admit_order(order=buy(1, "QQQ"))
    again.reset("execution_throttle", operator="carol")
    assert again.admit_order(order=buy(1, "QQQ")) == []
    again.close()

    store = SQLiteStore(tmp_path / "h.db")
    try:
        entries = [e for e in store.tail_audit(50) if e.breaker == "execution_throttle"]
        assert [(e.event, e.operator) for e in entries] == [
            ("breaker_tripped", None),
            ("breaker_reset", "carol"),
        ]
        reason = json.loads(entries[0].payload)["reason"]
        assert reason == "2 > 1 orders for SPY BUY in 60s"
        assert bool(store.verify_audit())
    finally:
        store.close()


CHILD = """
import json, sys
from haltgate import CircuitBreakerManager, Order
from haltgate.checks import ExecutionThrottle
m = CircuitBreakerManager(store=sys.argv[1])
m.add_check(ExecutionThrottle(1, 60))
print(json.dumps({
    "state": m.get_status()["execution_throttle"],
    "refused": m.admit_order(order=Order.make("IWM", 1)),
}))
m.close()
"""


def test_a_new_process_finds_it_tripped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    mgr = CircuitBreakerManager(clock=ManualClock(START), store=url)
    mgr.add_check(ExecutionThrottle(1, 60))
    mgr.admit_order(order=buy(1))
    mgr.admit_order(order=buy(1))
    # No close(): a process that just ends. The trip was durable before admit_order returned.
    env = {**os.environ, "PYTHONPATH": str(Path(haltgate.__file__).resolve().parents[1])}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url], capture_output=True, text=True, env=env, timeout=60
    )
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout)
    assert seen["state"] == "TRIPPED"
    assert seen["refused"] == ["execution_throttle: 2 > 1 orders for SPY BUY in 60s"]
    mgr.close()


def test_cli_status_shows_the_tripped_throttle_and_reset_needs_an_operator(
    tmp_path: Path, run_cli: object
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    mgr = CircuitBreakerManager(clock=ManualClock(START), store=url)
    mgr.add_check(ExecutionThrottle(1, 60))
    mgr.admit_order(order=buy(1))
    mgr.admit_order(order=buy(1))
    mgr.close()
    status = run_cli("--store", url, "status", "--json")  # type: ignore[operator]
    assert status.returncode != 2, status.stderr
    text = status.stdout
    assert "execution_throttle" in text and "TRIPPED" in text
    assert run_cli("--store", url, "reset", "execution_throttle").returncode == 2  # type: ignore[operator]
    done = run_cli("--store", url, "reset", "execution_throttle", "--operator", "dave")  # type: ignore[operator]
    assert done.returncode == 0, done.stderr
    assert "TRIPPED" not in run_cli("--store", url, "status", "--json").stdout  # type: ignore[operator]


def test_metrics_show_the_trip() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from haltgate.metrics import HaltgateMetrics, render_latest

    mgr, _ = manager(ExecutionThrottle(1, 60))
    registry = prometheus_client.CollectorRegistry()
    HaltgateMetrics(mgr, registry)
    mgr.admit_order(order=buy(1))
    mgr.admit_order(order=buy(1))
    body = render_latest(registry)[0].decode()
    tripped = [line for line in body.splitlines() if "execution_throttle" in line]
    assert any(
        line.startswith("haltgate_breaker_trips_total") and line.endswith(" 1.0")
        for line in tripped
    ), tripped
