"""SQLiteStore: durability settings, one transaction per change, no I/O on the trading
path, bounded waits on a database locked by another process, fail-closed."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from haltgate import (
    CircuitBreakerManager,
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ManualCircuitBreaker,
    StoreUnavailableError,
)
from haltgate.store import open_store
from haltgate.store.sqlite import SQLiteStore

from .conftest import read_line

pytestmark = pytest.mark.timeout(60)

LOCKER = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "conn.execute('BEGIN EXCLUSIVE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.readline()\n"
    "conn.execute('ROLLBACK')\n"
)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture()
def locked(db: Path) -> Iterator[None]:
    """Another process holds an exclusive transaction on ``db`` while the test runs."""
    import subprocess
    import sys

    from .conftest import child_env

    SQLiteStore(db).close()  # create the schema first
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert read_line(proc) == "locked"
    try:
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=10)


def test_url_and_pragmas(db: Path) -> None:
    store = open_store(f"sqlite:///{db}?store_timeout=0.5")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == db and store.store_timeout == 0.5
        assert store._writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # 2 = FULL
        assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert store._writer.execute("PRAGMA busy_timeout").fetchone()[0] == 500
    finally:
        store.close()


def test_relative_url_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore.from_url("sqlite:///rel/x.db")
    try:
        assert store.path == Path("rel/x.db")
        assert (tmp_path / "rel" / "x.db").exists()
    finally:
        store.close()


def test_change_and_audit_are_durable_when_the_call_returns(db: Path) -> None:
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.1")], store=f"sqlite:///{db}"
    )
    try:
        manager.can_trade(current_portfolio_value=100)
        manager.can_trade(current_portfolio_value=85)
        # A separate connection sees both the state and its audit entry immediately.
        other = sqlite3.connect(db)
        state = json.loads(
            other.execute("SELECT state FROM breakers WHERE name = 'drawdown'").fetchone()[0]
        )
        events = other.execute("SELECT event, breaker FROM audit").fetchall()
        other.close()
        assert state["state"] == "TRIPPED"
        assert "Drawdown" in state["trip"]["reason"]
        assert events == [("breaker_tripped", "drawdown")]
    finally:
        manager.close()


def test_can_trade_answers_from_memory_while_another_process_locks_the_db(
    db: Path, locked: None
) -> None:
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.1"), ManualCircuitBreaker()],
        store=SQLiteStore(db, store_timeout=0.2),
    )
    try:
        worst = 0.0
        for _ in range(2000):
            started = time.perf_counter()
            assert manager.can_trade()
            worst = max(worst, time.perf_counter() - started)
        assert worst < 0.05  # never near the 0.2 s busy timeout: no I/O
        # Progress (a new peak) is queued, not written on this thread.
        started = time.perf_counter()
        for value in range(100, 200):
            assert manager.can_trade(current_portfolio_value=value)
        assert time.perf_counter() - started < 0.2
        # A trip cannot be written: it still applies at once, the call waits at most
        # store_timeout, and the store refuses trading until the trip is durable.
        started = time.perf_counter()
        assert manager.can_trade(current_portfolio_value=100) is False
        assert time.perf_counter() - started < 0.2 + 0.02
        assert manager.get_status()["drawdown"] == "TRIPPED"
        reasons = manager.get_blocking_reasons()
        assert any("sqlite:///" in r and "fail-closed" in r for r in reasons), reasons
        # A reset cannot be recorded either: it raises and changes nothing.
        with pytest.raises(StoreUnavailableError):
            manager.reset("drawdown", operator="ops")
        assert manager.get_status()["drawdown"] == "TRIPPED"
    finally:
        manager.close()


def test_queued_trip_is_written_once_the_lock_is_released(db: Path) -> None:
    import subprocess
    import sys

    from .conftest import child_env

    SQLiteStore(db).close()
    manager = CircuitBreakerManager(
        breakers=[ManualCircuitBreaker()], store=SQLiteStore(db, store_timeout=0.1)
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        assert read_line(proc) == "locked"
        manager.halt_all("stop", "ops")
        assert manager.store.blocking_reason() is not None
        # A reset from another process arriving now must not undo the halt that is not
        # durable yet (it cannot be ordered against it).
        manager.store._apply_remote(
            "manual", 10**9, {"name": "manual", "type": "manual", "state": "NORMAL", "trip": None}
        )
        assert manager.get_status() == {"manual": "MANUALLY_HALTED"}
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while manager.store.blocking_reason() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manager.store.blocking_reason() is None
        snapshot = manager.store.load_snapshot("manual")
        assert snapshot is not None and snapshot["state"] == "MANUALLY_HALTED"
        assert [e.event for e in manager.store.iter_audit()] == ["breaker_halted"]
        assert manager.can_trade() is False  # still halted, now durably
    finally:
        if proc.poll() is None:
            proc.kill()
        manager.close()


def test_progress_is_flushed_on_close_and_never_overwrites_a_later_trip(db: Path) -> None:
    store = SQLiteStore(db, poll_interval=5.0)  # the thread would not flush in time
    breaker = DrawdownCircuitBreaker("0.1")
    manager = CircuitBreakerManager(breakers=[breaker], store=store)
    manager.can_trade(current_portfolio_value=100)
    manager.can_trade(current_portfolio_value=120)  # new peak: queued
    manager.can_trade(current_portfolio_value=100)  # 16.7% down: trip (durable)
    manager.close()
    reopened = SQLiteStore(db)
    try:
        snapshot = reopened.load_snapshot("drawdown")
        assert snapshot is not None and snapshot["state"] == "TRIPPED"
        assert snapshot["data"]["window"][0][1] == "120"
    finally:
        reopened.close()


def test_progress_alone_is_flushed_on_close(db: Path) -> None:
    store = SQLiteStore(db, poll_interval=5.0)
    manager = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.5"), DailyLossCircuitBreaker(1000)], store=store
    )
    manager.can_trade(current_portfolio_value=1000)
    manager.can_trade(current_portfolio_value=1300)
    manager.close()
    reopened = SQLiteStore(db)
    try:
        assert reopened.load_snapshot("drawdown")["data"]["window"][0][1] == "1300"  # type: ignore[index]
        assert reopened.load_snapshot("daily_loss")["data"]["baseline"] == "1000"  # type: ignore[index]
    finally:
        reopened.close()


def test_values_survive_reopen_with_audit(db: Path) -> None:
    store = SQLiteStore(db)
    store.set_value(
        "kill_switch.failures",
        {"count": 3},
        audit=("kill_switch_reset_refused", "kill_switch", "eve", {"attempt": 3}),
    )
    store.close()
    reopened = SQLiteStore(db)
    try:
        assert reopened.get_value("kill_switch.failures") == {"count": 3}
        assert reopened.get_value("missing") is None
        assert [e.event for e in reopened.iter_audit()] == ["kill_switch_reset_refused"]
    finally:
        reopened.close()


def zero_pages_after_the_first(path: Path) -> None:
    """Overwrite every page but the first (the schema) with zeros, as a failing disk or a
    stray write would: the tables' pages are gone, the file still opens. Nothing goes
    through SQLite, so no open connection is told."""
    # The pages are in the main file, not only in the WAL (the last close checkpointed).
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with open(path, "rb") as f:
        page_size = int.from_bytes(f.read(18)[16:18], "big")  # the file header's field
    page_size = 65536 if page_size == 1 else page_size
    size = path.stat().st_size
    assert size > page_size
    with open(path, "r+b") as f:
        f.seek(page_size)
        f.write(b"\0" * (size - page_size))


def store_with_a_trip_and_a_reset(db: Path) -> None:
    manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=SQLiteStore(db))
    manager.halt_all("drill", "ops")
    manager.reset("manual", operator="ops")
    manager.close()


def test_a_file_with_zeroed_pages_is_refused_at_open_naming_the_file(db: Path) -> None:
    store_with_a_trip_and_a_reset(db)
    zero_pages_after_the_first(db)
    with pytest.raises(StoreUnavailableError) as raised:
        SQLiteStore(db)
    message = str(raised.value)
    assert f"sqlite:///{db}" in message and "damaged" in message, message


def test_a_file_damaged_under_a_running_process_fails_it_closed_and_stays_closed(
    tmp_path: Path,
) -> None:
    import statistics

    taken: list[float] = []
    for trial in range(3):
        db = tmp_path / f"trial{trial}.db"
        store_with_a_trip_and_a_reset(db)
        store = SQLiteStore(db)
        # A registered process (no heartbeat during the trial): its registry entry is moved
        # from the WAL into the main file below, so the damage hits every table's pages.
        store.registration.configure(heartbeat_seconds=60, ttl_seconds=120)
        manager = CircuitBreakerManager(breakers=[ManualCircuitBreaker()], store=store)
        try:
            assert manager.can_trade()
            # The poller has read the tables: their pages sit in its connection's cache.
            deadline = time.monotonic() + 5
            while store._data_version is None or not store.registration.registered:
                assert time.monotonic() < deadline, "the poller never ran"
                time.sleep(0.005)
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            zero_pages_after_the_first(db)
            started = time.monotonic()
            while manager.can_trade():
                assert time.monotonic() - started < 5, "damage never noticed"
            taken.append(time.monotonic() - started)
            reasons = manager.get_blocking_reasons()
            assert f"sqlite:///{db}" in reasons[0] and "fail-closed" in reasons[0], reasons
            # Sticky: the damage is still there, so trading stays refused.
            until = time.monotonic() + 0.3
            while time.monotonic() < until:
                assert manager.can_trade() is False
        finally:
            manager.close()
    print("damage noticed after (ms): " + ", ".join(f"{t * 1000:.0f}" for t in taken))
    # Within the 250 ms in which SQLite changes reach every process (SPEC §6).
    assert statistics.median(taken) < 0.25


def test_a_read_only_file_is_refused_at_open_naming_the_file(db: Path) -> None:
    import os
    import subprocess

    SQLiteStore(db).close()
    if os.geteuid() == 0:
        # Root ignores file modes; an immutable file is read-only even for root.
        made = subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False)
        if made.returncode != 0:
            pytest.skip(f"cannot make a file read-only as root here: {made.stderr!r}")
    else:
        db.chmod(0o444)
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            SQLiteStore(db)
        message = str(raised.value)
        assert f"sqlite:///{db}" in message and "cannot be written" in message, message
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(db)], check=True)
        else:
            db.chmod(0o600)
