"""The execution throttle's trip on the admin server, with no special casing there: the
status API, the page and /metrics show it like any breaker; an operator's token resets it."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("prometheus_client")

from starlette.testclient import TestClient

from haltgate import CircuitBreakerManager, ManualClock, MemoryStore, hash_key
from haltgate.checks import ExecutionThrottle
from haltgate.config import parse_config
from haltgate.server import build_service, create_app

from .support import START, buy

TOKEN = "op-token-0123456789"


def test_the_server_shows_and_resets_a_tripped_execution_throttle() -> None:
    store = MemoryStore()
    trading = CircuitBreakerManager(store=store, clock=ManualClock(START))
    trading.add_check(ExecutionThrottle(1, 60))
    trading.admit_order(order=buy(1))
    assert trading.admit_order(order=buy(1))
    config = parse_config(
        {
            "store": {"url": "memory://"},
            "operators": [{"name": "alice", "token_hash": hash_key(TOKEN), "role": "operator"}],
        }
    )
    client = TestClient(create_app(build_service(store, config)), base_url="http://127.0.0.1")
    data = client.get("/api/status").json()
    assert data["trading_allowed"] is False
    assert {b["name"]: b["state"] for b in data["breakers"]}["execution_throttle"] == "TRIPPED"
    assert "execution_throttle: 2 > 1 orders for SPY BUY in 60s" in data["blocking"]
    # The page renders the breakers of /api/status (its script), so it lists this one too.
    assert client.get("/").status_code == 200
    metrics = client.get("/metrics").text
    assert (
        'haltgate_breaker_state{breaker="execution_throttle",state="TRIPPED",type="custom"} 1.0'
        in metrics
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/api/reset", json={"breaker": "execution_throttle"}, headers=auth)
    assert r.status_code == 200, r.text
    after = client.get("/api/status").json()
    assert {b["name"]: b["state"] for b in after["breakers"]}["execution_throttle"] == "NORMAL"
    snapshot = store.load_snapshot("execution_throttle")
    assert snapshot is not None and snapshot["state"] == "NORMAL"
    assert snapshot.get("by") == "alice"
