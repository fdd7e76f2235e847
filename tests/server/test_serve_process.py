"""``haltgate serve`` as a real process: bind rules, API over HTTP, state shared with the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import haltgate
from haltgate import hash_key

TOKEN = "serve-operator-token-0123456789"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(haltgate.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haltgate", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_non_loopback_bind_without_tokens_is_refused(tmp_path: Path) -> None:
    done = _cli(
        "--store", f"sqlite:///{tmp_path / 'hg.db'}", "serve", "--bind", "0.0.0.0", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    config = tmp_path / "haltgate.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "hg.db"}"\n'
        '[[breakers]]\ntype = "manual"\n'
        f"[server]\nport = {port}\n"
        f'[[operators]]\nname = "alice"\ntoken_hash = "{hash_key(TOKEN)}"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "haltgate", "--config", str(config), "serve"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(base + "/api/status", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"serve did not start: {process.stderr.read() if process.stderr else ''}"
                )
            time.sleep(0.1)
        yield base, config
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_halt_over_http_is_seen_by_the_cli(served: tuple[str, Path], tmp_path: Path) -> None:
    base, config = served
    assert httpx.post(base + "/api/halt", json={"reason": "x"}).status_code == 401
    r = httpx.post(
        base + "/api/halt",
        json={"reason": "broker down"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    status = _cli("--config", str(config), "status", cwd=tmp_path)
    assert status.stdout.startswith("TRADING HALTED")
    assert "broker down" in status.stdout and "alice" in status.stdout
    # A reset from the CLI reaches the server's view.
    assert (
        _cli(
            "--config", str(config), "reset", "manual", "--operator", "bob", cwd=tmp_path
        ).returncode
        == 0
    )
    assert httpx.get(base + "/api/status", timeout=5).json()["trading_allowed"] is True
    metrics = httpx.get(base + "/metrics", timeout=5).text
    assert "haltgate_trading_allowed 1.0" in metrics
