"""CircuitBreakerManager: routing, the quiet fast path, atomic orders, operator actions."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from haltgate import (
    BaseCircuitBreaker,
    CircuitBreakerManager,
    CircuitBreakerState,
    ConnectionCircuitBreaker,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    HaltgateError,
    InvalidInputError,
    ManualCircuitBreaker,
    ManualClock,
    OrderRateCircuitBreaker,
    PositionConcentrationCircuitBreaker,
    VolatilityCircuitBreaker,
)

NORMAL = CircuitBreakerState.NORMAL
TRIPPED = CircuitBreakerState.TRIPPED
HALTED = CircuitBreakerState.MANUALLY_HALTED


class ReturnsBreaker(BaseCircuitBreaker):
    """A custom breaker fed ``returns=`` (like the guide's subclass)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls: list[list[Decimal]] = []

    def can_trade(self, returns: list[Decimal]) -> bool:  # type: ignore[override]
        self.calls.append(list(returns))
        if self.is_tripped:
            return False
        if any(abs(r) > Decimal("0.1") for r in returns):
            self._trip(reason="big return")
            return False
        return True


def recommended(clock: ManualClock) -> CircuitBreakerManager:
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(DrawdownCircuitBreaker(Decimal("0.10")))
    manager.add_breaker(DailyLossCircuitBreaker(max_daily_loss=Decimal("5000")))
    manager.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=3))
    manager.add_breaker(ErrorRateCircuitBreaker(max_errors=2, window_seconds=300))
    manager.add_breaker(ManualCircuitBreaker())
    return manager


def events_of(manager: CircuitBreakerManager) -> list[Any]:
    seen: list[Any] = []
    manager.add_listener(seen.append)
    return seen


# ------------------------------------------------------------------------------ breakers
def test_add_get_remove(clock: ManualClock) -> None:
    manager = recommended(clock)
    assert [b.name for b in manager.get_all_breakers()] == [
        "drawdown",
        "daily_loss",
        "order_rate",
        "error_rate",
        "manual",
    ]
    assert isinstance(manager.get_breaker("drawdown"), DrawdownCircuitBreaker)
    assert manager.get_breaker("nope") is None
    assert "manual" in manager
    with pytest.raises(ValueError, match="already"):
        manager.add_breaker(DrawdownCircuitBreaker("0.2"))
    manager.add_breaker(DrawdownCircuitBreaker("0.2", name="drawdown_fast"))
    removed = manager.remove_breaker("drawdown_fast")
    assert removed.name == "drawdown_fast"
    with pytest.raises(KeyError):
        manager.remove_breaker("drawdown_fast")
    with pytest.raises(HaltgateError):
        manager.reset("drawdown_fast")


def test_breakers_given_to_the_constructor(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker(), DrawdownCircuitBreaker("0.1")], clock=clock
    )
    assert list(manager.get_status()) == ["manual", "drawdown"]


def test_manager_clock_is_adopted_only_by_breakers_made_without_one(clock: ManualClock) -> None:
    other = ManualClock(clock.now())
    own = OrderRateCircuitBreaker(1, clock=other, name="own")
    adopted = OrderRateCircuitBreaker(1, name="adopted")
    manager = CircuitBreakerManager(breakers=[own, adopted], clock=clock)
    assert own.clock is other
    assert adopted.clock is clock
    assert manager.clock is clock
    adopted.try_record_order()
    clock.advance(60)
    assert adopted.try_record_order()  # its window follows the manager's clock


def test_removed_breaker_no_longer_counts(clock: ManualClock) -> None:
    manager = recommended(clock)
    manager.halt_all("x", "ops")
    assert not manager.can_trade()
    manager.remove_breaker("manual")
    assert manager.can_trade()


