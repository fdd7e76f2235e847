"""Reads of the admin API while the store is unreachable: 503 with a reason, never 500."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from haltgate import MemoryStore
from haltgate.errors import StoreUnavailableError
from haltgate.server import build_service, create_app


class UnreachableStore(MemoryStore):
    """A memory store that can be switched to failing every read."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("redis://:secret@db.internal:6379/0", "connection refused")

    def load_all_snapshots(self) -> Any:
        self._check()
        return super().load_all_snapshots()

    def load_snapshot(self, name: str) -> Any:
        self._check()
        return super().load_snapshot(name)

    def tail_audit(self, n: int) -> Any:
        self._check()
        return super().tail_audit(n)


@pytest.mark.parametrize("path", ["/api/status", "/api/events", "/metrics"])
def test_reads_answer_503_naming_the_store_when_it_is_unreachable(path: str) -> None:
    store = UnreachableStore()
    client = TestClient(
        create_app(build_service(store)),
        base_url="http://127.0.0.1",
        raise_server_exceptions=False,
    )
    assert client.get(path).status_code == 200
    store.down = True
    response = client.get(path)
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert "store unavailable" in body["error"]
    assert "secret" not in body["error"]
