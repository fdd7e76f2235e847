"""RedisStore: round trips and time of ``manager.record_order()``.

A private ``redis-server`` is started on a free loopback port (no persistence) and stopped
afterwards. The manager is the guide's recommended setup on a ``RedisStore``, except that
the order-rate window is 1 ms with a limit of 100, so every order is admitted (each one goes
through the shared window's atomic script) while the window holds about as few orders as
the recommended 10-per-minute window does. (The script returns up to limit+1 order times
per call, so a huge limit over a long window makes every call carry the whole window; see
docs/benchmarks.md.) A listener checks that no order was refused.

Round trips are counted two ways over N admitted orders: on the server with ``MONITOR``
(top-level commands from the store's connections; commands run inside a Lua script are
listed by MONITOR as ``lua`` and are not round trips); in this process, the commands
redis-py writes from the calling thread (a counter around ``send_packed_command``; one call
is one round trip, a pipeline included). Time: interleaved batches of ``record_order()`` and
of a raw redis-py ``PING`` on its own client, same server, same process; median of
per-round ratios.

``HALTGATE_BENCH_REDIS_QUERY`` (e.g. ``?protocol=2``) appends options to the store's URL,
for diagnosing the store (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
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

# For the analysis: the smallest possible script (the floor of any script-based design),
# and a slimmer rate script proposed in docs/benchmarks.md (no member counter key, one
# PEXPIRE only when an order is added, no order times in the reply).
RETURN_ONE = "return 1"
SLIM_RATE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[1])
local admitted = 0
if limit < 0 or count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
  count = count + 1
  admitted = 1
end
return {admitted, count, now}
"""
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


