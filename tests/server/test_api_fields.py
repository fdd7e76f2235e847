"""The admin API names a missing field as missing, not as the value ``None``."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from haltgate import MemoryStore, hash_key
from haltgate.config import parse_config
from haltgate.server import build_service, create_app

TOKEN = "op-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client() -> TestClient:
    config = parse_config(
        {
            "store": {"url": "memory://"},
            "breakers": [{"type": "manual"}],
            "operators": [{"name": "alice", "token_hash": hash_key(TOKEN)}],
        }
    )
    return TestClient(create_app(build_service(MemoryStore(), config)), base_url="http://127.0.0.1")


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("/api/halt", {}, "reason is required"),
        ("/api/halt", {"reason": None, "breaker": "manual"}, "reason is required"),
        ("/api/reset", {"reason": "ok"}, "breaker is required"),
    ],
)
def test_a_missing_field_is_reported_as_required(
    client: TestClient, route: str, body: dict[str, object], message: str
) -> None:
    response = client.post(route, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == message
    assert client.get("/api/status").json()["trading_allowed"] is True  # nothing changed


def test_a_present_but_bad_field_still_names_its_value(client: TestClient) -> None:
    response = client.post("/api/halt", json={"reason": "  "}, headers=AUTH)
    assert response.status_code == 400 and "reason" in response.json()["error"]
    response = client.post("/api/reset", json={"breaker": 7}, headers=AUTH)
    assert response.status_code == 400 and "breaker=7" in response.json()["error"]
