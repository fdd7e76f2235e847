"""The order checks' windows with RedisStore, against a real redis-server (SPEC §10, §6):
shared by every process, atomic, on Redis time, in the same single round trip as the
order-rate windows; refused orders take no slot; an operator's reset empties the
execution throttle's window; Redis down refuses within store_timeout."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haltgate import (
    CircuitBreakerManager,
    CircuitBreakerState,
    ManualCircuitBreaker,
    Order,
    OrderRateCircuitBreaker,
)
from haltgate.checks import DuplicateOrder, ExecutionThrottle, MaxOrderQuantity, MessageThrottle
from haltgate.operator import operator_manager
from haltgate.store.redis import RedisStore

from .conftest import RedisServer, child_env, read_line, wait_for

pytestmark = pytest.mark.timeout(90)


def all_checks_manager(
    url: str, *, rate: int = 1000, throttle: int = 1000, messages: int = 1000
) -> Any:
    manager = CircuitBreakerManager(
        breakers=[
            OrderRateCircuitBreaker(rate, 60),
            OrderRateCircuitBreaker(rate, 60, name="order_rate_b"),
            ManualCircuitBreaker(),
        ],
        store=RedisStore(url),
    )
    manager.add_check(DuplicateOrder(60))
    manager.add_check(MessageThrottle(messages, 60))
    manager.add_check(ExecutionThrottle(throttle, 60))
    return manager


def zcard(store: RedisStore, *parts: str) -> int:
    return int(store._client.zcard(store._key(*parts)))


def encode_window_key(name: str, key: Any) -> str:
    # Imported here: the other tests must run (and fail) on a tree without the module.
    from haltgate.store.redis_windows import encode_window_key as encode

    return encode(name, key)


def window_size(manager: Any, check: str, order: Order | None = None) -> int:
    """The size of the shared window ``order`` counts in (NS:window:JSON)."""
    store = manager.store
    key = manager.get_check(check).window_key(order)
    return int(store._client.zcard(store._key("window", encode_window_key(check, key))))


@pytest.fixture()
def manager(redis_url: str) -> Iterator[Any]:
    m = all_checks_manager(redis_url)
    try:
        yield m
    finally:
        m.close()


def test_the_checks_count_in_redis_windows(manager: Any) -> None:
    from haltgate.store.redis_windows import RedisKeyedWindow

    for name in ("duplicate_order", "message_throttle", "execution_throttle"):
        assert isinstance(manager.get_check(name).bound_window, RedisKeyedWindow)


# ---------------------------------------------------------------- (a) one round trip
def _background(words: list[str]) -> bool:
    name = words[0]
    if name in ("PING", "MGET", "TIME"):  # the order path's TIME runs inside its script
        return True
    return name == "HSET" and len(words) > 1 and words[1].endswith(":processes")


class Monitor:
    """The commands the server ran meanwhile (MONITOR), split into those sent over the
    network (without the listener's health-check PINGs) and those run inside scripts."""

    def __init__(self, server: RedisServer) -> None:
        self._client: Any = server.client()
        self._ender: Any = server.client()
        self._ender.ping()  # connected (handshake done) before the monitor starts
        self._seen: list[dict[str, Any]] = []
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with self._client.monitor() as monitor:
            self._started.set()
            for command in monitor.listen():
                if command["command"] == "ECHO end-of-test":
                    return
                self._seen.append(command)

    def __enter__(self) -> Monitor:
        self._thread.start()
        assert self._started.wait(5)
        time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._ender.echo("end-of-test")
        self._thread.join(5)
        self._ender.close()
        self._client.close()

    def sent(self) -> list[str]:
        # Background traffic is not part of an order: the listener's health-check PINGs,
        # its poll of the epoch marker and audit head (MGET), and the live-process
        # registry's write after a state change (the store's TIME, then HSET of its field).
        return [
            c["command"].split()[0]
            for c in self._seen
            if c["client_type"] != "lua" and not _background(c["command"].split())
        ]

    def scripts(self, sha: str) -> int:
        """How many calls of the script ``sha`` were sent."""
        return sum(
            1
            for c in self._seen
            if c["client_type"] != "lua" and c["command"].split()[:2] == ["EVALSHA", sha]
        )

    def inner(self) -> list[str]:
        return [c["command"].split()[0] for c in self._seen if c["client_type"] == "lua"]


def quiet_heartbeat(manager: Any) -> None:
    """Registered with every breaker, then heartbeats far apart: the process registry's
    heartbeat is background traffic, not part of an order."""
    wait_for(lambda: manager.store.available and manager.store._pubsub is not None)
    manager.store.registration.configure(heartbeat_seconds=60, ttl_seconds=120)
    names = {b.name for b in manager.get_all_breakers()}
    wait_for(
        lambda: (
            [{b["name"] for b in e["breakers"]} for e in manager.store.registry_entries().values()]
            == [names]
        )
    )


def test_one_evalsha_per_admitted_order_with_rate_and_all_three_windowed_checks(
    redis_server: RedisServer, manager: Any
) -> None:
    quiet_heartbeat(manager)
    with Monitor(redis_server) as monitor:
        for i in range(25):
            assert manager.admit_order(order=Order.make("SPY", i + 1, limit_price=100)) == []
        # A duplicate is refused in the same single call, recording nothing.
        refused = manager.admit_order(order=Order.make("SPY", 1, limit_price=100))
        assert refused and refused[0].startswith("duplicate_order:")
        assert manager.record_message("cancel") is True
    # 25 admitted + 1 refused + 1 message: one script call each, nothing else.
    assert monitor.sent() == ["EVALSHA"] * 27, monitor.sent()
    assert monitor.scripts(manager.store._admit_script.sha) == 27
    inner = monitor.inner()
    # Redis's clock once per call; 5 windows (2 rate + 3 checks) per admitted order, the
    # message window once; nothing recorded for the refused duplicate.
    assert inner.count("TIME") == 27
    assert inner.count("ZADD") == 25 * 5 + 1
    # And the rate windows' counts are answered from the reply, without I/O.
    assert manager.get_breaker("order_rate").get_order_count() == 25
    assert manager.get_breaker("order_rate_b").get_order_count() == 25


def test_several_order_rate_breakers_without_checks_are_one_round_trip(
    redis_server: RedisServer, redis_url: str
) -> None:
    manager = CircuitBreakerManager(
        breakers=[OrderRateCircuitBreaker(5, 60), OrderRateCircuitBreaker(3, 60, name="tight")],
        store=RedisStore(redis_url),
    )
    try:
        quiet_heartbeat(manager)
        with Monitor(redis_server) as monitor:
            assert [manager.record_order() for _ in range(4)] == [True, True, True, False]
        # One admission script per order; the rest is the trip's own durable write (the
        # audit chain's mode, then the write script), made once.
        assert monitor.scripts(manager.store._admit_script.sha) == 4
        assert monitor.sent() == ["EVALSHA"] * 4 + ["SET", "GET", "EVALSHA"], monitor.sent()
        # The refusal by the tighter window recorded nothing in the other one, and tripped
        # the breaker whose window was full (durably, through the executor).
        assert manager.get_breaker("order_rate").get_order_count() == 3
        assert manager.get_breaker("tight").is_tripped
        assert not manager.get_breaker("order_rate").is_tripped
    finally:
        manager.close()


# ---------------------------------------------------------------- (b) two processes race
RACER = """
import sys
from haltgate import CircuitBreakerManager, Order, OrderRateCircuitBreaker
from haltgate.checks import DuplicateOrder, ExecutionThrottle, MessageThrottle
url, mode, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = CircuitBreakerManager(breakers=[OrderRateCircuitBreaker(10000, 60)], store=url)
if mode == "message":
    m.add_check(MessageThrottle(50, 60))
    orders = [Order.make("SPY", offset + i + 1, limit_price=100) for i in range(40)]
elif mode == "execution":
    m.add_check(ExecutionThrottle(20, 60))
    orders = [Order.make("SPY", offset + i + 1, limit_price=100) for i in range(15)]
else:
    m.add_check(DuplicateOrder(60))
    orders = [Order.make("SPY", 7, limit_price=100) for i in range(10)]
print("ready", flush=True)
sys.stdin.readline()
admitted = sum(not m.admit_order(order=o) for o in orders)
print(admitted, flush=True)
m.close()
"""


def race(url: str, mode: str) -> list[int]:
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, mode, str(offset)],
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        for offset in (0, 1000)
    ]
    try:
        for racer in racers:
            assert read_line(racer, 30) == "ready"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        admitted = [int(read_line(racer, 30)) for racer in racers]
        for racer in racers:
            assert racer.wait(timeout=30) == 0
        return admitted
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()


