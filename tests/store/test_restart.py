"""Restart in real processes: a new process with the same store restores trips, halts,
drawdown peak windows, daily baselines and kill-switch lock-out counters; a process
killed with SIGKILL never comes back less restrictive than its caller last saw."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from .conftest import read_line, spawn

pytestmark = pytest.mark.timeout(120)

BREAKERS = """
from haltgate import (CircuitBreakerManager, DailyLossCircuitBreaker,
    DrawdownCircuitBreaker, ManualCircuitBreaker)
def make(url):
    return CircuitBreakerManager(breakers=[
        DrawdownCircuitBreaker("0.2", name="drawdown"),
        DailyLossCircuitBreaker(500, name="daily_loss"),
        DailyLossCircuitBreaker(100, name="daily_loss_tight"),
        ManualCircuitBreaker(name="manual"),
    ], store=url)
"""

# Builds up state, then exits WITHOUT calling close() (a program that just ends).
FIRST = (
    BREAKERS
    + """
import sys
m = make(sys.argv[1])
m.can_trade(current_portfolio_value=1000)
m.can_trade(current_portfolio_value=1200)            # drawdown peak 1200, no trip
m.can_trade(current_portfolio_value=1100)            # daily: baseline 1000, -... no: +100
m.get_breaker("daily_loss_tight").can_trade(current_portfolio_value=850)  # loss 150 > 100
m.halt_all("fat finger on desk 3", "alice")
m.store.set_value("kill_switch.lockout", {"failures": 5, "until": "2030-01-01T00:00:00+00:00"})
print("done", flush=True)
"""
)

SECOND = (
    BREAKERS
    + """
import json, sys
m = make(sys.argv[1])
dd, daily, tight = (m.get_breaker(n) for n in ("drawdown", "daily_loss", "daily_loss_tight"))
print(json.dumps({
    "status": m.get_status(),
    "reasons": m.get_trip_reasons(),
    "operator": m.get_breaker("manual").get_trip_details().get("operator"),
    "peak": str(dd.get_peak()),
    "baseline": str(daily.get_start_of_day_value()),
    "tight_baseline": str(tight.get_start_of_day_value()),
    "lockout": m.store.get_value("kill_switch.lockout"),
    "can_trade": m.can_trade(),
    "audit_ok": bool(m.store.verify_audit()),
}), flush=True)
m.close()
"""
)


def run(code: str, url: str) -> str:
    proc = spawn(code, url)
    line = read_line(proc, 30)
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    return line


def check_restored(url: str) -> None:
    assert run(FIRST, url) == "done"
    restored = json.loads(run(SECOND, url))
    assert restored["status"] == {
        "drawdown": "NORMAL",
        "daily_loss": "NORMAL",
        "daily_loss_tight": "TRIPPED",
        "manual": "MANUALLY_HALTED",
    }
    assert restored["reasons"]["manual"] == "fat finger on desk 3"
    assert "Daily loss 150" in restored["reasons"]["daily_loss_tight"]
    assert restored["operator"] == "alice"
    assert restored["peak"] == "1200"
    assert restored["baseline"] == "1000"
    assert restored["tight_baseline"] == "1000"
    assert restored["lockout"] == {"failures": 5, "until": "2030-01-01T00:00:00+00:00"}
    assert restored["can_trade"] is False
    assert restored["audit_ok"] is True


def test_sqlite_restores_everything_in_a_new_process(tmp_path: Path) -> None:
    check_restored(f"sqlite:///{tmp_path / 'h.db'}")


def test_redis_restores_everything_in_a_new_process(redis_url: str) -> None:
    check_restored(redis_url)


# Runs a random trip / halt / reset sequence forever. Before each call it prints the
# intended action, after it the states it saw returned. Its first line is what it restored.
CHAOS = """
import json, random, sys
from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, ManualCircuitBreaker
m = CircuitBreakerManager(
    breakers=[ManualCircuitBreaker(), DrawdownCircuitBreaker("0.1")], store=sys.argv[1]
)
def seen():
    print(json.dumps(m.get_status()), flush=True)
seen()
rng = random.Random(int(sys.argv[2]))
while True:
    action = rng.choice(["halt", "reset_manual", "trip", "reset_drawdown", "observe"])
    print(json.dumps({"doing": action}), flush=True)
    if action == "halt":
        m.halt_all("chaos halt", "chaos")
    elif action == "reset_manual":
        m.reset("manual", operator="chaos")
    elif action == "trip":
        m.can_trade(current_portfolio_value=100)
        m.can_trade(current_portfolio_value=80)
    elif action == "reset_drawdown":
        m.reset("drawdown", operator="chaos")
    else:
        m.can_trade(current_portfolio_value=rng.randint(90, 110))
    seen()
"""

BLOCKING = {"TRIPPED", "MANUALLY_HALTED"}
# A reset that was committed but killed before it returned may come back NORMAL.
RESETS = {"reset_manual": "manual", "reset_drawdown": "drawdown"}


def kill_points(url: str, points: int) -> int:
    """Kill the chaos process ``points`` times; return how many kills landed while
    something was blocking (so the test shows it exercised restrictive states)."""
    rng = random.Random(4242)
    last_seen: dict[str, str] | None = None
    in_flight: str | None = None
    blocking_kills = 0
    for point in range(points):
        proc = spawn(CHAOS, url, str(rng.randrange(1 << 30)))
        restored = json.loads(read_line(proc, 30))
        if last_seen is not None:
            for name, state in last_seen.items():
                if state in BLOCKING and RESETS.get(in_flight or "") != name:
                    assert restored[name] == state, (point, last_seen, in_flight, restored)
        time.sleep(rng.uniform(0.0, 0.12))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stdout is not None
        lines = [json.loads(line) for line in proc.stdout.read().splitlines() if line.strip()]
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
        states = [line for line in lines if "doing" not in line]
        last_seen = states[-1] if states else restored
        in_flight = lines[-1]["doing"] if lines and "doing" in lines[-1] else None
        blocking_kills += any(s in BLOCKING for s in last_seen.values())
    check_state_matches_audit(url)
    return blocking_kills


def check_state_matches_audit(url: str) -> None:
    """After all the kills: the chain is intact and every breaker's stored state is the
    one its last audit entry describes (state and audit were written together)."""
    from haltgate.store import open_store

    store = open_store(url)
    try:
        assert store.verify_audit().ok
        last: dict[str, str] = {}
        for entry in store.iter_audit():
            if entry.breaker:
                last[entry.breaker] = json.loads(entry.payload)["state"]
        for name, snapshot in store.load_all_snapshots().items():
            assert snapshot["state"] == last.get(name, "NORMAL"), (name, snapshot, last)
    finally:
        store.close()


def test_sigkill_never_comes_back_less_restrictive_sqlite(tmp_path: Path) -> None:
    blocking = kill_points(f"sqlite:///{tmp_path / 'chaos.db'}", points=50)
    assert blocking >= 10  # the kills did land in restrictive states


def test_sigkill_never_comes_back_less_restrictive_redis(redis_url: str) -> None:
    blocking = kill_points(redis_url, points=50)
    assert blocking >= 10
