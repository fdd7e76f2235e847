"""The admin API: tokens, roles, 401/403, halt/reset through HTTP, metrics."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from haltgate import (
    CircuitBreakerManager,
    DrawdownCircuitBreaker,
    ManualClock,
    MemoryStore,
    hash_key,
)
from haltgate.config import parse_config
from haltgate.server import build_service, create_app

OPERATOR = "op-token-0123456789"
VIEWER = "viewer-token-0123456789"
KEY = "kill-key-0123456789"


def _config(**server: Any) -> Any:
    return parse_config(
        {
            "store": {"url": "memory://"},
            "breakers": [{"type": "drawdown", "max_drawdown_pct": "0.10"}],
            "server": server,
            "operators": [
                {"name": "alice", "token_hash": hash_key(OPERATOR), "role": "operator"},
                {"name": "victor", "token_hash": hash_key(VIEWER), "role": "viewer"},
            ],
            "kill_switch": {"key_hash": hash_key(KEY), "breakers": ["manual"]},
        }
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def client(store: MemoryStore) -> TestClient:
    service = build_service(store, _config())
    return TestClient(create_app(service), base_url="http://127.0.0.1")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_status_is_readable_on_loopback_and_shows_every_breaker(
    client: TestClient, store: MemoryStore
) -> None:
    # Another process's breaker, only in the store:
    other = CircuitBreakerManager(
        breakers=[DrawdownCircuitBreaker("0.05", name="fund-b")], store=store, clock=ManualClock()
    )
    other.can_trade(current_portfolio_value=100)
    other.can_trade(current_portfolio_value=90)
    r = client.get("/api/status")
    assert r.status_code == 200
    data = r.json()
    assert data["trading_allowed"] is False
    states = {b["name"]: b["state"] for b in data["breakers"]}
    assert states == {"drawdown": "NORMAL", "fund-b": "TRIPPED"}
    assert data["blocking"] and data["blocking"][0].startswith("fund-b: Drawdown")
    page = client.get("/")
    assert page.status_code == 200 and "TRADING" in page.text


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer wrong-token", "Basic abc"])
def test_mutations_without_a_valid_token_are_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = client.post("/api/halt", json={"reason": "x"}, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/api/reset", json={"breaker": "manual"}, headers=headers)
    assert r.status_code == 401
    assert client.get("/api/status").json()["trading_allowed"] is True


def test_viewer_token_is_403_for_halt(client: TestClient) -> None:
    r = client.post("/api/halt", json={"reason": "x"}, headers=_auth(VIEWER))
    assert r.status_code == 403
    assert "victor" in r.json()["error"]


def test_operator_halts_and_identity_comes_from_the_token(
    client: TestClient, store: MemoryStore
) -> None:
    r = client.post(
        "/api/halt",
        json={"reason": "exchange outage", "operator": "mallory"},
        headers=_auth(OPERATOR),
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["trading_allowed"] is False and data["operator"] == "alice"
    snapshot = store.load_snapshot("manual")
    assert snapshot is not None and snapshot["state"] == "MANUALLY_HALTED"
    assert snapshot["trip"]["operator"] == "alice"
    halted = [e for e in store.iter_audit() if e.event == "breaker_halted"]
    assert halted[-1].operator == "alice"


def test_keyed_kill_switch_reset_needs_the_key(client: TestClient, store: MemoryStore) -> None:
    client.post("/api/halt", json={"reason": "stop"}, headers=_auth(OPERATOR))
    r = client.post("/api/reset", json={"breaker": "manual"}, headers=_auth(OPERATOR))
    assert r.status_code == 403 and "key" in r.json()["error"]
    r = client.post(
        "/api/reset", json={"breaker": "manual", "key": "nope"}, headers=_auth(OPERATOR)
    )
    assert r.status_code == 403
    assert store.load_snapshot("manual")["state"] == "MANUALLY_HALTED"  # type: ignore[index]
    r = client.post("/api/reset", json={"breaker": "manual", "key": KEY}, headers=_auth(OPERATOR))
    assert r.status_code == 200, r.text
    assert r.json()["trading_allowed"] is True


def test_halt_and_reset_a_named_breaker_and_bad_requests(client: TestClient) -> None:
    auth = _auth(OPERATOR)
    assert (
        client.post("/api/halt", json={"reason": "x", "breaker": "nope"}, headers=auth).status_code
        == 404
    )
    assert client.post("/api/halt", json={"reason": ""}, headers=auth).status_code == 400
    assert client.post("/api/halt", content=b"[1]", headers=auth).status_code == 400
    r = client.post("/api/halt", json={"reason": "check", "breaker": "drawdown"}, headers=auth)
    assert r.status_code == 200
    r = client.post("/api/reset", json={"breaker": "drawdown", "reason": "ok"}, headers=auth)
    assert r.status_code == 200 and r.json()["trading_allowed"] is True
    events = client.get("/api/events?n=5").json()["events"]
    assert [e["event"] for e in events][-2:] == ["breaker_halted", "breaker_reset"]


def test_reads_need_a_token_when_configured(store: MemoryStore) -> None:
    service = build_service(store, _config(read_requires_token=True))
    client = TestClient(create_app(service), base_url="http://127.0.0.1")
    assert client.get("/api/status").status_code == 401
    assert client.get("/api/events").status_code == 401
    assert client.get("/metrics").status_code == 401
    assert client.get("/api/status", headers=_auth(VIEWER)).status_code == 200


def test_metrics_endpoint(client: TestClient) -> None:
    client.post("/api/halt", json={"reason": "x"}, headers=_auth(OPERATOR))
    text = client.get("/metrics").text
    assert "haltgate_trading_allowed 0.0" in text
    assert (
        'haltgate_breaker_state{breaker="manual",state="MANUALLY_HALTED",type="manual"} 1.0' in text
    )
    assert 'haltgate_breaker_trips_total{breaker="manual",kind="halted"} 1.0' in text