@pytest.mark.parametrize(("mode", "limit"), [("message", 50), ("execution", 20), ("duplicate", 1)])
def test_two_processes_racing_admit_exactly_the_limit(
    redis_url: str, mode: str, limit: int
) -> None:
    admitted = race(redis_url, mode)
    assert sum(admitted) == limit, admitted
    store = RedisStore(redis_url)
    try:
        # Every admitted order was recorded in the order-rate window too, and no refused one.
        assert zcard(store, "rate", "order_rate") == limit
        if mode == "execution":
            # The refused order tripped the latched breaker, durably, for every process.
            snapshot = store.load_snapshot("execution_throttle")
            assert snapshot is not None and snapshot["state"] == "TRIPPED"
            assert "21 > 20 orders for SPY BUY" in snapshot["trip"]["reason"]
    finally:
        store.close()


# ---------------------------------------------------------------- (c) across processes
ADMIT_ONCE = """
import sys
from haltgate import CircuitBreakerManager, Order
from haltgate.checks import DuplicateOrder
m = CircuitBreakerManager(store=sys.argv[1])
m.add_check(DuplicateOrder(float(sys.argv[2])))
print(m.admit_order(order=Order.make("SPY", 10, limit_price="101.5")) == [], flush=True)
m.close()
"""


def test_a_duplicate_admitted_by_one_process_is_refused_in_another(redis_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ADMIT_ONCE, redis_url, "0.5"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.strip() == "True", proc.stderr[-2000:]
    manager = CircuitBreakerManager(store=RedisStore(redis_url))
    try:
        manager.add_check(DuplicateOrder(0.5))
        # The same order (101.5 and 101.50 are one price) is refused here...
        assert manager.admit_order(order=Order.make("SPY", 10, limit_price="101.50")) == [
            "duplicate_order: SPY BUY 10 @ 101.5 already admitted within 0.5s"
        ]
        # ...another price, side or quantity is not a duplicate...
        assert manager.admit_order(order=Order.make("SPY", 10, limit_price="101.6")) == []
        assert manager.admit_order(order=Order.make("SPY", -10, limit_price="101.5")) == []
        # ...and once the window has passed on Redis's clock, the order goes again.
        time.sleep(0.55)
        assert manager.admit_order(order=Order.make("SPY", 10, limit_price="101.5")) == []
    finally:
        manager.close()


# ---------------------------------------------------------------- (d) no slot when refused
def test_refused_orders_take_no_slot_in_any_shared_window(redis_url: str) -> None:
    manager = all_checks_manager(redis_url, rate=3, throttle=1000)
    manager.add_check(MaxOrderQuantity(500))
    store = manager.store
    spy = Order.make("SPY", 1, limit_price=100)
    try:
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100)) == []

        def slots() -> tuple[int, int, int, int]:
            return (
                zcard(store, "rate", "order_rate"),
                zcard(store, "rate", "order_rate_b"),
                window_size(manager, "message_throttle"),
                window_size(manager, "execution_throttle", spy),
            )

        assert slots() == (1, 1, 1, 1)
        # Refused by a duplicate window: nothing recorded anywhere.
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100))
        assert slots() == (1, 1, 1, 1)
        # Refused by a check before the windows.
        assert manager.admit_order(order=Order.make("SPY", 501, limit_price=100))
        assert slots() == (1, 1, 1, 1)
        assert window_size(manager, "duplicate_order", Order.make("SPY", 501, limit_price=100)) == 0
        # Refused by a full order-rate window: the check windows gain nothing.
        assert manager.admit_order(order=Order.make("SPY", 2, limit_price=100)) == []
        assert manager.admit_order(order=Order.make("SPY", 3, limit_price=100)) == []
        refused = manager.admit_order(order=Order.make("SPY", 4, limit_price=100))
        assert refused and refused[0].startswith("order_rate")
        assert slots() == (3, 3, 3, 3)
        assert window_size(manager, "duplicate_order", Order.make("SPY", 4, limit_price=100)) == 0
        # The refused order was not remembered as admitted: it is no duplicate later.
        assert (
            manager.get_check("duplicate_order").window_count(
                ("SPY", Order.make("SPY", 4).side, Decimal(4), Decimal(100))
            )
            == 0
        )
    finally:
        manager.close()


