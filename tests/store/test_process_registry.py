"""The live-process registry (SPEC §6): a real trading process registers in the store,
``haltgate status`` lists it and its breakers, ``halt NAME`` / ``reset NAME`` reach a
breaker that only the live process has (no stored record), and a killed process shows as
not live after its TTL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, hash_key
from haltgate.authority import claim_keys
from haltgate.store.sqlite import SQLiteStore

from .conftest import read_line, spawn

pytestmark = pytest.mark.timeout(120)

RunCli = Callable[..., subprocess.CompletedProcess[str]]

# A trading process: a manager on the store with a drawdown breaker that never trips (and a
# daily-loss breaker, never touched), a short heartbeat, and a loop on can_trade() that
# prints each flip with its time.
TRADER = """
import sys, time
from haltgate import CircuitBreakerManager, DailyLossCircuitBreaker, DrawdownCircuitBreaker
from haltgate.store import open_store
store = open_store(sys.argv[1])
store.registration.configure(heartbeat_seconds=0.1, ttl_seconds=0.6)
m = CircuitBreakerManager(
    breakers=[DrawdownCircuitBreaker("0.10", lookback_days=30), DailyLossCircuitBreaker("5000")],
    store=store,
)
last = None
while True:
    now = m.can_trade()
    if now != last:
        print(f"can_trade {now} {time.time()}", flush=True)
        last = now
    time.sleep(0.001)
