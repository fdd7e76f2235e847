"""Refusal counts leave the trading process (SPEC §10 with §6): each process publishes its
pre-trade checks' refusals by deny code in its live-process registry entry, off the
trading thread; ``haltgate status`` (text and ``--json``) shows them per live process and
summed, and ``haltgate serve`` over the same store shows the sum in ``/api/status`` and
``/metrics``. Real trading subprocesses on SQLite and on a real redis-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, Order
from haltgate.checks import MaxOrderQuantity, RestrictedSymbols
from haltgate.store.registry import read_registry
from haltgate.store.sqlite import SQLiteStore

from .conftest import child_env, free_port, read_line, spawn

pytestmark = pytest.mark.timeout(120)

RunCli = Callable[..., subprocess.CompletedProcess[str]]

# A trading process whose manager has a MaxOrderQuantity check (and, with "breaker", a
# drawdown breaker): it refuses argv[2] orders over the limit, admits one, says so, waits.
TRADER = """
import sys, time
from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, Order
from haltgate.checks import MaxOrderQuantity
from haltgate.store import open_store
store = open_store(sys.argv[1])
store.registration.configure(heartbeat_seconds=0.1, ttl_seconds=0.6)
breakers = [DrawdownCircuitBreaker("0.10")] if sys.argv[3] == "breaker" else []
m = CircuitBreakerManager(breakers=breakers, store=store)
m.add_check(MaxOrderQuantity(100))
for _ in range(int(sys.argv[2])):
    assert m.admit_order(order=Order.make("SPY", 5000))