def test_execution_throttle_refusal_takes_no_slot_and_trips_for_every_process(
    redis_url: str,
) -> None:
    first = all_checks_manager(redis_url, throttle=3)
    second = all_checks_manager(redis_url, throttle=3)
    try:
        for quantity in (1, 2):
            assert first.admit_order(order=Order.make("SPY", quantity, limit_price=100)) == []
        assert second.admit_order(order=Order.make("SPY", 3, limit_price=100)) == []
        # The fourth SPY BUY in the window, from the first process: refused and tripped.
        assert first.admit_order(order=Order.make("SPY", 4, limit_price=100)) == [
            "execution_throttle: 4 > 3 orders for SPY BUY in 60s"
        ]
        store = first.store
        assert window_size(first, "execution_throttle", Order.make("SPY", 1)) == 3
        assert zcard(store, "rate", "order_rate") == 3
        assert first.get_breaker("execution_throttle").state is CircuitBreakerState.TRIPPED
        # Durable and propagated through the store: the other process stops too.
        wait_for(lambda: second.get_breaker("execution_throttle").is_tripped, timeout=2)
        assert second.admit_order(order=Order.make("QQQ", 1, limit_price=100))
    finally:
        first.close()
        second.close()


def test_an_operators_reset_empties_the_shared_window_for_every_process(
    redis_url: str,
) -> None:
    trader = all_checks_manager(redis_url, throttle=2)
    try:
        for quantity in (1, 2, 3):
            trader.admit_order(order=Order.make("SPY", quantity, limit_price=100))
        assert trader.get_breaker("execution_throttle").is_tripped
        store = trader.store
        assert window_size(trader, "execution_throttle", Order.make("SPY", 1)) == 2
        # An operator resets it with the store alone (as `haltgate reset` does).
        operator = operator_manager(RedisStore(redis_url))
        try:
            operator.reset("execution_throttle", operator="ops", reason="burst reviewed")
        finally:
            operator.close()
        assert window_size(trader, "execution_throttle", Order.make("SPY", 1)) == 0
        assert not store._client.keys(store._key("window-index*"))
        wait_for(lambda: not trader.get_breaker("execution_throttle").is_tripped, timeout=2)
        # The window starts empty: the limit is available again, and only the limit.
        assert trader.admit_order(order=Order.make("SPY", 10, limit_price=100)) == []
        assert trader.admit_order(order=Order.make("SPY", 11, limit_price=100)) == []
        assert trader.admit_order(order=Order.make("SPY", 12, limit_price=100))
        assert trader.get_breaker("execution_throttle").is_tripped
        # The other windows are not the reset's business: the duplicates stay.
        assert window_size(trader, "duplicate_order", Order.make("SPY", 1, limit_price=100)) == 1
    finally:
        trader.close()


