"""Fixtures for the store tests: a REAL redis-server on a free loopback port, helper
processes that run haltgate code with this checkout on their PYTHONPATH."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, poll: float = 0.005) -> float:
    """Poll ``condition`` every ``poll`` seconds (a real other process, server or file is
    involved, so there is no clock to inject); seconds taken."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(poll)
    return time.monotonic() - started


def child_env() -> dict[str, str]:
    """The environment for a child Python process (this checkout importable)."""
    env = dict(os.environ)
    parts = [str(SRC), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    """Start ``python -c code args...`` with stdout piped (text, line buffered)."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The child's next stdout line (fails the test after ``timeout`` seconds)."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            raise AssertionError(f"child printed nothing within {timeout}s")
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"child exited early: {err[-2000:]}")
    return line.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1:port, stopped and restarted by pid.

    ``stop()`` is a crash of a server that persists its data (it saves, then is killed), so
    it comes back with its data, as a production Redis with AOF does; ``stop(keep_data=
    False)`` is a crash of one without persistence: it comes back empty."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (scripts/install-system-deps.sh)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.keep_data = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not self.keep_data:
            (self.directory / "dump.rdb").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self, *, keep_data: bool = True) -> None:
        proc, self.proc = self.proc, None
        self.keep_data = keep_data
        if proc is not None and proc.poll() is None:
            if keep_data:
                client: Any = self.client()
                try:
                    client.save()  # what AOF would have kept
                finally:
                    client.close()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def client(self) -> object:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for the whole test module."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def init_namespace(url: str, namespace: str = "haltgate") -> None:
    """Set up an empty namespace (its epoch marker), as ``RedisStore(create=True)`` does."""
    from haltgate.store.redis import RedisStore

    RedisStore(url, namespace=namespace, create=True).close()


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The module's server, emptied before each test (restarted if a test stopped it), with
    the default namespace ``haltgate`` set up (other namespaces: ``create=True``)."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.keep_data = False
        redis_server.start()
    client = redis_server.client()
    client.flushall()  # type: ignore[attr-defined]
    client.close()  # type: ignore[attr-defined]
    init_namespace(redis_server.url)
    yield redis_server.url
