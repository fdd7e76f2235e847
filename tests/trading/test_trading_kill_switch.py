"""The kill switch: key-guarded reset of the max-drawdown breaker, lock-out after five
wrong keys (which survives a restart on the same store), audit and events."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from trading_fakes import SECRET, FakePortfolio, run

from haltgate import (
    AuthorizationError,
    BreakerEvent,
    CircuitBreakerState,
    InvalidInputError,
    TradingBreakerConfig,
    TradingCircuitBreakers,
)


def _tripped(make, **fields):
    fake = FakePortfolio()
    breakers = make(fake, connection_timeout_seconds=86400, **fields)
    fake.drawdown = Decimal("-10.5")
    run(breakers.check_once())
    assert breakers.get_breaker("max_drawdown").is_tripped
    return breakers, fake


def _audit(breakers) -> list[tuple[str, dict]]:
    return [(e.event, e.to_dict()["payload"]) for e in breakers.store.iter_audit()]


def test_no_hash_configured(make):
    breakers, _ = _tripped(make, kill_switch_key_hash=None)
    warnings: list[BreakerEvent] = []
    breakers.register_warning_callback(warnings.append)
    with pytest.raises(AuthorizationError) as info:
        breakers.reset_kill_switch(SECRET)
    assert "hash_key" in str(info.value)
    assert "kill_switch_key_hash" in str(info.value)
    assert breakers.get_breaker("max_drawdown").is_tripped
    assert _audit(breakers)[-1][0] == "kill_switch_reset_refused"
    assert _audit(breakers)[-1][1]["outcome"] == "not_configured"
    assert warnings[-1].details["kill_switch_attempt"] == "not_configured"


def test_wrong_key_is_refused_audited_and_announced(make):
    breakers, _ = _tripped(make)
    warnings: list[BreakerEvent] = []
    breakers.register_warning_callback(warnings.append)
    with pytest.raises(AuthorizationError, match="Wrong kill-switch key"):
        breakers.reset_kill_switch("guess", operator="mallory")
    assert not breakers.can_trade()
    event, payload = _audit(breakers)[-1]
    assert event == "kill_switch_reset_refused"
    assert payload["outcome"] == "wrong_key"
    assert payload["failed_attempts"] == 1
    assert SECRET not in str(payload) and "guess" not in str(payload)
    assert warnings[-1].operator == "mallory"
    assert warnings[-1].breaker_name == "max_drawdown"
    assert breakers.store.verify_audit().ok


def test_correct_key_resets(make):
    breakers, fake = _tripped(make)
    seen: list[BreakerEvent] = []
    breakers.add_listener(seen.append)
    assert breakers.reset_kill_switch(SECRET, operator="alice") is True
    assert breakers.get_breaker("max_drawdown").state is CircuitBreakerState.NORMAL
    assert breakers.can_trade()
    assert [e.state for e in seen if e.kind == "reset"] == [
        CircuitBreakerState.RESETTING,
        CircuitBreakerState.NORMAL,
    ]
    events = [e for e, _ in _audit(breakers)]
    assert events[-2:] == ["kill_switch_reset_accepted", "breaker_reset"]
    entry = list(breakers.store.iter_audit())[-1]
    assert entry.operator == "alice"
    # The reset grants a fresh allowance from -10.5: the same reading does not re-trip.
    run(breakers.check_once())
    assert breakers.can_trade()
    fake.drawdown = Decimal("-20.5")
    run(breakers.check_once())
    assert not breakers.can_trade()


def test_five_wrong_keys_lock_out_for_five_minutes(make, clock):
    breakers, _ = _tripped(make)
    for attempt in range(4):
        with pytest.raises(AuthorizationError, match="Wrong"):
            breakers.reset_kill_switch(f"wrong-{attempt}")
    with pytest.raises(AuthorizationError, match="locked out for 300 seconds"):
        breakers.reset_kill_switch("wrong-5")
    assert breakers.kill_switch.status()["locked_out"] is True
    with pytest.raises(AuthorizationError, match="locked out"):
        breakers.reset_kill_switch(SECRET)  # even the right key while locked out
    clock.advance(299)
    with pytest.raises(AuthorizationError, match="locked out"):
        breakers.reset_kill_switch(SECRET)
    assert breakers.get_breaker("max_drawdown").is_tripped
    clock.advance(1)
    assert breakers.reset_kill_switch(SECRET) is True
    outcomes = [p["outcome"] for e, p in _audit(breakers) if e.startswith("kill_switch_reset")]
    assert outcomes == ["wrong_key"] * 4 + ["wrong_key_locked_out"] + ["locked_out"] * 2 + [
        "accepted"
    ]


def test_a_success_clears_the_failure_count(make):
    breakers, _ = _tripped(make)
    for _ in range(4):
        with pytest.raises(AuthorizationError):
            breakers.reset_kill_switch("wrong")
    assert breakers.reset_kill_switch(SECRET)
    assert breakers.kill_switch.failed_attempts() == 0
    for _ in range(4):
        with pytest.raises(AuthorizationError, match="Wrong"):
            breakers.reset_kill_switch("wrong")
    assert breakers.kill_switch.lockout_remaining() == 0


def test_lockout_and_trip_survive_a_restart_on_the_same_store(make, clock, store, key_hash):
    first, _ = _tripped(make)
    for _ in range(5):
        with pytest.raises(AuthorizationError):
            first.reset_kill_switch("wrong")
    clock.advance(100)
    second = TradingCircuitBreakers(
        FakePortfolio(),
        TradingBreakerConfig(kill_switch_key_hash=key_hash, connection_timeout_seconds=86400),
        clock=clock,
        store=store,
    )
    assert second.get_breaker("max_drawdown").is_tripped
    assert not second.can_trade()
    with pytest.raises(AuthorizationError, match="locked out for 200 more seconds"):
        second.reset_kill_switch(SECRET)
    clock.advance(200)
    assert second.reset_kill_switch(SECRET) is True
    assert second.can_trade()


def test_reset_all_and_reset_breaker_leave_the_kill_switch(make):
    breakers, _ = _tripped(make)
    breakers.reset_all()
    with pytest.raises(AuthorizationError, match="reset_kill_switch"):
        breakers.reset_breaker("max_drawdown")
    assert breakers.get_breaker("max_drawdown").is_tripped
    assert not breakers.can_trade()


def test_reset_with_a_valid_key_while_not_tripped(make):
    fake = FakePortfolio()
    breakers = make(fake)
    seen: list[BreakerEvent] = []
    breakers.register_warning_callback(seen.append)
    assert breakers.reset_kill_switch(SECRET) is True
    assert seen[-1].details["kill_switch_attempt"] == "accepted"


def test_a_damaged_hash_is_refused_when_loaded_not_at_the_reset(make):
    # SPEC §6: hashes are checked when they are loaded; a damaged one never gets as far as
    # an operator's reset attempt.
    with pytest.raises(InvalidInputError, match="kill_switch_key_hash") as info:
        _tripped(make, kill_switch_key_hash="scrypt$16384$8$1$broken")
    assert "damaged hash" in str(info.value) and "broken" not in str(info.value)


def test_concurrent_wrong_keys_cannot_exceed_five_attempts(make):
    breakers, _ = _tripped(make)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            breakers.reset_kill_switch("wrong")
        except AuthorizationError as refused:
            with lock:
                outcomes.append(str(refused))

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 10
    assert sum(o.startswith("Wrong") for o in outcomes) == 5
    assert sum(o.startswith("Kill switch resets are locked out") for o in outcomes) == 5


def test_lockout_and_trip_survive_a_restart_on_sqlite(tmp_path, clock, key_hash):
    url = f"sqlite:///{tmp_path / 'haltgate.db'}"
    config = TradingBreakerConfig(kill_switch_key_hash=key_hash, connection_timeout_seconds=86400)
    fake = FakePortfolio()
    fake.drawdown = Decimal("-10")
    first = TradingCircuitBreakers(fake, config, clock=clock, store=url)
    run(first.check_once())
    for _ in range(5):
        with pytest.raises(AuthorizationError):
            first.reset_kill_switch("wrong")
    first.close()

    second = TradingCircuitBreakers(FakePortfolio(), config, clock=clock, store=url)
    try:
        assert second.get_breaker("max_drawdown").is_tripped
        with pytest.raises(AuthorizationError, match="locked out"):
            second.reset_kill_switch(SECRET)
        clock.advance(300)
        assert second.reset_kill_switch(SECRET) is True
        events = [e.event for e in second.store.iter_audit()]
        assert events.count("kill_switch_reset_refused") == 6
        assert events[-2:] == ["kill_switch_reset_accepted", "breaker_reset"]
        assert second.store.verify_audit().ok
    finally:
        second.close()
