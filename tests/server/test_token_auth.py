"""TokenAuthenticator (SPEC §8): known tokens without scrypt, bounded checks of unknown ones,
a per-client failure limit on a ManualClock, and the server's 401/429 built on it."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from haltgate import InvalidInputError, InvalidTypeError, ManualClock, MemoryStore, hash_key
from haltgate.config import OperatorConfig, parse_config
from haltgate.server import build_service, create_app
from haltgate.server.auth import (
    CHECK_NICENESS,
    TokenAuthenticator,
    TokenCheckRefused,
    client_key,
)


def _hash(token: str) -> str:
    return "reversed:" + token[::-1]  # so that no hash contains its token


ALICE = OperatorConfig("alice", _hash("alice-token"))
BOB = OperatorConfig("bob", _hash("bob-token"))


class Verifier:
    """A stand-in for scrypt that counts its calls and can be held until released."""

    def __init__(self, *, hold: bool = False) -> None:
        self.calls: list[str] = []
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._lock = threading.Lock()

    def __call__(self, token: str, token_hash: str) -> bool:
        with self._lock:
            self.calls.append(token)
        self.started.release()
        assert self.release.wait(10), "the test never released the check"
        return token_hash == _hash(token)

    def wait_started(self, count: int = 1) -> None:
        for _ in range(count):
            assert self.started.acquire(timeout=10), "a check never started"


def _auth(verify: Verifier, clock: ManualClock | None = None, **options: Any) -> TokenAuthenticator:
    return TokenAuthenticator([ALICE, BOB], clock=clock or ManualClock(), verify=verify, **options)


def _run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(scenario())


def test_a_verified_token_is_known_afterwards_without_a_check() -> None:
    verify = Verifier()
    auth = _auth(verify)

    async def scenario() -> None:
        assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE
        calls = len(verify.calls)
        for _ in range(50):
            assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE
        assert len(verify.calls) == calls  # no scrypt after the first time
        assert auth.known("alice-token") == ALICE
        assert auth.known("bob-token") is None

    _run(scenario)
    # Only keyed digests are kept: the plain token is nowhere in the authenticator.
    assert "alice-token" not in repr(vars(auth))


def test_a_full_queue_refuses_at_once_without_running_a_check() -> None:
    verify = Verifier(hold=True)
    auth = _auth(verify, max_concurrent=1, max_waiting=2)

    async def scenario() -> None:
        pending = [
            asyncio.ensure_future(auth.authenticate(f"bad-{i}", f"10.0.0.{i}")) for i in range(3)
        ]
        await asyncio.sleep(0)  # each request has asked for its check
        verify.wait_started()
        assert auth.in_flight == 3
        with pytest.raises(TokenCheckRefused) as refused:
            await auth.authenticate("bad-x", "10.0.0.99")
        assert refused.value.reason == "busy" and refused.value.retry_after >= 1
        assert set(verify.calls) == {"bad-0"}  # the refused token was never checked
        # A known token answers while the checks are queued: nothing waits for them.
        verify.release.set()
        results = await asyncio.gather(*pending)
        assert results == [None, None, None]
        assert auth.in_flight == 0
        assert sorted(set(verify.calls)) == ["bad-0", "bad-1", "bad-2"]

    _run(scenario)


def test_a_known_token_answers_while_unknown_ones_are_being_checked() -> None:
    verify = Verifier()
    auth = _auth(verify, max_concurrent=1, max_waiting=1)

    async def scenario() -> None:
        assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE
        verify.release.clear()
        verify.started = threading.Semaphore(0)
        checking = asyncio.ensure_future(auth.authenticate("bad", "127.0.0.1"))
        await asyncio.sleep(0)
        verify.wait_started()
        # Answered while the check is held in its thread (were the loop blocked on it,
        # this would never return before the release below).
        assert await asyncio.wait_for(auth.authenticate("alice-token", "127.0.0.1"), 5) == ALICE
        assert not checking.done()
        verify.release.set()
        assert await checking is None

    _run(scenario)


def test_the_per_client_failure_limit_refuses_unchecked_until_the_window_passes() -> None:
    verify = Verifier()
    clock = ManualClock()
    auth = _auth(verify, clock, failure_limit=3, failure_window=60)

    async def scenario() -> None:
        assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE
        for i in range(3):
            assert await auth.authenticate(f"bad-{i}", "127.0.0.1") is None
            clock.advance(1)
        calls = len(verify.calls)
        with pytest.raises(TokenCheckRefused) as refused:
            await auth.authenticate("bad-3", "127.0.0.1")
        assert refused.value.reason == "client_limit"
        assert refused.value.retry_after == 57  # the first failure ages out at 60 s
        # Unchecked while over the limit, even a valid token not yet known...
        with pytest.raises(TokenCheckRefused):
            await auth.authenticate("bob-token", "127.0.0.1")
        assert len(verify.calls) == calls
        # ...but a known token from the same address still works,
        assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE
        # and another client is checked as usual.
        assert await auth.authenticate("bob-token", "10.1.1.1") == BOB
        clock.advance(56)
        with pytest.raises(TokenCheckRefused) as refused:
            await auth.authenticate("bad-4", "127.0.0.1")
        assert refused.value.retry_after == 1
        clock.advance(1)  # the first failure is 60 s old now: one more check is allowed
        assert await auth.authenticate("bad-5", "127.0.0.1") is None
        with pytest.raises(TokenCheckRefused):
            await auth.authenticate("bad-6", "127.0.0.1")

    _run(scenario)


def test_parallel_requests_cannot_slip_past_the_failure_limit() -> None:
    verify = Verifier(hold=True)
    auth = _auth(verify, failure_limit=3, max_concurrent=1, max_waiting=50)

    async def scenario() -> None:
        pending = [
            asyncio.ensure_future(auth.authenticate(f"bad-{i}", "192.0.2.7")) for i in range(10)
        ]
        await asyncio.sleep(0)
        verify.release.set()
        results = await asyncio.gather(*pending, return_exceptions=True)
        refused = [r for r in results if isinstance(r, TokenCheckRefused)]
        assert results.count(None) == 3 and len(refused) == 7
        assert {r.reason for r in refused} == {"client_limit"}
        assert len(set(verify.calls)) == 3

    _run(scenario)


def test_a_token_that_verifies_does_not_count_as_a_failure() -> None:
    verify = Verifier()
    auth = _auth(verify, failure_limit=2)

    async def scenario() -> None:
        assert await auth.authenticate("bad-1", "198.51.100.1") is None
        assert await auth.authenticate("bob-token", "198.51.100.1") == BOB
        assert await auth.authenticate("bad-2", "198.51.100.1") is None
        with pytest.raises(TokenCheckRefused):
            await auth.authenticate("bad-3", "198.51.100.1")

    _run(scenario)


def test_a_repeated_wrong_token_is_checked_once() -> None:
    verify = Verifier()
    auth = _auth(verify, failure_limit=2)

    async def scenario() -> None:
        for _ in range(20):  # e.g. a status page polling with a mistyped token
            assert await auth.authenticate("mistyped", "127.0.0.1") is None
        assert verify.calls.count("mistyped") == 2  # once per configured operator
        # It counted one failure, not twenty: another token may still be checked.
        assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE

    _run(scenario)


def test_a_token_removed_from_the_config_is_not_accepted_from_the_cache() -> None:
    verify = Verifier()
    auth = _auth(verify)
    bob_rotated = OperatorConfig("bob", _hash("bob-new-token"))

    async def scenario() -> None:
        assert await auth.authenticate("bob-token", "127.0.0.1") == BOB
        auth.set_operators([ALICE])
        assert auth.known("bob-token") is None
        calls = len(verify.calls)
        assert await auth.authenticate("bob-token", "127.0.0.1") is None
        assert len(verify.calls) > calls  # checked against the config, not the cache
        # A changed hash (a rotated token) drops the old token too; the new one works.
        auth.set_operators([ALICE, BOB])
        assert await auth.authenticate("bob-token", "127.0.0.1") == BOB
        auth.set_operators([ALICE, bob_rotated])
        assert await auth.authenticate("bob-token", "127.0.0.1") is None
        assert await auth.authenticate("bob-new-token", "127.0.0.1") == bob_rotated

    _run(scenario)


def test_a_check_running_while_the_config_changes_caches_nothing() -> None:
    verify = Verifier(hold=True)
    auth = _auth(verify)

    async def scenario() -> None:
        checking = asyncio.ensure_future(auth.authenticate("bob-token", "127.0.0.1"))
        await asyncio.sleep(0)
        verify.wait_started()
        auth.set_operators([ALICE])  # bob is removed while his token is being checked
        verify.release.set()
        assert await checking is None
        assert auth.known("bob-token") is None

    _run(scenario)


def test_a_token_added_to_the_config_is_not_refused_from_the_rejected_set() -> None:
    verify = Verifier()
    auth = TokenAuthenticator([ALICE], clock=ManualClock(), verify=verify)

    async def scenario() -> None:
        assert await auth.authenticate("bob-token", "127.0.0.1") is None
        auth.set_operators([ALICE, BOB])
        assert await auth.authenticate("bob-token", "127.0.0.1") == BOB

    _run(scenario)


def test_without_operators_every_token_is_unknown_without_a_check() -> None:
    verify = Verifier()
    auth = TokenAuthenticator([], verify=verify)
    assert _run(lambda: auth.authenticate("anything", "127.0.0.1")) is None
    assert verify.calls == []


def test_a_check_that_raises_is_a_rejection() -> None:
    def broken(token: str, token_hash: str) -> bool:
        raise RuntimeError("boom")

    auth = TokenAuthenticator([ALICE], verify=broken)
    assert _run(lambda: auth.authenticate("alice-token", "127.0.0.1")) is None
    assert auth.in_flight == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_checks_run_in_a_thread_of_lower_cpu_priority_than_the_server() -> None:
    seen: list[int] = []

    def verify(token: str, token_hash: str) -> bool:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return False

    auth = TokenAuthenticator([ALICE], verify=verify)
    assert _run(lambda: auth.authenticate("x", "127.0.0.1")) is None
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, mine + CHECK_NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # ours unchanged
    auth.close()


def test_after_close_unknown_tokens_are_refused_and_known_ones_still_answer() -> None:
    verify = Verifier()
    auth = _auth(verify)

    async def scenario() -> None:
        assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE
        auth.close()
        calls = len(verify.calls)
        with pytest.raises(TokenCheckRefused):
            await auth.authenticate("bob-token", "127.0.0.1")
        assert await auth.authenticate("alice-token", "127.0.0.1") == ALICE
        assert len(verify.calls) == calls and auth.in_flight == 0

    _run(scenario)


@pytest.mark.parametrize(
    ("client", "key"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_client_key_counts_an_ipv6_64_as_one_client(client: str | None, key: str) -> None:
    assert client_key(client) == key


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("max_concurrent", 0, InvalidInputError),
        ("max_waiting", True, InvalidTypeError),
        ("failure_limit", 1.5, InvalidTypeError),
        ("failure_window", 0, InvalidInputError),
        ("failure_window", "nan", InvalidInputError),
    ],
)
def test_bad_options_are_typed_errors_naming_them(
    option: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        TokenAuthenticator([ALICE], **{option: value})
    assert option in str(caught.value)


# ---------------------------------------------------------------------- over HTTP
OPERATOR = "http-operator-token-0123456789"


def _service(clock: ManualClock, **server: Any) -> Any:
    config = parse_config(
        {
            "store": {"url": "memory://"},
            "breakers": [{"type": "manual"}],
            "server": server,
            "operators": [{"name": "alice", "token_hash": hash_key(OPERATOR)}],
        }
    )
    return build_service(MemoryStore(), config, clock=clock, refusal_delay=0)


def test_over_the_limit_the_server_answers_429_with_retry_after_and_counts_it(
    clock: ManualClock,
) -> None:
    service = _service(clock)
    client = TestClient(create_app(service), base_url="http://127.0.0.1")
    limit = service.authenticator.failure_limit
    for i in range(limit):
        r = client.post(
            "/api/halt", json={"reason": "x"}, headers={"Authorization": f"Bearer b{i}"}
        )
        assert r.status_code == 401
    refused = client.post("/api/halt", json={"reason": "x"}, headers={"Authorization": "Bearer z"})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "too many unknown tokens" in refused.json()["error"]
    assert refused.headers["x-frame-options"] == "DENY"
    # The operator's token, not yet known, is refused too (it would need a check)...
    assert service.authenticator.known(OPERATOR) is None
    r = client.post(
        "/api/halt", json={"reason": "x"}, headers={"Authorization": f"Bearer {OPERATOR}"}
    )
    assert r.status_code == 429
    clock.advance(service.authenticator.failure_window)
    r = client.post(
        "/api/halt", json={"reason": "x"}, headers={"Authorization": f"Bearer {OPERATOR}"}
    )
    assert r.status_code == 200, r.text
    # ...and once known, it halts from an address that is over its limit.
    for i in range(limit):
        client.post("/api/halt", json={"reason": "x"}, headers={"Authorization": f"Bearer c{i}"})
    r = client.post(
        "/api/halt", json={"reason": "y"}, headers={"Authorization": f"Bearer {OPERATOR}"}
    )
    assert r.status_code == 200, r.text
    metrics = client.get("/metrics").text
    assert 'haltgate_token_checks_total{outcome="throttled_client"} 2.0' in metrics
    assert 'haltgate_token_checks_total{outcome="verified"} 1.0' in metrics
    assert 'haltgate_token_checks_total{outcome="cached"} 1.0' in metrics


def test_a_read_that_needs_no_token_warms_the_cache_with_the_one_it_carries(
    clock: ManualClock,
) -> None:
    service = _service(clock)
    client = TestClient(create_app(service), base_url="http://127.0.0.1")
    wrong = client.get("/api/status", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 200  # the answer never depends on a token it does not need
    r = client.get("/api/status", headers={"Authorization": f"Bearer {OPERATOR}"})
    assert r.status_code == 200
    deadline = time.monotonic() + 10  # the check runs in its own thread: wait for it
    while service.authenticator.known(OPERATOR) is None:
        assert time.monotonic() < deadline, "the token was never verified"
        time.sleep(0.01)
    assert service.authenticator.known(OPERATOR).name == "alice"


def test_reads_that_need_a_token_are_limited_like_writes(clock: ManualClock) -> None:
    service = _service(clock, read_requires_token=True)
    client = TestClient(create_app(service), base_url="http://127.0.0.1")
    codes = [
        client.get("/api/status", headers={"Authorization": f"Bearer b{i}"}).status_code
        for i in range(service.authenticator.failure_limit + 2)
    ]
    assert codes == [401] * service.authenticator.failure_limit + [429, 429]
