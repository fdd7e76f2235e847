"""Each of the facade's breakers trips for its own reason; warnings fire once per crossing;
auto_recovery / cooldown / sessions; reset_breaker and reset_all."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from trading_fakes import FakePortfolio, run

from haltgate import AuthorizationError, BreakerEvent, CircuitBreakerState, InvalidInputError


def test_daily_loss_boundary_is_inclusive(make, sync_portfolio):
    breakers = make(sync_portfolio)
    sync_portfolio.pnl_pct = Decimal("-1.99")
    assert run(breakers.check_once())
    assert breakers.can_trade()
    sync_portfolio.pnl_pct = Decimal("-2.0")
    run(breakers.check_once())
    assert not breakers.can_trade()
    reasons = breakers.get_blocking_reasons()
    assert len(reasons) == 1
    assert reasons[0].startswith("daily_loss: ")
    assert "-2.0%" in reasons[0]
    details = breakers.get_breaker("daily_loss").get_trip_details()
    assert details["threshold"] == Decimal("-2.0")
    assert details["observed"] == Decimal("-2.0")


def test_trip_callback_receives_the_trip(make, sync_portfolio):
    breakers = make(sync_portfolio)
    trips: list[BreakerEvent] = []
    breakers.register_trip_callback(trips.append)
    sync_portfolio.pnl_pct = Decimal("-2.5")
    run(breakers.check_once())
    run(breakers.check_once())  # still tripped: no second trip event
    assert [(e.kind, e.breaker_name) for e in trips] == [("tripped", "daily_loss")]
    assert trips[0].state is CircuitBreakerState.TRIPPED


def test_warnings_fire_once_per_crossing_and_rearm(make, sync_portfolio):
    breakers = make(sync_portfolio)
    warnings: list[BreakerEvent] = []
    breakers.register_warning_callback(warnings.append)
    for pct in ["-1.4", "-1.5", "-1.6", "-1.8", "-1.5"]:  # -1.5 is at the level: a crossing
        sync_portfolio.pnl_pct = Decimal(pct)
        run(breakers.check_once())
    assert len(warnings) == 1
    assert warnings[0].breaker_name == "daily_loss"
    assert warnings[0].details["observed"] == Decimal("-1.5")
    sync_portfolio.pnl_pct = Decimal("-1.0")  # recovers above the level: re-armed
    run(breakers.check_once())
    sync_portfolio.pnl_pct = Decimal("-1.7")
    run(breakers.check_once())
    assert len(warnings) == 2
    assert breakers.can_trade()  # a warning never blocks
    audit = [e.event for e in breakers.store.iter_audit()]
    assert audit.count("breaker_warning") == 2


def test_drawdown_warning_and_kill_switch_trip(make, sync_portfolio):
    breakers = make(sync_portfolio)
    warnings: list[BreakerEvent] = []
    trips: list[BreakerEvent] = []
    breakers.register_warning_callback(warnings.append)
    breakers.register_trip_callback(trips.append)
    sync_portfolio.drawdown = Decimal("-7.0")
    run(breakers.check_once())
    assert [e.breaker_name for e in warnings] == ["max_drawdown"]
    assert breakers.can_trade()
    sync_portfolio.drawdown = Decimal("-9.99")
    run(breakers.check_once())
    assert breakers.can_trade()
    sync_portfolio.drawdown = Decimal("-10.0")
    run(breakers.check_once())
    assert not breakers.can_trade()
    assert [e.breaker_name for e in trips] == ["max_drawdown"]
    assert "reset_kill_switch" in breakers.get_blocking_reasons()[0]


def test_volatility_trips_on_an_extreme_return(make, sync_portfolio):
    breakers = make(sync_portfolio)
    for r in ["0.001", "-0.001"] * 10:
        breakers.record_return(r)
    assert breakers.can_trade()
    breakers.record_return("-0.08")
    assert not breakers.can_trade()
    assert "standard deviations" in breakers.get_breaker("volatility").get_trip_reason()


def test_volatility_latches_without_auto_recovery(make, sync_portfolio, clock):
    breakers = make(sync_portfolio, cooldown_seconds=60, connection_timeout_seconds=86400)
    for r in ["0.001", "-0.001"] * 10:
        breakers.record_return(r)
    breakers.record_return("0.1")
    clock.advance(3600)
    assert not breakers.can_trade()
    assert breakers.reset_breaker("volatility") is True
    assert breakers.can_trade()


def test_volatility_clears_after_cooldown_with_auto_recovery(make, sync_portfolio, clock):
    breakers = make(
        sync_portfolio, cooldown_seconds=60, auto_recovery=True, connection_timeout_seconds=86400
    )
    for r in ["0.001", "-0.001"] * 10:
        breakers.record_return(r)
    breakers.record_return("0.1")
    clock.advance(59)
    assert not breakers.can_trade()
    clock.advance(1)
    assert breakers.can_trade()


def test_market_price_hook_feeds_volatility(make, clock):
    class WithPrice(FakePortfolio):
        price = Decimal("100")

        def get_market_price(self) -> Decimal:
            return self.price

    fake = WithPrice()
    breakers = make(fake)
    for i in range(21):
        fake.price = Decimal("100") + (Decimal("0.1") if i % 2 else 0)
        run(breakers.check_once())
    assert breakers.can_trade()
    fake.price = Decimal("80")
    run(breakers.check_once())
    assert breakers.get_breaker("volatility").is_tripped


def test_connection_breaker_trips_after_failures_and_clears_on_success(make, sync_portfolio):
    breakers = make(sync_portfolio)
    breakers.record_connection_failure(ConnectionError("broker down"))
    breakers.record_connection_failure(ConnectionError("broker down"))
    assert breakers.can_trade()
    breakers.record_connection_failure(ConnectionError("broker down"))
    assert not breakers.can_trade()
    assert breakers.get_blocking_reasons()[0].startswith("connection: 3 consecutive")
    breakers.record_connection_success()
    assert breakers.can_trade()


def test_daily_loss_without_auto_recovery_stays_until_next_session(make, sync_portfolio, clock):
    breakers = make(sync_portfolio, cooldown_seconds=60, connection_timeout_seconds=86400)
    sync_portfolio.pnl_pct = Decimal("-2.5")
    run(breakers.check_once())
    sync_portfolio.pnl_pct = Decimal("0.5")
    run(breakers.check_once())
    clock.advance(3600)
    assert not breakers.can_trade()
    clock.set(datetime(2026, 3, 3, 0, 0, tzinfo=UTC))  # next UTC session
    assert breakers.can_trade()
    reset = [e for e in breakers.store.iter_audit() if e.event == "breaker_reset"]
    assert reset[-1].to_dict()["payload"]["details"]["cause"] == "new_session"


def test_daily_loss_auto_recovery_after_cooldown(make, sync_portfolio, clock):
    breakers = make(
        sync_portfolio, cooldown_seconds=300, auto_recovery=True, connection_timeout_seconds=86400
    )
    sync_portfolio.pnl_pct = Decimal("-2.5")
    run(breakers.check_once())
    clock.advance(100)
    sync_portfolio.pnl_pct = Decimal("-1.0")
    run(breakers.check_once())
    clock.advance(199)
    assert not breakers.can_trade()  # 299 s since the last value at or below the limit
    clock.advance(1)
    assert breakers.can_trade()


def test_auto_recovery_waits_while_the_loss_persists(make, sync_portfolio, clock):
    breakers = make(
        sync_portfolio, cooldown_seconds=300, auto_recovery=True, connection_timeout_seconds=86400
    )
    sync_portfolio.pnl_pct = Decimal("-2.5")
    run(breakers.check_once())
    clock.advance(1000)
    run(breakers.check_once())  # still -2.5: no recovery
    assert not breakers.can_trade()


def test_manual_reset_grants_a_fresh_allowance(make, sync_portfolio):
    breakers = make(sync_portfolio)
    sync_portfolio.pnl_pct = Decimal("-2.5")
    run(breakers.check_once())
    assert breakers.reset_breaker("daily_loss", operator="alice") is True
    sync_portfolio.pnl_pct = Decimal("-4.0")
    run(breakers.check_once())
    assert breakers.can_trade()  # the new limit is -2.5 + -2.0 = -4.5
    sync_portfolio.pnl_pct = Decimal("-4.5")
    run(breakers.check_once())
    assert not breakers.can_trade()
    breakers.reset_breaker("daily_loss")
    sync_portfolio.pnl_pct = Decimal("-1.0")  # back inside the configured limit
    run(breakers.check_once())
    sync_portfolio.pnl_pct = Decimal("-2.0")
    run(breakers.check_once())
    assert not breakers.can_trade()


def test_reset_breaker_refuses_the_kill_switch(make, sync_portfolio):
    breakers = make(sync_portfolio)
    sync_portfolio.drawdown = Decimal("-11")
    run(breakers.check_once())
    for name in ("max_drawdown", "kill_switch"):
        with pytest.raises(AuthorizationError, match="reset_kill_switch"):
            breakers.reset_breaker(name)
    assert not breakers.can_trade()
    with pytest.raises(InvalidInputError, match="unknown breaker"):
        breakers.reset_breaker("nope")


def test_reset_all_never_resets_the_kill_switch(make, sync_portfolio):
    breakers = make(sync_portfolio)
    sync_portfolio.pnl_pct = Decimal("-3")
    sync_portfolio.drawdown = Decimal("-15")
    run(breakers.check_once())
    breakers.record_connection_failure()
    breakers.record_connection_failure()
    breakers.record_connection_failure()
    assert sorted(breakers.reset_all(operator="bob")) == ["connection", "daily_loss"]
    assert not breakers.can_trade()
    assert breakers.get_breaker("max_drawdown").is_tripped
    assert breakers.get_breaker("daily_loss").state is CircuitBreakerState.NORMAL


def test_without_require_manual_reset_drawdown_is_an_ordinary_breaker(make, sync_portfolio):
    breakers = make(sync_portfolio, require_manual_reset=False)
    sync_portfolio.drawdown = Decimal("-15")
    run(breakers.check_once())
    assert not breakers.can_trade()
    assert breakers.reset_all() == ["max_drawdown"]
    assert breakers.can_trade()


def test_failing_and_async_callbacks_are_isolated(make, sync_portfolio):
    breakers = make(sync_portfolio)
    seen: list[str] = []

    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("callback bug")

    async def async_cb(event: BreakerEvent) -> None:
        seen.append("async:" + event.breaker_name)

    breakers.register_trip_callback(broken)
    breakers.register_trip_callback(async_cb)
    breakers.register_trip_callback(lambda e: seen.append("sync:" + e.breaker_name))

    async def scenario() -> None:
        sync_portfolio.pnl_pct = Decimal("-2")
        assert await breakers.check_once()
        for _ in range(5):
            await __import__("asyncio").sleep(0)

    run(scenario())
    assert sorted(seen) == ["async:daily_loss", "sync:daily_loss"]
    assert not breakers.can_trade()


def test_status_is_comprehensive(make, sync_portfolio):
    breakers = make(sync_portfolio)
    sync_portfolio.pnl_pct = Decimal("-2.1")
    run(breakers.check_once())
    run(breakers.record_order())
    status = breakers.get_status()
    assert status["can_trade"] is False
    assert set(status["breakers"]) == {
        "daily_loss",
        "max_drawdown",
        "position_concentration",
        "volatility",
        "orders_per_minute",
        "orders_per_hour",
        "connection",
    }
    assert status["breakers"]["daily_loss"]["state"] == "TRIPPED"
    assert status["breakers"]["daily_loss"]["value_pct"] == Decimal("-2.1")
    assert status["portfolio"]["daily_pnl_pct"] == Decimal("-2.1")
    assert status["portfolio"]["total_value"] == Decimal("100000")
    assert status["kill_switch"]["key_configured"] is True
    assert status["orders"]["last_minute"] == 0  # refused while blocked: not counted
    assert "kill_switch_key_hash" not in status["config"]


def test_connection_times_out_without_signs_of_life(make, sync_portfolio, clock):
    breakers = make(sync_portfolio, connection_timeout_seconds=30)
    clock.advance(30)
    assert breakers.can_trade()
    clock.advance(1)
    assert not breakers.can_trade()
    assert "No success or heartbeat" in breakers.get_blocking_reasons()[0]
    assert run(breakers.check_once())  # a provider answer is a sign of life
    assert breakers.can_trade()


def test_daily_loss_trip_survives_the_wall_clock_stepping_back_across_midnight(
    make, sync_portfolio, clock
):
    clock.set(datetime(2026, 3, 3, 0, 30, tzinfo=UTC))
    breakers = make(sync_portfolio, connection_timeout_seconds=86400)
    sync_portfolio.pnl_pct = Decimal("-2.5")
    run(breakers.check_once())
    assert not breakers.can_trade()
    sync_portfolio.pnl_pct = Decimal("0.5")
    clock.set(datetime(2026, 3, 2, 23, 50, tzinfo=UTC))  # wall clock stepped back a day
    run(breakers.check_once())
    assert not breakers.can_trade()
    assert breakers.get_blocking_reasons()[0].startswith("daily_loss: ")
    clock.set(datetime(2026, 3, 3, 0, 40, tzinfo=UTC))  # forward again: the same session
    run(breakers.check_once())
    assert not breakers.can_trade()
    clock.set(datetime(2026, 3, 4, 0, 0, tzinfo=UTC))  # the next real session
    assert breakers.can_trade()
    resets = [e for e in breakers.store.iter_audit() if e.event == "breaker_reset"]
    assert (
        resets[-1].to_dict()["payload"]["details"]["session_start"] == "2026-03-04T00:00:00+00:00"
    )
