"""Serve hardening (SPEC §8): Host allow-list, body limit, nested JSON, security headers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from haltgate import ConfigError, MemoryStore, hash_key
from haltgate.config import parse_config
from haltgate.server import build_service, create_app

MAX_BODY_BYTES = 64 * 1024  # SPEC §8

OPERATOR = "op-token-0123456789"


def _config(**server: Any) -> Any:
    return parse_config(
        {
            "store": {"url": "memory://"},
            "breakers": [{"type": "manual"}],
            "server": server,
            "operators": [{"name": "alice", "token_hash": hash_key(OPERATOR)}],
        }
    )


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR}"}


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def _client(store: MemoryStore, host: str = "127.0.0.1", **server: Any) -> TestClient:
    return TestClient(
        create_app(build_service(store, _config(**server))), base_url=f"http://{host}"
    )


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8787", "127.0.0.1.attacker.example", "0.0.0.0"]
)
def test_a_foreign_host_header_gets_nothing_and_changes_nothing(
    store: MemoryStore, host: str
) -> None:
    client = _client(store)
    r = client.get("/api/status", headers={"Host": host})
    assert r.status_code == 400
    assert "breakers" not in r.text and host in r.json()["error"]
    assert client.get("/api/events", headers={"Host": host}).status_code == 400
    assert client.get("/", headers={"Host": host}).status_code == 400
    r = client.post("/api/halt", json={"reason": "x"}, headers={**_auth(), "Host": host})
    assert r.status_code == 400
    assert store.load_snapshot("manual") is None
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8787", "localhost:8787", "LOCALHOST", "[::1]:8787"]
)
def test_local_names_are_served(store: MemoryStore, host: str) -> None:
    r = _client(store).get("/api/status", headers={"Host": host})
    assert r.status_code == 200 and r.json()["breakers"]


def test_a_configured_name_and_the_bind_address_are_served(store: MemoryStore) -> None:
    client = _client(store, allowed_hosts=["Ops.Example.com"])
    assert client.get("/api/status", headers={"Host": "ops.example.com:8787"}).status_code == 200
    assert client.get("/api/status", headers={"Host": "other.example.com"}).status_code == 400
    service = build_service(store, _config(), bind="10.1.2.3")
    bound = TestClient(create_app(service), base_url="http://10.1.2.3")
    assert bound.get("/api/status").status_code == 200


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("ops.example.com", "server.allowed_hosts"),
        (["ops.example.com:80"], "server.allowed_hosts[0]"),
        (["*.example.com"], "server.allowed_hosts[0]"),
        ([""], "server.allowed_hosts[0]"),
        ([3], "server.allowed_hosts[0]"),
    ],
)
def test_bad_allowed_hosts_are_config_errors_naming_the_field(value: Any, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(allowed_hosts=value)
    assert caught.value.path == path


def test_pages_and_api_responses_carry_the_security_headers(store: MemoryStore) -> None:
    client = _client(store)
    for response in (
        client.get("/"),
        client.get("/api/status"),
        client.post("/api/halt", json={"reason": "x"}),  # 401
        client.get("/nowhere"),  # 404
    ):
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_100_mb_authenticated_body_is_413_and_changes_nothing(store: MemoryStore) -> None:
    body = b'{"reason": "' + b"x" * (100 * 1024 * 1024) + b'"}'
    r = _client(store).post("/api/halt", content=body, headers=_auth())
    assert r.status_code == 413
    assert store.load_snapshot("manual") is None


def _asgi_post(
    store: MemoryStore, chunks: Any, headers: list[tuple[bytes, bytes]]
) -> tuple[int, int]:
    """POST /api/halt straight to the ASGI app; returns (status, body bytes the app pulled)."""
    app = create_app(build_service(store, _config()))
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/halt",
        "raw_path": b"/api/halt",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8787"),
            (b"authorization", f"Bearer {OPERATOR}".encode()),
            (b"content-type", b"application/json"),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8787),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], pulled


def _endless(size: int = 100 * 1024 * 1024, chunk: int = 16 * 1024) -> Any:
    return iter([b"[" + b" " * (chunk - 1)] + [b" " * chunk] * (size // chunk))


def test_a_declared_100_mb_body_is_refused_before_a_byte_is_read(store: MemoryStore) -> None:
    status, pulled = _asgi_post(store, _endless(), [(b"content-length", b"104857600")])
    assert status == 413 and pulled == 0
    assert store.load_snapshot("manual") is None


def test_a_chunked_body_is_cut_off_at_the_limit(store: MemoryStore) -> None:
    status, pulled = _asgi_post(store, _endless(), [(b"transfer-encoding", b"chunked")])
    assert status == 413
    assert pulled <= MAX_BODY_BYTES + 16 * 1024
    assert store.load_snapshot("manual") is None


@pytest.mark.parametrize("body", [b"[" * 60_000, b'{"reason": ' + b"[" * 60_000, b"\xff\xfe", b"{"])
def test_deeply_nested_or_malformed_json_is_400(store: MemoryStore, body: bytes) -> None:
    client = TestClient(
        create_app(build_service(store, _config())),
        base_url="http://127.0.0.1",
        raise_server_exceptions=False,
    )
    r = client.post("/api/halt", content=body, headers=_auth())
    assert r.status_code == 400, r.text
    assert store.load_snapshot("manual") is None


def test_100000_brackets_are_refused_never_500(store: MemoryStore) -> None:
    client = TestClient(
        create_app(build_service(store, _config())),
        base_url="http://127.0.0.1",
        raise_server_exceptions=False,
    )
    r = client.post("/api/halt", content=b"[" * 100_000, headers=_auth())
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        (b'{"reason": "outage \\udcff"}', "reason"),
        (b'{"reason": "x", "breaker": "\\udcff"}', "name"),
    ],
)
def test_a_lone_surrogate_over_http_is_400_and_changes_nothing(
    store: MemoryStore, body: bytes, parameter: str
) -> None:
    client = TestClient(
        create_app(build_service(store, _config())),
        base_url="http://127.0.0.1",
        raise_server_exceptions=False,
    )
    r = client.post("/api/halt", content=body, headers=_auth())
    assert r.status_code == 400, r.text
    assert parameter in r.json()["error"] and "UTF-8" in r.json()["error"]
    assert store.load_snapshot("manual") is None


@pytest.mark.parametrize("key", ["\\udcff", 5])
def test_a_bad_kill_switch_key_over_http_is_400(store: MemoryStore, key: object) -> None:
    client = TestClient(
        create_app(build_service(store, _config())),
        base_url="http://127.0.0.1",
        raise_server_exceptions=False,
    )
    assert client.post("/api/halt", json={"reason": "drill"}, headers=_auth()).status_code == 200
    body = '{"breaker": "manual", "key": %s}' % (f'"{key}"' if isinstance(key, str) else key)
    r = client.post("/api/reset", content=body.encode(), headers=_auth())
    assert r.status_code == 400, r.text
    assert "key" in r.json()["error"]
    snapshot = store.load_snapshot("manual")
    assert snapshot is not None and snapshot["state"] == "MANUALLY_HALTED"