def test_message_throttle_counts_modifies_and_cancels_of_every_process(redis_url: str) -> None:
    first = CircuitBreakerManager(store=RedisStore(redis_url))
    second = CircuitBreakerManager(store=RedisStore(redis_url))
    try:
        for m in (first, second):
            m.add_check(MessageThrottle(3, 60))
        assert first.record_message("modify") is True
        assert second.record_message("cancel") is True
        assert first.admit_order(order=Order.make("SPY", 1, limit_price=100)) == []
        # Three messages from two processes: the next submit anywhere is refused...
        assert second.admit_order(order=Order.make("SPY", 2, limit_price=100)) == [
            "message_throttle: 4 > 3 messages in 60s"
        ]
        # ...but a cancel is never refused (it is counted, and says the window is over).
        assert second.record_message("cancel") is False
        assert window_size(first, "message_throttle") == 4
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------- keys and expiry
def test_window_keys_expire_after_their_window(redis_url: str) -> None:
    manager = CircuitBreakerManager(store=RedisStore(redis_url))
    try:
        manager.add_check(DuplicateOrder(0.2))
        manager.add_check(ExecutionThrottle(5, 0.2))
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100)) == []
        client = manager.store._client
        keys = client.keys(manager.store._key("window*"))
        assert len(keys) == 3  # the duplicate's, the throttle's, the throttle's index
        for key in keys:
            assert 0 < client.pttl(key) <= 1200
        wait_for(lambda: not client.keys(manager.store._key("window*")), timeout=3)
    finally:
        manager.close()


