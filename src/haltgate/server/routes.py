"""The one table of the admin service's routes.

The Starlette app (:func:`haltgate.server.create_app`) is built from :data:`ROUTES`, and
``GET /api/openapi.json`` serves :func:`openapi_document`, built from the same table;
``docs/api.md`` describes the same routes (a test holds the three together). Standard
library only: importing it needs no extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .auth import FAILURE_LIMIT, FAILURE_WINDOW, MAX_CONCURRENT, MAX_WAITING

__all__ = ["ROUTES", "Auth", "BodyField", "RouteSpec", "openapi_document"]

Auth = Literal["none", "read", "operator"]
"""Who may call a route: anyone; anyone unless reads need a token (then any known token);
or a token of an operator whose role is ``operator``."""


@dataclass(frozen=True)
class BodyField:
    """One field of a JSON request body, or one query parameter."""

    name: str
    type: Literal["string", "integer"]
    required: bool
    description: str


@dataclass(frozen=True)
class RouteSpec:
    """One route: what the server answers and what ``docs/api.md`` documents."""

    method: Literal["GET", "POST"]
    path: str
    operation: str
    """The operationId, also the name of the handler in :func:`create_app`."""
    summary: str
    auth: Auth
    responses: dict[int, str]
    media_type: str = "application/json"
    """The media type of the 200 response."""
    query: tuple[BodyField, ...] = ()
    body: tuple[BodyField, ...] = ()


_HOST = "the `Host` header is not a name of this server (DNS rebinding)"
_READ_401 = "no or unknown bearer token, when reads need a token (`WWW-Authenticate: Bearer`)"
_WRITE_401 = "no or unknown bearer token (`WWW-Authenticate: Bearer`)"
_STORE = "the store is unreachable"
_WRITE_429 = (
    f"an unknown token was not checked: this client sent {FAILURE_LIMIT} tokens that did not "
    f"verify in the last {FAILURE_WINDOW:g} s, or {MAX_CONCURRENT + MAX_WAITING} token checks "
    "are already running or queued (`Retry-After` says when to try again); a token the "
    "server has verified before is never refused so"
)
_READ_429 = f"reads need a token, and {_WRITE_429}"
_WRITE_400 = (
    f"{_HOST}; the body is not a JSON object (malformed or deeply nested JSON); "
    "`Content-Length` is not a number; a required field is missing or a value is invalid"
)
_WRITE_413 = "the body is larger than 64 KiB (refused before it is read)"
_WRITE_503 = f"{_STORE} or did not record the change: nothing changed"

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        "GET",
        "/",
        "page",
        "The status page (HTML): every breaker at a glance, with Halt and Reset buttons.",
        "none",
        {200: "the page; it holds no data and reads `/api/status` itself", 400: _HOST},
        media_type="text/html",
    ),
    RouteSpec(
        "GET",
        "/api/status",
        "status",
        "Every breaker's state and whether trading is allowed.",
        "read",
        {
            200: "`trading_allowed`, `blocking`, `breakers` (name, type, state, reason, since, "
            "operator), `keyed`, `refusals` (by deny code: the embedding process's, or from "
            "`haltgate serve` the sum over the live processes), `time`",
            400: _HOST,
            401: _READ_401,
            429: _READ_429,
            503: _STORE,
        },
    ),
    RouteSpec(
        "GET",
        "/api/events",
        "events",
        "The latest entries of the audit log, newest last.",
        "read",
        {
            200: "`events`: audit entries (seq, time, operator, event, breaker, payload, "
            "prev_hash, hash)",
            400: f"{_HOST}; `n` is not a whole number",
            401: _READ_401,
            429: _READ_429,
            503: _STORE,
        },
        query=(BodyField("n", "integer", False, "how many entries (default 50, kept in 1..1000)"),),
    ),
    RouteSpec(
        "POST",
        "/api/halt",
        "halt",
        "Halt one breaker, or everything (the kill switch) when no breaker is named.",
        "operator",
        {
            200: "`ok`, `breaker` (the one halted), `operator` (from the token), and the "
            "fields of `/api/status`",
            400: _WRITE_400,
            401: _WRITE_401,
            403: "the token's role is not `operator`",
            429: _WRITE_429,
            404: "no breaker has that name",
            413: _WRITE_413,
            503: _WRITE_503,
        },
        body=(
            BodyField("reason", "string", True, "why; recorded in the audit log"),
            BodyField("breaker", "string", False, "the breaker to halt; left out: the kill switch"),
        ),
    ),
    RouteSpec(
        "POST",
        "/api/reset",
        "reset",
        "Reset one breaker (a breaker already NORMAL is left as it is).",
        "operator",
        {
            200: "`ok`, `breaker`, `operator` (from the token), and the fields of `/api/status`",
            400: _WRITE_400,
            401: _WRITE_401,
            403: "the token's role is not `operator`, or a keyed breaker's `key` is missing "
            "or wrong",
            429: _WRITE_429,
            404: "no breaker has that name",
            413: _WRITE_413,
            503: _WRITE_503,
        },
        body=(
            BodyField("breaker", "string", True, "the breaker to reset"),
            BodyField("reason", "string", False, "why; recorded in the audit log"),
            BodyField("key", "string", False, "the kill-switch key of a keyed breaker"),
        ),
    ),
    RouteSpec(
        "GET",
        "/api/openapi.json",
        "openapi",
        "This API as an OpenAPI 3.1 document.",
        "read",
        {200: "the document", 400: _HOST, 401: _READ_401, 429: _READ_429},
    ),
    RouteSpec(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics in the text format (extra `metrics`).",
        "read",
        {
            200: "the metrics",
            400: _HOST,
            401: _READ_401,
            404: "metrics are not enabled (the `metrics` extra is not installed)",
            429: _READ_429,
            503: _STORE,
        },
        media_type="text/plain",
    ),
)
"""Every route of the admin service, in the order ``docs/api.md`` documents them."""


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ok", "error"],
    "properties": {"ok": {"const": False}, "error": {"type": "string"}},
}


def _operation(route: RouteSpec) -> dict[str, Any]:
    auth_note = {
        "none": "No token needed.",
        "read": "A bearer token (any role) only when reads need a token "
        "(`server.read_requires_token`, the default on a non-loopback bind).",
        "operator": "A bearer token of an operator with the role `operator`; the operator "
        "recorded in the audit log comes from the token, never from the body.",
    }[route.auth]
    operation: dict[str, Any] = {
        "operationId": route.operation,
        "summary": route.summary,
        "description": auth_note,
        "security": {
            "none": [],
            "read": [{"bearer": []}, {}],
            "operator": [{"bearer": []}],
        }[route.auth],
        "responses": {},
    }
    if route.query:
        operation["parameters"] = [
            {
                "name": field.name,
                "in": "query",
                "required": field.required,
                "description": field.description,
                "schema": {"type": field.type},
            }
            for field in route.query
        ]
    if route.body:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": [field.name for field in route.body if field.required],
                        "properties": {
                            field.name: {"type": field.type, "description": field.description}
                            for field in route.body
                        },
                    }
                }
            },
        }
    for status, description in route.responses.items():
        if status == 200:
            content = {route.media_type: {"schema": {"type": "string"}}}
            if route.media_type == "application/json":
                content = {route.media_type: {"schema": {"type": "object"}}}
        else:
            content = {"application/json": {"schema": _ERROR_SCHEMA}}
        operation["responses"][str(status)] = {"description": description, "content": content}
    return operation


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ROUTES` (what ``GET /api/openapi.json`` serves)."""
    from .. import __version__

    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "haltgate admin API",
            "version": __version__,
            "description": "Status, audit events, halt and reset of haltgate's circuit "
            "breakers. Requests whose Host is not a name of the server get 400; bodies "
            "over 64 KiB get 413. See docs/api.md.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