assert m.admit_order(order=Order.make("SPY", 10)) == []
print("refused", m.get_refusal_counts(), flush=True)
time.sleep(120)
"""


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


def _until(what: Callable[[], Any], seconds: float = 15) -> Any:
    """``what()`` once it is truthy (polled with a deadline, no fixed sleep)."""
    deadline = time.monotonic() + seconds
    while True:
        found = what()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {seconds}s"
        time.sleep(0.05)


@contextmanager
def _traders(url: str, *runs: tuple[int, str]) -> Iterator[list[subprocess.Popen[str]]]:
    procs = [spawn(TRADER, url, str(n), kind) for n, kind in runs]
    try:
        for proc, (n, _kind) in zip(procs, runs, strict=True):
            assert read_line(proc, 30) == f"refused {{'max_order_quantity': {n}}}"
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def _by_pid(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["pid"]: p for p in report["processes"]}


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_status_shows_each_live_process_refusals_and_their_total(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, run_cli: RunCli
) -> None:
    url = _url(backend, request, tmp_path)
    # One process with a breaker and a check, one with only a check (it registers too).
    with _traders(url, (3, "breaker"), (2, "checks")) as (first, second):

        def both_published() -> dict[str, Any] | None:
            report = _status(run_cli, url)
            found = _by_pid(report)
            ok = found.get(first.pid, {}).get("refusals") == {
                "max_order_quantity": 3
            } and found.get(second.pid, {}).get("refusals") == {"max_order_quantity": 2}
            return report if ok else None

        report = _until(both_published)
        assert report["refusals"] == {"max_order_quantity": 5}
        assert _by_pid(report)[second.pid]["breakers"] == []
        assert _by_pid(report)[second.pid]["live"] is True

        text = run_cli("--store", url, "status").stdout
        assert "refused orders: max_order_quantity 3" in text
        assert "refused orders: max_order_quantity 2" in text
        assert "REFUSED ORDERS (live processes, since each started) - max_order_quantity 5" in (
            text
        )

        # A process that is gone takes its counts away (kill -9: its entry goes stale).
        os.kill(second.pid, signal.SIGKILL)
        second.wait(timeout=10)
        report = _until(
            lambda: (r := _status(run_cli, url))["refusals"] == {"max_order_quantity": 3} and r
        )
        gone = _by_pid(report)[second.pid]
        assert gone["live"] is False and gone["refusals"] == {"max_order_quantity": 2}


@contextmanager
def _serve(url: str, cwd: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "haltgate", "--store", url, "serve", "--port", str(port)],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            try:
                return httpx.get(base + "/api/status", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _until(up, 30)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _samples(text: str, family: str) -> dict[str, float]:
    return {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(family + "{")
    }


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_serve_over_the_store_shows_the_live_processes_refusals(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import socket

    url = _url(backend, request, tmp_path)
    with _traders(url, (3, "breaker")) as (trader,), _serve(url, tmp_path) as base:
        status = _until(
            lambda: (
                (s := httpx.get(base + "/api/status", timeout=5).json())["refusals"]
                == {"max_order_quantity": 3}
                and s
            )
        )
        assert status["refusals"] == {"max_order_quantity": 3}
        text = httpx.get(base + "/metrics", timeout=5).text
        total = _samples(text, "haltgate_order_refusals_total")
        assert total['code="max_order_quantity"'] == 3.0
        assert total['code="price_collar"'] == 0.0  # every code from the start
        each = _samples(text, "haltgate_process_order_refusals_total")
        ((labels, count),) = each.items()
        assert count == 3.0
        assert f'pid="{trader.pid}"' in labels and f'host="{socket.gethostname()}"' in labels
        assert 'code="max_order_quantity"' in labels


def _wait_registered(store: SQLiteStore) -> None:
    _until(lambda: store.registration.registered, 10)


def test_a_refusal_is_published_within_a_second_even_with_a_long_heartbeat(
    tmp_path: Path,
) -> None:
    db = tmp_path / "f.db"
    store = SQLiteStore(db)
    # A heartbeat far longer than the bound: only the refusal's mark can publish it.
    store.registration.configure(heartbeat_seconds=60, ttl_seconds=120)
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.10")], store=store)
    manager.add_check(MaxOrderQuantity(100))
    reader = SQLiteStore(db)
    reader.registration.disable()
    try:
        _wait_registered(store)
        # Registered (its first write); the next heartbeat is a minute away, so only the
        # refusal's mark can publish the count within the bound.
        (entry,) = read_registry(reader)
        assert entry.refusals == {}
        assert manager.admit_order(order=Order.make("SPY", 5000))
        refused_at = time.monotonic()
        (entry,) = _until(
            lambda: [e for e in read_registry(reader) if e.refusals == {"max_order_quantity": 1}],
            5,
        )
        # Within COUNTS_PUBLISH_SECONDS after the previous write plus one background round.
        assert time.monotonic() - refused_at < 1.5
    finally:
        manager.close()
        reader.close()


def test_managers_sharing_a_store_object_publish_their_sum(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    store = SQLiteStore(db)
    store.registration.configure(heartbeat_seconds=0.05, ttl_seconds=1)
    first = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.10")], store=store)
    first.add_check(MaxOrderQuantity(100))
    second = CircuitBreakerManager(store=store)
    second.add_check(RestrictedSymbols(["XYZ"]))
    reader = SQLiteStore(db)
    reader.registration.disable()
    try:
        assert first.admit_order(order=Order.make("SPY", 5000))
        assert second.admit_order(order=Order.make("XYZ", 1))
        assert second.admit_order(order=Order.make("XYZ", 1))
        expected = {"max_order_quantity": 1, "restricted_symbol": 2}
        (entry,) = _until(lambda: [e for e in read_registry(reader) if e.refusals == expected])
        assert entry.pid == os.getpid()
    finally:
        first.close()
        reader.close()


def test_an_operator_view_publishes_nothing(tmp_path: Path, run_cli: RunCli) -> None:
    # `haltgate status` on a store no trading process uses: no entry, no refusals.
    SQLiteStore(tmp_path / "f.db").close()
    url = f"sqlite:///{tmp_path / 'f.db'}"
    report = _status(run_cli, url)
    assert report["processes"] == [] and report["refusals"] == {}
    text = run_cli("--store", url, "status").stdout
    assert "REFUSED ORDERS - none by the live processes' pre-trade checks" in text


def test_a_count_that_raises_never_costs_the_heartbeat(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    store = SQLiteStore(db)
    store.registration.configure(heartbeat_seconds=0.05, ttl_seconds=1)

    def broken() -> dict[str, int] | None:
        raise RuntimeError("boom")

    store.registration.add_refusal_source(broken)
    manager = CircuitBreakerManager(breakers=[DrawdownCircuitBreaker("0.10")], store=store)
    manager.add_check(MaxOrderQuantity(100))
    assert manager.admit_order(order=Order.make("SPY", 5000))
    reader = SQLiteStore(db)
    reader.registration.disable()
    try:
        (entry,) = _until(
            lambda: [e for e in read_registry(reader) if e.refusals == {"max_order_quantity": 1}]
        )
        assert entry.live and entry.breaker_names() == ["drawdown"]
    finally:
        manager.close()
        reader.close()