class Monitor:
    """Top-level commands seen by the server (``MONITOR``), by client and command name."""

    STOP = "haltgate-bench-monitor-stop"

    def __init__(self, port: int) -> None:
        import redis

        self._client = redis.Redis(host="127.0.0.1", port=port)
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]
        self._monitor.__enter__()
        self.commands: list[tuple[str, str]] = []  # (client address:port, command name)
        self.lua = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            entry = self._monitor.next_command()
            command = str(entry.get("command", ""))
            if self.STOP in command:
                return
            if entry.get("client_type") == "lua":
                self.lua += 1
                continue
            client = f"{entry.get('client_address')}:{entry.get('client_port')}"
            self.commands.append((client, command.split(" ", 1)[0].upper()))

    def stop(self, admin: Any) -> None:
        """Send the stop marker and wait for the reader."""
        admin.echo(self.STOP)
        self._thread.join(timeout=30)
        self._monitor.__exit__(None, None, None)
        self._client.close()


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
        # Diagnostic: extra URL options for the store, e.g. "?protocol=2" (see the docs).
        url = f"redis://127.0.0.1:{port}/0" + os.environ.get("HALTGATE_BENCH_REDIS_QUERY", "")
        store = store_cls(url, namespace=f"bench-{os.getpid()}", create=True)
        mgr = recommended_manager(max_orders_per_minute=100, window_seconds=0.001, store=store)
        refused: list[Any] = []
        mgr.add_listener(
            lambda event: refused.append(event) if event.kind == "order_refused" else None
        )
        admin = redis.Redis(host="127.0.0.1", port=port)
        ping_client = redis.Redis(host="127.0.0.1", port=port)
        try:
            rate = mgr.get_breaker("order_rate")
            window = type(getattr(rate, "_rate", None)).__name__
            for _ in range(20):  # connect, load scripts
                assert mgr.record_order()
            # The live-process registry's heartbeat (once a second, on the background
            # thread, through the store's connection pool) is not part of an order: let it
            # register, then space the heartbeats out past the measurement.
            store.registration.configure(heartbeat_seconds=600, ttl_seconds=1200)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                entry.get("heartbeat") == 600 for entry in store.registry_entries().values()
            ):
                time.sleep(0.01)
            ping_client.ping()
            admin_id = admin.client_id()
            admin_addr = next(c["addr"] for c in admin.client_list() if c["id"] == str(admin_id))
            n = 50 if cfg.smoke else 2000
            counter = SendCounter()
            monitor = Monitor(port)
            time.sleep(0.05)
            with counter.installed():
                t0 = time.monotonic()
                admitted = sum(bool(mgr.record_order()) for _ in range(n))
                busy = time.monotonic() - t0
                main_sends = counter.by_thread.get(threading.get_ident(), 0)
            # What background work (pub/sub, resync) sends meanwhile: same duration, idle.
            time.sleep(min(busy, 2.0))
            monitor.stop(admin)
            commands = [(c, name) for c, name in monitor.commands if c != admin_addr]
            # The order path's connections are those that ran the rate script; anything
            # else (a health-check PING, pub/sub) is the store's background work.
            order_clients = {c for c, name in commands if name in ("EVALSHA", "EVAL", "FCALL")}
            on_path: dict[str, int] = {}
            background: dict[str, int] = {}
            for client, name in commands:
                bucket = on_path if client in order_clients else background
                bucket[name] = bucket.get(name, 0) + 1
            server_cmds = sum(on_path.values())
            per_order_server = server_cmds / n
            per_order_client = main_sends / n
            result.data["round_trips"] = {
                "orders": n,
                "admitted": admitted,
                "server_order_path_commands": on_path,
                "server_background_commands": background,
                "server_lua_commands": monitor.lua,
                "client_sends_calling_thread": main_sends,
                "window": window,
            }
            result.rows.append(
                Row(
                    SECTION,
                    f"round trips per record_order() ({n:,} admitted orders)",
                    f"{per_order_client:g} client / {per_order_server:g} server",
                    note=(
                        f"MONITOR: order connection {on_path}, background {background} "
                        f"(over the run and an idle period as long); {monitor.lua} commands "
                        f"inside scripts; window {window}"
                    ),
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
            # The store's own rate script called straight from redis-py (same keys shape and
            # arguments, separate keys): what Redis and the reply parsing cost by themselves.
            script_text = getattr(sys.modules[store_cls.__module__], "_RATE_SCRIPT", None)
            if isinstance(script_text, str):
                script = ping_client.register_script(script_text)
                keys = [f"bench-raw-{os.getpid()}:w"]
                variants["script"] = sync_batch(
                    "script(keys=keys, args=[100, 1000, 101, f'{pid}-{next(seq)}'])",
                    {
                        "script": script,
                        "keys": keys,
                        "pid": os.getpid(),
                        "seq": itertools.count(),
                    },
                )
            variants["return 1"] = sync_batch(
                "one()", {"one": ping_client.register_script(RETURN_ONE)}
            )
            slim = ping_client.register_script(SLIM_RATE_SCRIPT)
            variants["slim"] = sync_batch(
                "slim(keys=keys, args=[100, 1000, f'{pid}-{next(seq)}'])",
                {
                    "slim": slim,
                    "keys": [f"bench-slim-{os.getpid()}"],
                    "pid": os.getpid(),
                    "seq": itertools.count(),
                },
            )
            times = interleave(variants, cfg.rounds, batch)
            attempts = (cfg.rounds + 1) * batch
            ratio, _ = median_ratio(times["record_order"], times["ping"])
            result.data["timing"] = {"times": times, "ratio": ratio}
            for key, label, note in (
                (
                    "script",
                    "the store's rate script via plain redis-py",
                    "analysis: Redis + reply parsing, no haltgate code",
                ),
                (
                    "return 1",
                    "EVALSHA of `return 1` via plain redis-py",
                    "analysis: the floor of any Lua-script design",
                ),
                (
                    "slim",
                    "a slimmer rate script (proposal) via plain redis-py",
                    "analysis: see docs/benchmarks.md",
                ),
            ):
                if key not in times:
                    continue
                raw, _ = median_ratio(times[key], times["ping"])
                result.data["timing"][f"{key}_ratio"] = raw
                result.rows.append(
                    Row(
                        SECTION,
                        f"{label} vs raw PING",
                        fmt_us(median(times[key])),
                        fmt_us(median(times["ping"])),
                        fmt_ratio(raw),
                        note,
                    )
                )
            result.rows.append(
                Row(
                    SECTION,
                    "record_order() on RedisStore vs raw redis-py PING",
                    fmt_us(median(times["record_order"])),
                    fmt_us(median(times["ping"])),
                    fmt_ratio(ratio),
                    (
                        f"{len(refused)} of ~{attempts} orders refused: {refused[0].reason}"
                        if refused
                        else "no order refused"
                    ),
                )
            )
            result.targets.append(
                Target(
                    "RedisStore record_order() vs raw PING",
                    f"≤ {RATIO_LIMIT:.1f}x",
                    fmt_ratio(ratio) + (f" ({len(refused)} refused)" if refused else ""),
                    ratio <= RATIO_LIMIT and not refused,
                )
            )
        finally:
            with contextlib.suppress(Exception):
                mgr.close()
            admin.close()
            ping_client.close()
    return result