def test_a_symbol_cannot_forge_another_key() -> None:
    dup, throttle = DuplicateOrder(1), ExecutionThrottle(1, 1)
    plain = encode_window_key("duplicate_order", dup.window_key(Order.make("A", 1)))
    assert plain == '["duplicate_order","A",true,"1",null]'
    forged_symbol = 'A",true,"1",null]'
    forged = encode_window_key("duplicate_order", dup.window_key(Order.make(forged_symbol, 1)))
    assert forged != plain and json.loads(forged)[1] == forged_symbol
    assert encode_window_key(
        "execution_throttle", throttle.window_key(Order.make("A:B", 1))
    ) != encode_window_key("execution_throttle", throttle.window_key(Order.make("A", 1)))
    # 100 and 100.0 are one price, as in the local window.
    assert encode_window_key(
        "duplicate_order", dup.window_key(Order.make("A", 1, limit_price="100.0"))
    ) == encode_window_key("duplicate_order", dup.window_key(Order.make("A", 1, limit_price=100)))


@given(
    st.tuples(st.text(min_size=1), st.sampled_from(["BUY", "SELL"]), st.decimals(1, 10**6)),
    st.tuples(st.text(min_size=1), st.sampled_from(["BUY", "SELL"]), st.decimals(1, 10**6)),
)
def test_window_keys_are_equal_only_for_equal_orders(
    a: tuple[str, str, Decimal], b: tuple[str, str, Decimal]
) -> None:
    same = a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    assert (
        encode_window_key("duplicate_order", a) == encode_window_key("duplicate_order", b)
    ) == same