# ------------------------------------------------------------------------------ routing
def test_portfolio_value_feeds_drawdown_and_daily_loss(clock: ManualClock) -> None:
    manager = recommended(clock)
    assert manager.can_trade(current_portfolio_value=100000)
    drawdown = manager.get_breaker("drawdown")
    daily = manager.get_breaker("daily_loss")
    assert isinstance(drawdown, DrawdownCircuitBreaker)
    assert isinstance(daily, DailyLossCircuitBreaker)
    assert drawdown.get_peak() == 100000
    assert daily.get_start_of_day_value() == 100000
    assert manager.can_trade(current_portfolio_value=95000)
    assert daily.get_current_daily_loss() == 5000
    assert not manager.can_trade(current_portfolio_value="94999")
    assert manager.get_status() == {
        "drawdown": "NORMAL",
        "daily_loss": "TRIPPED",
        "order_rate": "NORMAL",
        "error_rate": "NORMAL",
        "manual": "NORMAL",
    }


def test_every_breaker_sees_its_observation_even_after_a_refusal(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(ManualCircuitBreaker())
    manager.add_breaker(DrawdownCircuitBreaker("0.10"))
    manager.halt_all("stop", "ops")
    assert not manager.can_trade(current_portfolio_value=100)
    drawdown = manager.get_breaker("drawdown")
    assert drawdown is not None and drawdown.get_peak() == 100  # type: ignore[attr-defined]


def test_start_of_day_value_goes_to_daily_loss_only(clock: ManualClock) -> None:
    manager = recommended(clock)
    assert manager.can_trade(current_portfolio_value=97000, start_of_day_value=100000)
    daily = manager.get_breaker("daily_loss")
    assert daily.get_current_daily_loss() == 3000  # type: ignore[union-attr]


def test_custom_breaker_gets_returns(clock: ManualClock) -> None:
    manager = recommended(clock)
    custom = ReturnsBreaker(clock=clock)
    manager.add_breaker(custom)
    assert manager.can_trade()  # a pure read: the custom breaker is not called
    assert manager.can_trade(current_portfolio_value=100000)
    assert custom.calls == []  # it does not take portfolio values
    assert manager.can_trade(returns=[Decimal("0.01")])
    assert not manager.can_trade(returns=[Decimal("0.2")], current_portfolio_value=100000)
    assert custom.calls == [[Decimal("0.01")], [Decimal("0.2")]]
    assert manager.get_trip_reasons() == {"custom": "big return"}
    assert not manager.can_trade()


def test_volatility_gets_price_and_last_return(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    vol = VolatilityCircuitBreaker(std_threshold=3, lookback=5)
    manager.add_breaker(vol)
    for price in (100, 101, 100, 101, 100):
        assert manager.can_trade(price=price)
    assert manager.can_trade(last_return="0.001")
    assert not manager.can_trade(price=50)
    assert vol.state is TRIPPED


def test_unknown_observation_keyword_is_refused_before_anything_changes(
    clock: ManualClock,
) -> None:
    manager = recommended(clock)
    manager.can_trade(current_portfolio_value=100000)
    before = [b.export_state() for b in manager.get_all_breakers()]
    with pytest.raises(HaltgateError, match="portfolio_value") as info:
        manager.can_trade(current_portfolio_value=50000, portfolio_value=50000)
    assert isinstance(info.value, ValueError)
    assert [b.export_state() for b in manager.get_all_breakers()] == before
    assert manager.can_trade()


def test_a_bad_observation_value_changes_no_breaker(clock: ManualClock) -> None:
    manager = recommended(clock)
    manager.add_breaker(VolatilityCircuitBreaker())
    manager.can_trade(current_portfolio_value=100000)
    before = [b.export_state() for b in manager.get_all_breakers()]
    bad_calls: list[dict[str, Any]] = [
        {"current_portfolio_value": 50000, "start_of_day_value": "abc"},
        {"current_portfolio_value": 50000, "price": -1},
        {"current_portfolio_value": 50000, "last_return": float("nan")},
        {"current_portfolio_value": True},
    ]
    for call in bad_calls:
        with pytest.raises(HaltgateError):
            manager.can_trade(**call)
        assert [b.export_state() for b in manager.get_all_breakers()] == before


def test_concentration_breaker_is_only_read_by_can_trade(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    conc = PositionConcentrationCircuitBreaker("0.2")
    manager.add_breaker(conc)
    assert manager.can_trade()
    assert not conc.check_order("AAPL", 50, 100)
    assert manager.can_trade()  # a refused order does not latch
    conc.trigger_halt("review", "risk")
    assert not manager.can_trade()


# ------------------------------------------------------------------------------ fast path
def test_quiet_fast_path_answers_false_after_any_trip_or_halt(clock: ManualClock) -> None:
    manager = recommended(clock)
    assert manager.can_trade()
    assert manager.can_trade()  # now from the quiet flag
    assert manager._quiet
    drawdown = manager.get_breaker("drawdown")
    assert isinstance(drawdown, DrawdownCircuitBreaker)
    drawdown.update(100)
    drawdown.update(80)  # tripped directly, not through the manager
    assert not manager.can_trade()
    manager.reset("drawdown")
    assert manager.can_trade()
    assert manager.can_trade()
    manager.get_breaker("error_rate").trigger_halt("x", "y")  # type: ignore[union-attr]
    assert not manager.can_trade()
    manager.reset_all()
    assert manager.can_trade()
    errors = manager.get_breaker("error_rate")
    assert isinstance(errors, ErrorRateCircuitBreaker)
    for _ in range(3):
        errors.record_error()
    assert not manager.can_trade()


def test_quiet_fast_path_answers_false_when_the_window_fills(clock: ManualClock) -> None:
    manager = recommended(clock)
    orders = manager.get_breaker("order_rate")
    assert isinstance(orders, OrderRateCircuitBreaker)
    for _ in range(3):
        assert manager.can_trade()
        assert manager.can_trade()
        orders.record_order()  # recorded on the breaker itself, not through the manager
    assert not manager.can_trade()  # full: no room for another order
    clock.advance(60)
    assert manager.can_trade()
    for _ in range(3):
        assert manager.record_order()
    assert not manager.can_trade()


def test_quiet_fast_path_answers_false_after_a_remote_change(clock: ManualClock) -> None:
    manager = recommended(clock)
    assert manager.can_trade() and manager.can_trade()
    manual = manager.get_breaker("manual")
    assert manual is not None
    remote = ManualCircuitBreaker(clock=clock)
    remote.trigger_halt("halted from another terminal", "ops")
    manual.adopt_remote(remote.export_state())
    assert not manager.can_trade()
    assert manager.get_trip_reasons() == {"manual": "halted from another terminal"}
    remote.reset(operator="ops")
    manual.adopt_remote(remote.export_state())
    assert manager.can_trade() and manager.can_trade()
    # A silent import (a restart restoring state) clears the fast path too.
    remote.trigger_halt("restored", "ops")
    manual.import_state(remote.export_state())
    assert not manager.can_trade()


def test_quiet_fast_path_is_never_used_for_time_driven_trips(clock: ManualClock) -> None:
    manager = recommended(clock)
    manager.add_breaker(ConnectionCircuitBreaker(timeout_seconds=30))
    assert manager.can_trade() and manager.can_trade()
    clock.advance(31)
    assert not manager.can_trade()
    assert manager.get_status()["connection"] == "TRIPPED"


# ------------------------------------------------------------------------------ orders
def test_record_order_admits_up_to_the_limit(clock: ManualClock) -> None:
    manager = recommended(clock)
    seen = events_of(manager)
    assert [manager.record_order() for _ in range(5)] == [True, True, True, False, False]
    orders = manager.get_breaker("order_rate")
    assert orders.get_order_count() == 3  # type: ignore[union-attr]
    refused = [e for e in seen if e.kind == "order_refused"]
    assert len(refused) == 2
    assert refused[0].breaker_name == "manager"
    assert "order_rate" in (refused[0].reason or "")


def test_record_order_is_atomic_across_rate_breakers(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    per_minute = OrderRateCircuitBreaker(5, window_seconds=60, name="a_per_minute")
    per_second = OrderRateCircuitBreaker(2, window_seconds=1, name="b_per_second")
    manager.add_breaker(per_minute)
    manager.add_breaker(per_second)
    assert manager.record_order()
    assert manager.record_order()
    assert not manager.record_order()  # the 1 s window refuses...
    assert per_minute.get_order_count() == 2  # ...so the 60 s window did not record it
    assert per_second.get_order_count() == 2
    clock.advance(1)
    assert manager.record_order()
    assert manager.record_order()
    assert per_minute.get_order_count() == 4
    clock.advance(1)
    assert manager.record_order()  # the fifth in the minute
    assert not manager.record_order()  # the 60 s window (first by name) refuses
    assert per_second.get_order_count() == 1  # the 1 s window was not touched
    assert per_minute.get_order_count() == 5


def test_record_order_refuses_while_any_breaker_blocks(clock: ManualClock) -> None:
    manager = recommended(clock)
    seen = events_of(manager)
    manager.halt_all("stop", "ops")
    assert not manager.record_order()
    assert manager.get_breaker("order_rate").get_order_count() == 0  # type: ignore[union-attr]
    refused = [e for e in seen if e.kind == "order_refused"]
    assert "manual: stop" in (refused[0].reason or "")
    manager.reset_all(operator="ops")
    assert manager.record_order()


def test_record_order_without_rate_breakers(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(ManualCircuitBreaker())
    assert manager.record_order()
    manager.halt_all("stop", "ops")
    assert not manager.record_order()


def test_record_error_feeds_every_error_breaker(clock: ManualClock) -> None:
    manager = recommended(clock)
    strict = ErrorRateCircuitBreaker(1, ignore=KeyError, name="strict_errors")
    manager.add_breaker(strict)
    assert manager.record_error(TimeoutError("x"))
    assert manager.record_error(KeyError("k"), category="lookup")  # counted by one of them
    assert not strict.is_tripped
    assert manager.get_breaker("error_rate").get_error_categories() == {  # type: ignore[union-attr]
        "TimeoutError": 1,
        "lookup": 1,
    }
    manager.record_error("x")
    assert manager.get_status()["error_rate"] == "TRIPPED"
    assert manager.get_status()["strict_errors"] == "TRIPPED"


# ------------------------------------------------------------------------------ operators
def test_halt_all_adds_a_manual_breaker_when_missing(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(DrawdownCircuitBreaker("0.1"))
    seen = events_of(manager)
    breaker = manager.halt_all(reason="kill switch", operator="alice")
    assert isinstance(breaker, ManualCircuitBreaker)
    assert breaker.name == "manual"
    assert manager.get_status() == {"drawdown": "NORMAL", "manual": "MANUALLY_HALTED"}
    assert manager.get_trip_reasons() == {"manual": "kill switch"}
    assert not manager.can_trade()
    assert [(e.kind, e.operator) for e in seen] == [("halted", "alice")]
    assert manager.halt_all("again", "bob") is breaker  # reuses it
    assert len(manager.get_all_breakers()) == 2


def test_halt_all_uses_the_existing_manual_breaker(clock: ManualClock) -> None:
    manager = recommended(clock)
    manual = manager.get_breaker("manual")
    assert manager.halt_all("stop", "ops") is manual
    assert [b.name for b in manager.get_tripped()] == ["manual"]


def test_status_reasons_tripped_reset_and_reset_all(clock: ManualClock) -> None:
    manager = recommended(clock)
    seen = events_of(manager)
    manager.can_trade(current_portfolio_value=100000)
    manager.can_trade(current_portfolio_value=80000)
    manager.halt_all("investigating", "alice")
    assert manager.any_tripped()
    assert [b.name for b in manager.get_tripped()] == ["drawdown", "daily_loss", "manual"]
    reasons = manager.get_trip_reasons()
    assert list(reasons) == ["drawdown", "daily_loss", "manual"]
    assert reasons["manual"] == "investigating"
    assert reasons["drawdown"].startswith("Drawdown 20.0000% exceeds")
    manager.reset("manual", operator="alice")
    assert manager.get_status()["manual"] == "NORMAL"
    assert not manager.can_trade()
    seen.clear()
    manager.reset_all(operator="bob")
    assert not manager.any_tripped()
    assert manager.get_trip_reasons() == {}
    assert manager.can_trade()
    assert [(e.breaker_name, e.state, e.operator) for e in seen] == [
        ("drawdown", CircuitBreakerState.RESETTING, "bob"),
        ("drawdown", NORMAL, "bob"),
        ("daily_loss", CircuitBreakerState.RESETTING, "bob"),
        ("daily_loss", NORMAL, "bob"),
    ]


def test_get_details_rows(clock: ManualClock) -> None:
    manager = recommended(clock)
    manager.halt_all("stop", "ops")
    row = {r["name"]: r for r in manager.get_details()}["manual"]
    assert row == {
        "name": "manual",
        "type": "manual",
        "state": "MANUALLY_HALTED",
        "reason": "stop",
        "since": clock.now(),
        "operator": "ops",
    }
    assert "MANUALLY_HALTED" in repr(manager)


# ------------------------------------------------------------------------------ quick start
def test_quickstart_example_runs_and_tells_the_story() -> None:
    script = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout
    lines = out.splitlines()
    expected_in_order = [
        "start: {'drawdown': 'NORMAL', 'daily_loss': 'NORMAL', 'order_rate': 'NORMAL', "
        "'error_rate': 'NORMAL', 'manual': 'NORMAL'}",
        "event: order_rate NORMAL -> TRIPPED: Order rate limit reached: 10 orders in the last "
        "60s (max 10)",
        "10 orders sent, 5 refused; can trade: False",
        "event: order_rate RESETTING -> NORMAL: orders aged out of the window",
        "a minute later the orders have aged out; can trade: True",
        "event: error_rate NORMAL -> TRIPPED: Error rate exceeded: 6 errors in the last 300s "
        "(max 5)",
        "five minutes later the errors have aged out; can trade: True",
        "portfolio 92500: can trade: True",
        "event: drawdown NORMAL -> TRIPPED: Drawdown 11.0000% exceeds max 10.00% "
        "(peak 100000, current 89000)",
        "portfolio 89000: can trade: False",
        "an hour later, still latched: TRIPPED",
        "event: drawdown TRIPPED -> RESETTING by risk-desk: reviewed the slide",
        "event: drawdown RESETTING -> NORMAL by risk-desk: reviewed the slide",
        "after the reset the peak starts again at 89000; can trade: True",
        "event: manual NORMAL -> MANUALLY_HALTED by alice: exchange incident",
        "order allowed: False",
        "released; order allowed: True",
        "end: {'drawdown': 'NORMAL', 'daily_loss': 'NORMAL', 'order_rate': 'NORMAL', "
        "'error_rate': 'NORMAL', 'manual': 'NORMAL'}",
    ]
    position = 0
    for text in expected_in_order:
        matches = [i for i, line in enumerate(lines) if i >= position and line.endswith(text)]
        assert matches, f"missing (in order): {text!r}\n{out}"
        position = matches[0] + 1
    assert "daily_loss NORMAL -> TRIPPED" not in out  # no single day lost more than 5000
    assert lines[0].startswith("[Mon 2025-03-03 14:30:00]")


class EveryCheck(BaseCircuitBreaker):
    """A custom breaker whose can_trade() takes no argument: it decides on every check."""

    def __init__(self) -> None:
        super().__init__(name="every_check")
        self.calls = 0
        self.allow = True

    def can_trade(self) -> bool:
        self.calls += 1
        return self.allow and not self.is_tripped


def test_custom_breaker_without_arguments_is_asked_on_every_check(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    custom = EveryCheck()
    manager.add_breaker(custom)
    assert manager.can_trade() and manager.can_trade()
    assert custom.calls == 2  # never answered from the fast path
    custom.allow = False
    assert not manager.can_trade()
    assert not manager.record_order()


def test_manager_without_breakers(clock: ManualClock) -> None:
    manager = CircuitBreakerManager(clock=clock)
    assert manager.can_trade()
    # Nothing declares the observation: refused like a typo (SPEC §3), never ignored.
    with pytest.raises(InvalidInputError, match="current_portfolio_value"):
        manager.can_trade(current_portfolio_value=100)
    assert manager.record_order()
    assert manager.get_status() == {}
    assert not manager.record_error("x")


def test_connection_breaker_adopts_the_manager_clock_for_its_timeout(clock: ManualClock) -> None:
    clock.advance(1000)
    connection = ConnectionCircuitBreaker(timeout_seconds=30)  # made on the system clock
    manager = CircuitBreakerManager(breakers=[connection], clock=clock)
    assert connection.clock is clock
    assert manager.can_trade()  # the silence is measured from adoption, on the new clock
    clock.advance(30)
    assert manager.can_trade()
    clock.advance(0.5)
    assert not manager.can_trade()


def test_admit_order_reduce_only_must_be_a_real_bool(clock: ManualClock) -> None:
    manager = recommended(clock)
    manager.can_trade(current_portfolio_value=100000)
    manager.can_trade(current_portfolio_value=80000)  # drawdown and daily loss tripped
    with pytest.raises(TypeError, match="reduce_only"):
        manager.admit_order(reduce_only="False")  # type: ignore[arg-type]
    assert manager.get_breaker("order_rate").get_order_count() == 0  # type: ignore[union-attr]
    assert manager.admit_order() != []  # refused: risk breakers tripped
    assert manager.admit_order(reduce_only=True) == []  # a reducing order may go


def test_refusal_log_is_throttled_but_every_event_is_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    manager = CircuitBreakerManager(clock=clock)
    manager.add_breaker(OrderRateCircuitBreaker(max_orders_per_minute=1))
    events: list[Any] = []
    manager.add_listener(events.append)
    assert manager.record_order()
    with caplog.at_level(logging.WARNING, logger="haltgate.manager"):
        refused = [manager.record_order() for _ in range(500)]
        clock.advance(1)
        manager.halt_all("stop", "ops")
        refused.append(manager.record_order())
    assert not any(refused)
    lines = [r for r in caplog.records if r.getMessage() == "order_refused"]
    # The first refusal at once, then one line a second with the count it stood for.
    assert len(lines) == 2
    assert lines[0].refused_since_last_log == 0  # type: ignore[attr-defined]
    assert lines[1].refused_since_last_log == 499  # type: ignore[attr-defined]
    assert sum(1 for e in events if e.kind == "order_refused") == 501


def test_record_order_fast_path_still_sees_every_other_breaker() -> None:
    # Orders that fill the window take the fast path to the window's own check; a trip or
    # halt anywhere else must still refuse the very next order.
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    manager = CircuitBreakerManager(clock=clock)
    drawdown = DrawdownCircuitBreaker(Decimal("0.10"))
    window = OrderRateCircuitBreaker(2, window_seconds=10)
    for breaker in (drawdown, window, ManualCircuitBreaker()):
        manager.add_breaker(breaker)
    manager.can_trade(current_portfolio_value=100)
    assert manager.record_order() and manager.record_order()  # fills the window
    assert not manager.record_order()  # full: refused, and the window breaker trips
    clock.advance(10)
    assert manager.record_order()
    manager.halt_all("stop", "ops")
    assert not manager.record_order()
    manager.reset("manual", operator="ops")
    clock.advance(10)
    assert manager.record_order()
    drawdown.update(80)
    assert not manager.record_order()
    assert window.get_order_count() == 1
