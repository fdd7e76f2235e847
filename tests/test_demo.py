"""`haltgate demo`: seeded, offline, fast; every breaker trips for its own reason; the
timeline comes from the manager's events and the state and audit log land in the store."""

from __future__ import annotations

import io
import json
import socket
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import haltgate
from haltgate import demo


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the demo must not touch the network")

    # asyncio needs a local socketpair for its loop; any connection or lookup is refused.
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _run(seed: int = 7) -> tuple[int, str, haltgate.MemoryStore, float]:
    store = haltgate.MemoryStore()
    out = io.StringIO()
    started = time.perf_counter()
    code = demo.run_demo(seed=seed, out=out, store=store)
    return code, out.getvalue(), store, time.perf_counter() - started


def test_every_breaker_trips_for_its_own_reason(no_network: None) -> None:
    code, text, store, seconds = _run()
    assert code == 0, text
    assert seconds < 10
    audit = list(store.iter_audit())
    trips = {
        (e.breaker, e.event): json.loads(e.payload)["reason"]
        for e in audit
        if e.event in ("breaker_tripped", "breaker_halted")
    }
    assert set(trips) == {
        ("order_rate", "breaker_tripped"),
        ("error_rate", "breaker_tripped"),
        ("drawdown", "breaker_tripped"),
        ("daily_loss", "breaker_tripped"),
        ("manual", "breaker_halted"),
    }
    assert trips["order_rate", "breaker_tripped"].startswith("Order rate limit reached: 10 orders")
    assert trips["error_rate", "breaker_tripped"].startswith("Error rate exceeded: 4 errors")
    assert trips["drawdown", "breaker_tripped"].startswith("Drawdown 12.")
    assert trips["daily_loss", "breaker_tripped"].startswith("Daily loss 12")
    assert trips["manual", "breaker_halted"].startswith("flash crash")
    # the timeline prints those very reasons, in order of time
    lines = text.splitlines()
    for (breaker, _event), reason in trips.items():
        assert any(breaker in line and reason in line for line in lines), breaker
    order = [
        next(i for i, line in enumerate(lines) if f"{name} " in line and "TRIPPED" in line)
        for name in ("order_rate", "error_rate", "drawdown")
    ]
    assert order == sorted(order)
    # self-clearing breakers cleared, operator reset, daily loss cleared at the next session
    resets = {(e.breaker, e.operator) for e in audit if e.event == "breaker_reset"}
    assert {
        ("order_rate", None),
        ("error_rate", None),
        ("drawdown", "alice"),
        ("manual", "alice"),
        ("daily_loss", None),
    } <= resets
    assert store.verify_audit().ok
    assert "audit log: " in text and "hash chain verified" in text


def test_the_engine_did_the_work() -> None:
    _code, text, _store, _ = _run()
    assert "25 orders: 10 filled, 15 rejected" in text
    assert "15 orders refused, blocked by order_rate" in text
    assert text.count("failed at the broker (ConnectionError") == 4
    assert "CANCELLED working BUY 40 @ 82 (on_trip=cancel_all)" in text
    assert "CANCELLED working BUY 40 @ 80 (on_trip=cancel_all)" in text
    assert "rejected by gate (daily_loss)" in text
    assert "new trading session" in text


def test_seeded_and_reproducible() -> None:
    first = _run(7)[1]
    assert _run(7)[1] == first
    other = _run(11)
    assert other[0] == 0
    assert other[1] != first


@pytest.mark.parametrize("seed", [1, 2, 3, 42, 2026])
def test_other_seeds_still_show_every_breaker(seed: int) -> None:
    code, text, _store, _ = _run(seed)
    assert code == 0, text


def test_refuses_to_overwrite_a_file_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "production.db"
    precious.write_bytes(b"not a demo database")
    out = io.StringIO()
    assert demo.run_demo(precious, out=out) == 2
    assert precious.read_bytes() == b"not a demo database"
    assert "choose another --db" in out.getvalue()


def test_main_writes_an_sqlite_file_that_reopens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert demo.main([]) == 0
    path = tmp_path / "haltgate-demo.db"
    assert path.is_file()
    store = haltgate.open_store(f"sqlite:///{path}")
    try:
        snapshots = store.load_all_snapshots()
        assert set(snapshots) >= {"drawdown", "daily_loss", "order_rate", "error_rate", "manual"}
        manager = haltgate.CircuitBreakerManager(store=store)
        manager.add_breaker(haltgate.ManualCircuitBreaker())
        assert manager.get_status()["manual"] == "NORMAL"
        verification = store.verify_audit()
        assert verification.ok and verification.checked >= 10
    finally:
        store.close()
    assert "haltgate --store sqlite:///haltgate-demo.db status" in capsys.readouterr().out
    # a second run replaces its own file
    assert demo.main(["--db", str(path), "--seed", "3"]) == 0


def test_subprocess_entry_point(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(haltgate.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    )
    db = tmp_path / "d.db"
    done = subprocess.run(
        [sys.executable, "-m", "haltgate.demo", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "order_rate   TRIPPED" in done.stdout
    assert db.is_file()


def test_a_fat_finger_and_a_limit_through_the_market_are_refused_with_their_codes() -> None:
    code, text, store, _ = _run()
    assert code == 0, text
    lines = text.splitlines()
    fat = next(line for line in lines if "[max_order_quantity]" in line)
    assert fat.startswith("14:35  check        REFUSED   BUY 2000 [max_order_quantity]: ")
    assert fat.endswith("2000 > 1000 (DEMO)")
    collar = next(line for line in lines if "[price_collar]" in line)
    assert collar.startswith("14:36  check        REFUSED   BUY 20 @ ")
    assert "* (1 + 0.05) (DEMO)" in collar
    # The limit is 20 % through the last close the collar compared it with.
    limit = Decimal(collar.split("@ ", 1)[1].split(" ", 1)[0])
    reference = Decimal(collar.split("reference ", 1)[1].split(" ", 1)[0])
    assert limit == (reference * Decimal("1.20")).quantize(Decimal("0.01"))
    assert "refused by the pre-trade checks: max_order_quantity=1, price_collar=1" in text
    assert "rejected by gate (max_order_quantity)" in text
    assert "rejected by gate (price_collar)" in text
    # Refused by a check: no slot in the order-rate window, nothing reached the broker,
    # and nothing in the audit log (a check's refusal is not a trip).
    assert not any("DEMO" in e.payload and "2000" in e.payload for e in store.iter_audit())


@pytest.mark.parametrize("seed", [1, 42])
def test_every_seed_refuses_both_orders_by_their_checks(seed: int) -> None:
    _code, text, _store, _ = _run(seed)
    assert text.count("  check        REFUSED   ") == 2
    assert "[max_order_quantity]" in text and "[price_collar]" in text
