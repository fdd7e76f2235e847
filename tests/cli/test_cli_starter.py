"""The file ``haltgate init`` writes works, untouched, with every command (SPEC §8).

Each command runs through the console script on the file exactly as ``init`` wrote it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import haltgate

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "config error" not in done.stderr, done.stderr
    return done.stdout


def test_every_command_works_on_the_untouched_starter_file(tmp_path: Path, run_cli: RunCli) -> None:
    _ok(run_cli("init"))
    config = ("--config", "haltgate.toml")
    checked = _ok(run_cli(*config, "check-config"))
    assert "config OK" in checked
    assert "drawdown (drawdown)" in checked and "manual (manual)" in checked
    # The starter set of pre-trade checks (SPEC §10) resolves as written.
    assert "  checks:    8" in checked
    assert '    max_order_quantity: max_quantity="10000" per_symbol={"BRK.A": "5"}' in checked
    assert "    execution_throttle: max_orders=50 window_seconds=60" in checked

    halted = _ok(run_cli(*config, "halt", "--reason", "first look", "--operator", "alice"))
    assert "HALTED ALL TRADING" in halted
    status = _ok(run_cli(*config, "status"))
    assert status.startswith("TRADING HALTED") and "first look" in status
    for name in ("drawdown", "daily_loss", "order_rate", "manual", "execution_throttle"):
        assert name in status
    report = json.loads(_ok(run_cli(*config, "status", "--json")))
    assert report["trading_allowed"] is False
    # The starter's execution throttle registers its latched breaker (SPEC §10).
    assert {b["name"] for b in report["breakers"]} == {
        "drawdown",
        "daily_loss",
        "order_rate",
        "manual",
        "execution_throttle",
    }
    reset = _ok(run_cli(*config, "reset", "manual", "--operator", "bob", "--reason", "seen"))
    assert "TRADING ALLOWED" in reset
    tail = _ok(run_cli(*config, "audit", "tail"))
    assert "config_loaded" in tail and "first look" in tail
    assert "audit log OK" in _ok(run_cli(*config, "audit", "verify"))
    (tmp_path / "equity.csv").write_text(
        "timestamp,portfolio_value\n2026-01-05T14:30:00Z,100000\n2026-01-05T14:31:00Z,99000\n"
    )
    assert "UTC" in _ok(run_cli(*config, "replay", "equity.csv"))


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "haltgate"
    return [sys.executable, str(script)] if script.exists() else [sys.executable, "-m", "haltgate"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_on_the_untouched_starter_file(tmp_path: Path, run_cli: RunCli) -> None:
    _ok(run_cli("init"))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(haltgate.__file__).resolve().parents[1]) + os.pathsep
    env["PYTHONPATH"] += os.environ.get("PYTHONPATH", "")
    port = _free_port()
    process = subprocess.Popen(
        [*_console_script(), "--config", "haltgate.toml", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=1)
                break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate()
                raise AssertionError(f"serve did not start: {err}")
            time.sleep(0.1)  # polling a real process, not timing logic
        assert response.status_code == 200, response.text
        assert response.json()["trading_allowed"] is True
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
