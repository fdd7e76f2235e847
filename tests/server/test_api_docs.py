"""docs/api.md, the served OpenAPI document and the app's routes describe the same API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from haltgate import MemoryStore, hash_key
from haltgate.config import parse_config
from haltgate.server import build_service, create_app

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
VIEWER = "viewer-token-0123456789"
AUTH_OF_SECURITY = {"[]": "none", "[{'bearer': []}, {}]": "read", "[{'bearer': []}]": "operator"}


def _client(**server: Any) -> TestClient:
    config = parse_config(
        {
            "store": {"url": "memory://"},
            "server": server,
            "operators": [{"name": "victor", "token_hash": hash_key(VIEWER), "role": "viewer"}],
        }
    )
    return TestClient(create_app(build_service(MemoryStore(), config)), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def client() -> TestClient:
    return _client()


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def _sections() -> dict[tuple[str, str], str]:
    """``{(method, path): text}`` of every ``### METHOD /path`` section of docs/api.md."""
    text = API_MD.read_text(encoding="utf-8")
    parts = re.split(r"^### (GET|POST|PUT|PATCH|DELETE) (/\S*)[ \t]*$", text, flags=re.M)
    return {(parts[i], parts[i + 1]): parts[i + 2] for i in range(1, len(parts), 3)}


def _table_keys(section: str, header: str) -> set[str]:
    """The first column of the markdown table whose first header cell is ``header``."""
    match = re.search(rf"^\| {header} \|.*\n\|[- |]+\|\n((?:\|.*\n?)*)", section, re.M)
    if match is None:
        return set()
    return {row.split("|")[1].strip().strip("`") for row in match.group(1).splitlines()}


def test_openapi_document_lists_exactly_the_apps_routes(
    client: TestClient, document: dict[str, Any]
) -> None:
    app_routes = {
        (method, route.path)
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert len(app_routes) == len(client.app.routes)  # type: ignore[attr-defined]
    assert set(_operations(document)) == app_routes
    assert document["openapi"].startswith("3.")
    for (method, path), operation in _operations(document).items():
        assert operation["operationId"] and operation["summary"], (method, path)
        assert "200" in operation["responses"], (method, path)
        assert str(operation["security"]) in AUTH_OF_SECURITY, (method, path)


def test_every_route_of_the_openapi_document_is_documented_in_docs_api_md(
    document: dict[str, Any],
) -> None:
    sections = _sections()
    operations = _operations(document)
    assert set(sections) == set(operations)
    for key, operation in operations.items():
        section = sections[key]
        auth = AUTH_OF_SECURITY[str(operation["security"])]
        assert f"Auth: {auth}" in section, key
        codes = {int(code) for code in operation["responses"]}
        assert {int(code) for code in _table_keys(section, "Status")} == codes, key
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        schema = body.get("schema", {})
        assert _table_keys(section, "Body field") == set(schema.get("properties", {})), key
        required = {
            row.split("|")[1].strip().strip("`")
            for row in section.splitlines()
            if row.startswith("| `") and row.split("|")[3].strip() == "yes"
        }
        assert required >= set(schema.get("required", [])), key
        params = {p["name"] for p in operation.get("parameters", [])}
        assert _table_keys(section, "Query") == params, key
    # The summary table at the top lists the same routes with the same auth.
    summary = {
        (row.split("|")[1].strip(), row.split("|")[2].strip().strip("`")): row.split("|")[3].strip()
        for row in API_MD.read_text(encoding="utf-8").splitlines()
        if re.match(r"^\| (GET|POST) \| `/", row)
    }
    assert summary == {key: AUTH_OF_SECURITY[str(op["security"])] for key, op in operations.items()}


def test_openapi_document_needs_the_same_token_as_status() -> None:
    client = _client(read_requires_token=True)
    for path in ("/api/status", "/api/openapi.json"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers={"Authorization": f"Bearer {VIEWER}"}).status_code == 200
    assert client.get("/api/openapi.json", headers={"Host": "evil.example"}).status_code == 400


def test_documented_statuses_for_other_paths_and_methods_hold(client: TestClient) -> None:
    assert client.get("/api/nothing-here").status_code == 404
    assert client.get("/api/halt").status_code == 405
    assert client.post("/api/openapi.json").status_code == 405
