"""RedisStore: round trips and time of ``manager.record_order()``.

A private ``redis-server`` is started on a free loopback port (no persistence) and stopped
afterwards. The manager is the guide's recommended setup on a ``RedisStore`` with the
order-rate limit raised to 10⁹/min so every order is admitted (each one goes through the
shared window's atomic script).

Round trips are counted two ways over N admitted orders: on the server, the change of
``INFO commandstats`` (our own INFO calls excluded); in this process, the commands redis-py
writes from the calling thread (a counter around ``send_packed_command``; one call is one
round trip, a pipeline included). Time: interleaved batches of ``record_order()`` and of a
raw redis-py ``PING`` on its own client, same server, same process; median of per-round
ratios.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from .common import (
    Config,
    Result,
    Row,
    Skip,
    Target,
    fmt_ratio,
    fmt_us,
    interleave,
    median,
    median_ratio,
    sync_batch,
)
from .setups import recommended_manager

SECTION = "redis"
RATIO_LIMIT = 1.5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A throwaway redis-server on 127.0.0.1; yields its port."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise Skip("redis-server is not installed")
    import redis

    with tempfile.TemporaryDirectory(prefix="haltgate-bench-redis-") as tmp:
        for _attempt in range(5):
            port = _free_port()
            proc = subprocess.Popen(
                [
                    exe,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    tmp,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = redis.Redis(host="127.0.0.1", port=port)
            deadline = time.monotonic() + 10
            up = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    up = bool(client.ping())
                    break
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            client.close()
            if up:
                break
            proc.kill()
            proc.wait()
        else:
            raise RuntimeError("could not start redis-server")
        try:
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _redis_store_class() -> Any:
    try:
        from haltgate.store.redis import (  # type: ignore[import-not-found,unused-ignore]
            RedisStore,
        )
    except ImportError as exc:
        if "haltgate.store.redis" in str(exc) or "No module named 'haltgate.store.redis'" in str(
            exc
        ):
            raise Skip("RedisStore is not merged yet (branch stores)") from exc
        raise
    return RedisStore


def _command_calls(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in stats.items()
        if name.startswith("cmdstat_")
    }


class SendCounter:
    """Counts redis-py writes per thread (one ``send_packed_command`` = one round trip)."""

    def __init__(self) -> None:
        self.by_thread: dict[int, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from redis import connection

        cls = getattr(connection, "AbstractConnection", connection.Connection)
        original = cls.send_packed_command
        counter = self

        def counting(conn: Any, command: Any, check_health: bool = True) -> None:
            ident = threading.get_ident()
            with counter._lock:
                counter.by_thread[ident] = counter.by_thread.get(ident, 0) + 1
            original(conn, command, check_health)

        cls.send_packed_command = counting  # type: ignore[method-assign]
        try:
            yield
        finally:
            cls.send_packed_command = original  # type: ignore[method-assign]


def run(cfg: Config) -> Result:
    """Count and time ``record_order()`` on a RedisStore."""
    store_cls = _redis_store_class()
    import redis

    result = Result(SECTION)
    with redis_server() as port:
        url = f"redis://127.0.0.1:{port}/0"
        store = store_cls(url, namespace=f"bench-{os.getpid()}")
        mgr = recommended_manager(max_orders_per_minute=10**9, store=store)
        admin = redis.Redis(host="127.0.0.1", port=port)
        ping_client = redis.Redis(host="127.0.0.1", port=port)
        try:
            rate = mgr.get_breaker("order_rate")
            window = type(getattr(rate, "_rate", None)).__name__
            for _ in range(20):  # connect, load scripts
                assert mgr.record_order()
            ping_client.ping()
            n = 50 if cfg.smoke else 2000
            # Idle baseline: what background work (pub/sub, resync) sends meanwhile.
            counter = SendCounter()
            before = _command_calls(admin)
            with counter.installed():
                t0 = time.monotonic()
                admitted = sum(bool(mgr.record_order()) for _ in range(n))
                busy = time.monotonic() - t0
                main_sends = counter.by_thread.get(threading.get_ident(), 0)
            after = _command_calls(admin)
            delta = {
                k: after.get(k, 0) - before.get(k, 0)
                for k in after
                if k != "info" and after.get(k, 0) != before.get(k, 0)
            }
            time.sleep(min(busy, 2.0))
            idle0 = _command_calls(admin)
            time.sleep(min(busy, 2.0))
            idle1 = _command_calls(admin)
            idle = sum(v - idle0.get(k, 0) for k, v in idle1.items() if k != "info")
            server_cmds = sum(delta.values())
            per_order_server = server_cmds / n
            per_order_client = main_sends / n
            result.data["round_trips"] = {
                "orders": n,
                "admitted": admitted,
                "server_command_delta": delta,
                "client_sends_calling_thread": main_sends,
                "idle_commands_same_duration": idle,
                "window": window,
            }
            result.rows.append(
                Row(
                    SECTION,
                    f"round trips per record_order() ({n:,} admitted orders)",
                    f"{per_order_client:g} client / {per_order_server:g} server",
                    note=f"server commands {delta}; idle background {idle}; window {window}",
                )
            )
            exact = admitted == n and main_sends == n and server_cmds == n
            result.targets.append(
                Target(
                    "RedisStore: exactly one round trip per record_order()",
                    "= 1",
                    f"{per_order_client:g} (client), {per_order_server:g} (server)",
                    exact,
                )
            )
            batch = 20 if cfg.smoke else 500
            variants = {
                "record_order": sync_batch("mgr.record_order()", {"mgr": mgr}),
                "ping": sync_batch("c.ping()", {"c": ping_client}),
            }
            times = interleave(variants, cfg.rounds, batch)
            ratio, _ = median_ratio(times["record_order"], times["ping"])
            result.data["timing"] = {"times": times, "ratio": ratio}
            result.rows.append(
                Row(
                    SECTION,
                    "record_order() on RedisStore vs raw redis-py PING",
                    fmt_us(median(times["record_order"])),
                    fmt_us(median(times["ping"])),
                    fmt_ratio(ratio),
                )
            )
            result.targets.append(
                Target(
                    "RedisStore record_order() vs raw PING",
                    f"≤ {RATIO_LIMIT:.1f}x",
                    fmt_ratio(ratio),
                    ratio <= RATIO_LIMIT,
                )
            )
        finally:
            with contextlib.suppress(Exception):
                mgr.close()
            admin.close()
            ping_client.close()
    return result