"""

BOUND = {"sqlite": 0.25, "redis": 0.05}


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'f.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


def _status(run_cli: RunCli, url: str) -> dict[str, Any]:
    done = run_cli("--store", url, "status", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _flip(proc: subprocess.Popen[str], timeout: float = 10) -> tuple[bool, float]:
    words = read_line(proc, timeout).split()
    assert words[0] == "can_trade", words
    return words[1] == "True", float(words[2])


def _wait_registered(run_cli: RunCli, url: str, pid: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        report = _status(run_cli, url)
        if any(p["pid"] == pid for p in report["processes"]):
            return report
        assert time.monotonic() < deadline, report


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_status_halt_and_reset_reach_a_breaker_only_a_live_process_has(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, run_cli: RunCli
) -> None:
    url = _url(backend, request, tmp_path)
    trader = spawn(TRADER, url)
    try:
        # (One line at a time: read_line's select() cannot see lines already buffered.)
        allowed, _ = _flip(trader, 20)
        assert allowed is True

        # status lists the process (pid, host, last seen) and its breakers, which have no
        # stored record yet.
        report = _wait_registered(run_cli, url, trader.pid)
        (process,) = report["processes"]
        assert process["pid"] == trader.pid and process["host"] == socket.gethostname()
        assert process["live"] is True and process["last_seen"]
        assert process["ttl_seconds"] == 0.6 and process["heartbeat_seconds"] == 0.1
        drawdown = next(b for b in process["breakers"] if b["name"] == "drawdown")
        assert drawdown == {
            "name": "drawdown",
            "type": "drawdown",
            "parameters": {"lookback_days": "30", "max_drawdown_pct": "0.10"},
            "state": "NORMAL",
        }
        row = next(b for b in report["breakers"] if b["name"] == "drawdown")
        assert row["state"] == "NORMAL" and row["stored"] is False
        assert report["trading_allowed"] is True
        text = run_cli("--store", url, "status").stdout
        assert f"pid {trader.pid} on {socket.gethostname()}: live, last seen" in text
        assert "max_drawdown_pct=0.10" in text
        # The heartbeat goes on: last seen moves.
        later = _status(run_cli, url)["processes"][0]
        assert later["last_seen"] > process["last_seen"]

        # halt drawdown: written through the store, adopted by the process.
        halted = run_cli("--store", url, "halt", "drawdown", "--reason", "r", "--operator", "o")
        returned = time.time()
        assert halted.returncode == 0, halted.stderr
        assert f"pid {trader.pid}" in halted.stdout
        allowed, at = _flip(trader)
        assert allowed is False
        assert at - returned < BOUND[backend], at - returned
        report = _status(run_cli, url)
        row = next(b for b in report["breakers"] if b["name"] == "drawdown")
        assert row["state"] == "MANUALLY_HALTED" and row["operator"] == "o"
        assert row["stored"] is True

        reset = run_cli("--store", url, "reset", "drawdown", "--operator", "o")
        returned = time.time()
        assert reset.returncode == 0, reset.stderr
        allowed, at = _flip(trader)
        assert allowed is True
        assert at - returned < BOUND[backend], at - returned

        # Audited, with the operator.
        tail = run_cli("--store", url, "audit", "tail", "--json").stdout.splitlines()
        events = [(e["event"], e["breaker"], e["operator"]) for e in map(json.loads, tail)]
        assert ("breaker_halted", "drawdown", "o") in events
        assert ("breaker_reset", "drawdown", "o") in events

        # A name no live process has and no record has is still unknown.
        unknown = run_cli("--store", url, "halt", "nothing", "--reason", "r", "--operator", "o")
        assert unknown.returncode == 2 and "no breaker named 'nothing'" in unknown.stderr

        # kill -9: no clean close, so the entry stays, and goes stale after its TTL.
        os.kill(trader.pid, signal.SIGKILL)
        trader.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:
            (process,) = _status(run_cli, url)["processes"]
            if not process["live"]:
                break
            assert time.monotonic() < deadline, process
        assert process["pid"] == trader.pid and process["age_seconds"] > 0.6
        text = run_cli("--store", url, "status").stdout
        assert f"pid {trader.pid} on {socket.gethostname()}: NOT LIVE" in text
        assert "0 live, 1 not live" in text
        # daily_loss had no record and its only process is gone: not a known breaker now,
        # and the error names the process that had it.
        gone = run_cli("--store", url, "halt", "daily_loss", "--reason", "r", "--operator", "o")
        assert gone.returncode == 2, gone.stdout
        assert "no breaker named 'daily_loss'" in gone.stderr
        assert f"pid {trader.pid} on {socket.gethostname()} had one but is NOT LIVE" in gone.stderr
    finally:
        if trader.poll() is None:
            trader.kill()
            trader.wait(timeout=10)


def test_a_clean_close_removes_the_entry(tmp_path: Path, run_cli: RunCli) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    trader = spawn(
        "import sys, time\n"
        "from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker\n"
        "m = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker('0.1')], store=sys.argv[1])\n"
        "while not m.store.registration.registered:\n"
        "    time.sleep(0.01)\n"
        "print('registered', flush=True)\n"
        "time.sleep(60)\n",
        url,
    )
    try:
        assert read_line(trader, 20) == "registered"
        (process,) = _status(run_cli, url)["processes"]
        assert process["pid"] == trader.pid and process["live"] is True
        trader.send_signal(signal.SIGINT)
        trader.wait(timeout=20)
        # KeyboardInterrupt ended it without m.close(): the store's atexit hook closed it.
        assert _status(run_cli, url)["processes"] == []
    finally:
        if trader.poll() is None:
            trader.kill()
            trader.wait(timeout=10)


def test_a_keyed_breaker_known_only_from_the_registry_still_needs_its_key(
    tmp_path: Path, run_cli: RunCli
) -> None:
    db = tmp_path / "f.db"
    url = f"sqlite:///{db}"
    store = SQLiteStore(db)
    store.registration.configure(heartbeat_seconds=0.1, ttl_seconds=0.6)
    # Whoever keys a breaker stores its key hash (a config load, a facade).
    claim_keys(store, {"drawdown": hash_key("the-key")}, source="test")
    trader = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.10")], store=store)
    try:
        assert store.load_snapshot("drawdown") is None  # no record: the registry alone
        deadline = time.monotonic() + 5
        while not store.registration.registered:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        halted = run_cli("--store", url, "halt", "drawdown", "--reason", "r", "--operator", "o")
        assert halted.returncode == 0, halted.stderr
        breaker = trader.get_breaker("drawdown")
        assert breaker is not None
        deadline = time.monotonic() + 5
        while trader.can_trade():
            assert time.monotonic() < deadline, "the halt was not adopted"
            time.sleep(0.005)
        refused = run_cli("--store", url, "reset", "drawdown", "--operator", "o")
        assert refused.returncode == 1 and "REFUSED" in refused.stderr, refused.stderr
        assert store.load_snapshot("drawdown")["state"] == "MANUALLY_HALTED"  # type: ignore[index]
        assert not trader.can_trade()
        wrong = run_cli(
            "--store", url, "reset", "drawdown", "--operator", "o", "--key", "-", stdin="nope\n"
        )
        assert wrong.returncode == 1, wrong.stderr
        right = run_cli(
            "--store", url, "reset", "drawdown", "--operator", "o", "--key", "-", stdin="the-key\n"
        )
        assert right.returncode == 0, right.stderr
        deadline = time.monotonic() + 5
        while not trader.can_trade():
            assert time.monotonic() < deadline, "the reset was not adopted"
            time.sleep(0.005)
    finally:
        trader.close()


# A process that trips its error-rate breaker on its own evidence, then keeps running.
ERRORS = """
import sys, time
from haltgate import CircuitBreakerManager, ErrorRateCircuitBreaker
from haltgate.store import open_store
store = open_store(sys.argv[1])
store.registration.configure(heartbeat_seconds=0.1, ttl_seconds=0.6)
m = CircuitBreakerManager(
    breakers=[ErrorRateCircuitBreaker(max_errors=2, window_seconds=1)], store=store
)
for _ in range(3):
    m.record_error(RuntimeError("broker"))
