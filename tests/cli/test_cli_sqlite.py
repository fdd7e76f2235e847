"""The console script in separate processes on one SQLite store: state lasts between them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from haltgate import CircuitBreakerManager, DrawdownCircuitBreaker, ManualClock, hash_key
from haltgate.store.sqlite import SQLiteStore

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_halt_in_one_process_status_in_another(tmp_path: Path, run_cli: RunCli) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    halted = run_cli("--store", url, "halt", "--reason", "exchange outage", "--operator", "alice")
    assert halted.returncode == 0, halted.stderr
    assert "HALTED ALL TRADING" in halted.stdout
    assert f"store: sqlite:///{tmp_path / 'hg.db'}" in halted.stdout
    assert "creating a new store" in halted.stderr  # a typo in the path must not go unseen
    status = run_cli("--store", url, "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("TRADING HALTED")
    row = next(line for line in lines if line.startswith("manual "))
    assert "MANUALLY_HALTED" in row and "alice" in row and "exchange outage" in row
    # Global options work after the command too.
    as_json = json.loads(run_cli("status", "--json", "--store", url, module=True).stdout)
    assert as_json["trading_allowed"] is False
    reset = run_cli("--store", url, "reset", "manual", "--operator", "bob", "--reason", "back")
    assert reset.returncode == 0, reset.stderr
    assert run_cli("--store", url, "status").stdout.startswith("TRADING ALLOWED")


def test_a_trading_process_trip_shows_and_resets_keep_its_data(
    tmp_path: Path, run_cli: RunCli
) -> None:
    path = tmp_path / "hg.db"
    clock = ManualClock()
    store = SQLiteStore(path)
    trader = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker(max_drawdown_pct="0.10")], store=store, clock=clock
    )
    trader.can_trade(current_portfolio_value=100_000)
    clock.advance(60)
    assert trader.can_trade(current_portfolio_value=85_000) is False
    store.flush()
    url = f"sqlite:///{path}"
    status = run_cli("--store", url, "status")
    assert "TRADING HALTED" in status.stdout and "Drawdown 15.0000%" in status.stdout
    reset = run_cli("--store", url, "reset", "drawdown", "--operator", "carol")
    assert reset.returncode == 0, reset.stderr
    # The running trading process picks the reset up from the store (SQLite: within 250 ms)
    # and starts a fresh allowance from its latest value.
    import time

    deadline = time.monotonic() + 5
    breaker = trader.get_breaker("drawdown")
    assert breaker is not None
    while breaker.state.value != "NORMAL" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert breaker.state.value == "NORMAL"
    assert trader.can_trade(current_portfolio_value=80_000) is True
    trader.close()


def test_audit_verify_export_and_tamper(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "hg.db"
    url = f"sqlite:///{path}"
    for reason in ("one", "two"):
        assert (
            run_cli("--store", url, "halt", "--reason", reason, "--operator", "a").returncode == 0
        )
        assert run_cli("--store", url, "reset", "manual", "--operator", "a").returncode == 0
    verify = run_cli("--store", url, "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert "audit log OK: 4 entries verified" in verify.stdout
    tail = run_cli("--store", url, "audit", "tail", "-n", "2")
    header, *tailed = tail.stdout.splitlines()
    assert tail.returncode == 0 and header.split()[0] == "SEQ" and len(tailed) == 2
    exported = run_cli("--store", url, "audit", "export", "--jsonl")
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    # Alter the reason of entry 3 behind haltgate's back.
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        audit = next(t for t in tables if "audit" in t)
        columns = [r[1] for r in db.execute(f"pragma table_info({audit})")]
        assert "payload" in columns
        # The table refuses updates; a tamperer with file access drops the guard first.
        for (trigger,) in db.execute("select name from sqlite_master where type='trigger'"):
            db.execute(f"drop trigger {trigger}")
        db.execute(f"update {audit} set payload = replace(payload, 'two', 'TWO') where seq = 3")
    tampered = run_cli("--store", url, "audit", "verify")
    assert tampered.returncode == 1
    assert "entry 3" in tampered.stdout


def test_keyed_reset_across_processes(tmp_path: Path, run_cli: RunCli) -> None:
    config = tmp_path / "haltgate.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "hg.db"}"\n'
        '[[breakers]]\ntype = "manual"\n'
        f'[kill_switch]\nkey_hash = "{hash_key("open-sesame")}"\n'
    )
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    assert (
        run_cli("--config", str(config), "halt", "--reason", "r", "--operator", "a").returncode == 0
    )
    no_key = run_cli("--store", url, "reset", "manual", "--operator", "a")
    assert no_key.returncode == 1 and "REFUSED" in no_key.stderr
    wrong = run_cli("--store", url, "reset", "manual", "--operator", "a", "--key", "x")
    assert wrong.returncode == 1
    right = run_cli("--store", url, "reset", "manual", "--operator", "a", "--key", "open-sesame")
    assert right.returncode == 0, right.stderr
    assert "Traceback" not in no_key.stderr + wrong.stderr


def test_usage_errors_exit_2(tmp_path: Path, run_cli: RunCli) -> None:
    assert run_cli("status").returncode == 2
    missing = run_cli("--store", f"sqlite:///{tmp_path / 'none.db'}", "audit", "verify")
    assert missing.returncode == 2 and "no store at" in missing.stderr
    assert run_cli("halt", "--store", "x").returncode == 2
    assert run_cli("frobnicate").returncode == 2


def test_replay_console_script(tmp_path: Path, run_cli: RunCli) -> None:
    csv = tmp_path / "eq.csv"
    csv.write_text("timestamp,portfolio_value\n2024-03-01T10:00,100000\n2024-03-01T10:01,80000\n")
    done = run_cli("replay", str(csv), "--json", "--plot", str(tmp_path / "p.png"))
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["summary"]["trips"] == 2
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "replay [" not in done.stderr  # no progress bar when stderr is not a terminal


def test_replay_with_a_config(tmp_path: Path, run_cli: RunCli) -> None:
    config = tmp_path / "haltgate.toml"
    config.write_text('[[breakers]]\ntype = "drawdown"\nmax_drawdown_pct = "0.30"\n')
    csv = tmp_path / "eq.csv"
    csv.write_text("timestamp,portfolio_value\n1709287200,100000\n1709287260,80000\n")
    done = run_cli("--config", str(config), "replay", str(csv), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"] == []  # 20 % is within a 30 % limit
    assert json.loads(done.stdout)["summary"]["final_states"] == {"drawdown": "NORMAL"}


def test_hash_key_makes_a_hash_that_verifies(run_cli: RunCli) -> None:
    from haltgate import verify_key

    done = run_cli("hash-key", stdin="s3cret\n")
    assert done.returncode == 0
    assert verify_key("s3cret", done.stdout.strip())
    fresh = run_cli("hash-key", "--new")
    secret_line, hash_line = fresh.stdout.strip().splitlines()
    assert verify_key(secret_line.rsplit(" ", 1)[1], hash_line)


def test_demo_leaves_a_store_that_status_and_verify_read(tmp_path: Path, run_cli: RunCli) -> None:
    demo = run_cli("demo", "--db", "demo.db", "--seed", "3")
    assert demo.returncode == 0, demo.stderr
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    status = run_cli("--store", url, "status")
    assert status.returncode == 0, status.stderr
    assert "order_rate" in status.stdout and "drawdown" in status.stdout
    assert "UTC" in status.stdout  # since when, restored from the store
    verify = run_cli("--store", url, "audit", "verify")
    assert verify.returncode == 0 and "audit log OK" in verify.stdout
    assert run_cli("status", "--bogus").returncode == 2


def _dump(path: Path) -> list[object]:
    with sqlite3.connect(path) as conn:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("breakers", "kv", "counters", "audit")
        ]


def test_status_never_writes_to_the_store(tmp_path: Path, run_cli: RunCli) -> None:
    from haltgate import ConnectionCircuitBreaker, ErrorRateCircuitBreaker

    db = tmp_path / "hg.db"
    clock = ManualClock()
    store = SQLiteStore(db)
    manager = CircuitBreakerManager(
        breakers=[
            DrawdownCircuitBreaker("0.10"),
            ErrorRateCircuitBreaker(max_errors=1, window_seconds=1),
            ConnectionCircuitBreaker(timeout_seconds=1),
        ],
        store=store,
        clock=clock,
    )
    manager.can_trade(current_portfolio_value=100)
    manager.can_trade(current_portfolio_value=50)
    manager.record_error("a")
    manager.record_error("b")
    manager.halt_all("drill", "ops")
    manager.close()
    before = _dump(db)
    for args in (("status",), ("status", "--json")):
        result = run_cli("--store", f"sqlite:///{db}", *args)
        assert result.returncode == 0, result.stderr
    assert _dump(db) == before


def test_status_on_a_damaged_file_is_one_line_and_exit_1(tmp_path: Path, run_cli: RunCli) -> None:
    db = tmp_path / "hg.db"
    url = f"sqlite:///{db}"
    assert run_cli("--store", url, "halt", "--reason", "drill", "--operator", "o").returncode == 0
    conn = sqlite3.connect(db)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    size = db.stat().st_size
    with open(db, "r+b") as f:  # every table's pages zeroed, the schema page kept
        f.seek(page_size)
        f.write(b"\0" * (size - page_size))
    status = run_cli("--store", url, "status")
    assert status.returncode == 1
    assert status.stdout == ""
    lines = status.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in status.stderr, status.stderr
    assert url in lines[0] and "damaged" in lines[0]