# ---------------------------------------------------------------- (e) Redis down
def test_redis_down_refuses_with_the_store_reason_within_store_timeout(
    redis_server: RedisServer, redis_url: str
) -> None:
    manager = CircuitBreakerManager(
        breakers=[OrderRateCircuitBreaker(1000, 60)],
        store=RedisStore(redis_url, store_timeout=0.25),
    )
    try:
        for check in (DuplicateOrder(60), MessageThrottle(1000, 60), ExecutionThrottle(1000, 60)):
            manager.add_check(check)
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100)) == []
        redis_server.stop()
        worst = 0.0
        reasons: list[list[str]] = []
        for i in range(20):
            started = time.monotonic()
            refused = manager.admit_order(order=Order.make("SPY", i + 2, limit_price=100))
            worst = max(worst, time.monotonic() - started)
            reasons.append(refused)
        assert all(r and "unavailable" in r[0] for r in reasons), reasons
        # The first call finds out by itself (the script call times out) or from the
        # watcher; either way it names the store.
        assert f"127.0.0.1:{redis_server.port}" in reasons[0][0]
        assert worst < 0.25, worst
        # A message still goes out (never refused); it says it could not be counted.
        started = time.monotonic()
        assert manager.record_message("cancel") is False
        assert time.monotonic() - started < 0.25
    finally:
        manager.close()


def test_fail_open_counts_the_check_windows_in_the_process_while_redis_is_down(
    redis_server: RedisServer, redis_url: str
) -> None:
    manager = CircuitBreakerManager(store=RedisStore(redis_url, fail_open=True, store_timeout=0.25))
    try:
        manager.add_check(DuplicateOrder(60))
        manager.add_check(ExecutionThrottle(2, 60))
        redis_server.stop()
        wait_for(lambda: manager.store._down_reason is not None)
        # Trading goes on (explicit fail_open), and the windows still hold in this process.
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100)) == []
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100)) == [
            "duplicate_order: SPY BUY 1 @ 100 already admitted within 60s"
        ]
        assert manager.admit_order(order=Order.make("SPY", 2, limit_price=100)) == []
        refused = manager.admit_order(order=Order.make("SPY", 3, limit_price=100))
        assert refused == ["execution_throttle: 3 > 2 orders for SPY BUY in 60s"]
    finally:
        manager.close()


def test_a_rate_window_the_store_does_not_keep_still_gets_all_or_none(redis_url: str) -> None:
    from haltgate.breakers.order_rate import LocalRateWindow

    manager = all_checks_manager(redis_url)
    try:
        # One rate window of this process's own: no single store call can cover it, so the
        # admission goes window by window, giving back the Redis slots when it refuses.
        breaker = manager.get_breaker("order_rate_b")
        breaker.use_window(LocalRateWindow(60, breaker.clock, compact_above=1))
        breaker.max_orders_per_minute = 1
        assert manager.admit_order(order=Order.make("SPY", 1, limit_price=100)) == []
        refused = manager.admit_order(order=Order.make("SPY", 2, limit_price=100))
        assert refused and refused[0].startswith("order_rate_b")
        spy2 = Order.make("SPY", 2, limit_price=100)
        assert window_size(manager, "duplicate_order", spy2) == 0
        assert window_size(manager, "message_throttle") == 1
        assert window_size(manager, "execution_throttle", spy2) == 1
        assert zcard(manager.store, "rate", "order_rate") == 1
    finally:
        manager.close()


def test_a_tripped_rate_breaker_refuses_before_any_round_trip(
    redis_server: RedisServer, redis_url: str
) -> None:
    manager = all_checks_manager(redis_url, rate=2, throttle=2)
    try:
        for quantity in (1, 2):
            assert manager.admit_order(order=Order.make("SPY", quantity, limit_price=100)) == []
        # The rate windows are full (SPY BUY's throttle window too): QQQ trips order_rate.
        assert manager.admit_order(order=Order.make("QQQ", 3, limit_price=100))
        rate = manager.get_breaker("order_rate")
        assert rate.is_tripped
        quiet_heartbeat(manager)
        with Monitor(redis_server) as monitor:
            for quantity in range(4, 14):
                refused = manager.admit_order(order=Order.make("SPY", quantity, limit_price=100))
                assert refused and refused[0].startswith("order_rate")
        assert monitor.scripts(manager.store._admit_script.sha) == 0
        # Those SPY BUY orders went nowhere: they trip no execution throttle.
        assert not manager.get_breaker("execution_throttle").is_tripped
    finally:
        manager.close()