assert not m.can_trade()
print(store.origin, flush=True)
if sys.argv[2] == "stay":
    time.sleep(120)
else:  # a restart: the restored trip is held one window, then cleared by this process
    deadline = time.monotonic() + 30
    while not m.can_trade():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    print("cleared", flush=True)
    m.close()
"""


def test_a_trip_imported_from_a_process_that_is_gone_stays_until_an_operator_resets_it(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """SPEC §3: a trip imported from a process no longer in the live-process registry is
    never lifted by the importer's timer, nor by another process's self-clear; an
    operator's reset lifts it, even when the record already reads NORMAL."""
    from haltgate import CircuitBreakerState, ErrorRateCircuitBreaker, ManualClock
    from haltgate.store.registry import read_registry

    db = tmp_path / "f.db"
    url = f"sqlite:///{db}"
    clock = ManualClock()
    store = SQLiteStore(db)
    importer = CircuitBreakerManager(
        breakers=[ErrorRateCircuitBreaker(max_errors=2, window_seconds=1)],
        store=store,
        clock=clock,
    )
    origin_proc = spawn(ERRORS, url, "stay")
    restarted: subprocess.Popen[str] | None = None
    try:
        origin = read_line(origin_proc, 20)
        errors = importer.get_breaker("error_rate")
        assert errors is not None
        deadline = time.monotonic() + 5
        while errors._condition is None:
            assert time.monotonic() < deadline, "the trip was not imported"
            time.sleep(0.005)
        assert errors._condition.origin == origin

        os.kill(origin_proc.pid, signal.SIGKILL)
        origin_proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(e.live for e in read_registry(store) if e.origin == origin):
            assert time.monotonic() < deadline, "the killed process still reads as live"
            time.sleep(0.05)

        # Its origin is gone: the importer's own clock never lifts it.
        clock.advance(3600)
        errors.refresh()
        assert errors.state is CircuitBreakerState.TRIPPED and not importer.can_trade()

        # A restarted process (a new origin) restores the trip, holds it one window and
        # clears it by itself: that self-clear is not the importer's to adopt.
        restarted = spawn(ERRORS.replace("for _ in range(3)", "for _ in range(0)"), url, "clear")
        read_line(restarted, 20)
        assert read_line(restarted, 30) == "cleared"
        assert restarted.wait(timeout=20) == 0
        assert store.load_snapshot("error_rate")["state"] == "NORMAL"  # type: ignore[index]
        time.sleep(0.3)  # the importer's watcher has seen the self-clear by now
        assert errors.state is CircuitBreakerState.TRIPPED and not importer.can_trade()

        # status says so; the operator's reset is an order the importer adopts.
        report = _status(run_cli, url)
        assert report["trading_allowed"] is False
        assert any(
            f"error_rate: TRIPPED in pid {os.getpid()}" in line for line in report["blocking"]
        ), report["blocking"]
        reset = run_cli("--store", url, "reset", "error_rate", "--operator", "o")
        assert reset.returncode == 0, reset.stderr
        assert "RESET 'error_rate' (TRIPPED -> NORMAL) by o" in reset.stdout
        deadline = time.monotonic() + 5
        while not importer.can_trade():
            assert time.monotonic() < deadline, "the operator's reset was not adopted"
            time.sleep(0.005)
        tail = run_cli("--store", url, "audit", "tail", "-n", "1", "--json").stdout
        last = json.loads(tail)
        assert (last["event"], last["breaker"], last["operator"]) == (
            "breaker_reset",
            "error_rate",
            "o",
        )
        # Nothing held any more: a second reset has nothing to do.
        deadline = time.monotonic() + 5
        while not _status(run_cli, url)["trading_allowed"]:
            assert time.monotonic() < deadline
        again = run_cli("--store", url, "reset", "error_rate", "--operator", "o")
        assert "already NORMAL" in again.stdout
    finally:
        for proc in (origin_proc, restarted):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        importer.close()
