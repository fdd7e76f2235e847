"""The admin service (extra ``server``): JSON API, status page and ``/metrics``.

Routes (the one table is :data:`haltgate.server.routes.ROUTES`, documented in
``docs/api.md`` and served as OpenAPI at ``GET /api/openapi.json``):

- ``GET /`` — the status page.
- ``GET /api/status`` — every breaker's state and whether trading is allowed.
- ``GET /api/events?n=50`` — the latest audit-log entries.
- ``POST /api/halt`` ``{"reason": ..., "breaker": optional}`` — no breaker: halt everything.
- ``POST /api/reset`` ``{"breaker": ..., "reason": optional, "key": optional}``.
- ``GET /api/openapi.json`` — this API as an OpenAPI 3.1 document.
- ``GET /metrics`` — Prometheus text format (extra ``metrics``).

Every mutating request needs ``Authorization: Bearer <token>`` of an operator whose role is
``operator``; the operator's name recorded in the audit log comes from the token, never from
the request body. Reads need a token (any role) when ``read_requires_token`` is on (the
default for a non-loopback bind). 401 = no or unknown token; 403 = known token without the
permission, or a keyed kill switch reset without the right key; 429 = an unknown token not
checked (its client is over the failure limit, or too many checks are queued), with
``Retry-After``. Tokens are checked by :class:`haltgate.server.auth.TokenAuthenticator`:
a known one without scrypt, unknown ones with bounded concurrency, off the event loop.

Hardening, on every route: a request whose ``Host`` is not the bind address, ``localhost``,
``127.0.0.1``, ``[::1]`` or a name of ``server.allowed_hosts`` is refused with 400 (DNS
rebinding); a body over 64 KiB gets 413 without being read; malformed or deeply nested
JSON gets 400; every response carries ``Content-Security-Policy``, ``X-Frame-Options`` and
``X-Content-Type-Options``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import AuthorizationError, InvalidInputError, StoreUnavailableError
from ..operator import StoredBreaker, check_kill_switch_key, kill_switch_settings, status_rows
from ..redact import redact_url
from ..values import require_utf8, to_seconds
from .auth import Outcome, TokenAuthenticator, TokenCheckRefused
from .page import CONTENT_SECURITY_POLICY, STATUS_PAGE
from .routes import ROUTES, openapi_document

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from ..clock import Clock
    from ..config import HaltgateConfig, OperatorConfig
    from ..manager import CircuitBreakerManager
    from ..store import Store

__all__ = ["MAX_BODY_BYTES", "REFUSAL_DELAY", "AdminService", "bearer_token", "create_app"]

logger = logging.getLogger("haltgate.server")

MAX_BODY_BYTES = 64 * 1024
"""The largest request body the server reads; a larger one gets 413."""

REFUSAL_DELAY = 1.0
"""Seconds the server waits before answering an unknown token (401) or an unchecked one
(429): a flood of bad tokens then cannot keep the event loop busy (see ``docs/runbook.md``)."""

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def allowed_host_names(bind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names (bare, lower case) a server bound to ``bind`` answers to."""
    names = set(_LOCAL_HOSTS) | {name.lower() for name in extra}
    bare = bind.strip().lower().removeprefix("[").removesuffix("]")
    try:
        # 0.0.0.0 and :: are no one's address: a browser sends them only when a page of
        # another origin aims at this machine, so they never become an allowed Host.
        unspecified = ipaddress.ip_address(bare).is_unspecified
    except ValueError:
        unspecified = False
    if bare and not unspecified:
        names.add(bare)
    return frozenset(names)


def host_of(header: str) -> str:
    """The host of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), bare and lower
    case; an empty string when the header is malformed."""
    value = header.strip().lower()
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            return ""
        port = rest[1:]
    elif value.count(":") > 1:
        return ""  # an IPv6 address without brackets is not a Host header
    else:
        host, _, port = value.partition(":")
    if port and not port.isdigit():
        return ""
    return host.removesuffix(".")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class AdminService:
    """The state and rules behind the HTTP routes (usable without HTTP in tests)."""

    def __init__(
        self,
        manager: CircuitBreakerManager,
        *,
        config: HaltgateConfig | None = None,
        registry: Any = None,
        bind: str | None = None,
        clock: Clock | None = None,
        authenticator: TokenAuthenticator | None = None,
        on_token_check: Callable[[Outcome], None] | None = None,
        refusal_delay: float = REFUSAL_DELAY,
        refusals: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.manager = manager
        # Where the refusal counts come from: the service's own manager (a service embedded
        # in the trading process), or the live processes' registry entries (`haltgate serve`).
        self.refusal_counts: Callable[[], dict[str, int]] = (
            refusals if refusals is not None else manager.get_refusal_counts
        )
        self.store: Store = manager.store
        self.config = config
        self.operators = config.operators if config is not None else ()
        self.reads_need_token = config.server.reads_need_token if config is not None else False
        self.registry = registry
        server = config.server if config is not None else None
        self.allowed_hosts = allowed_host_names(
            bind if bind is not None else (server.bind if server is not None else "127.0.0.1"),
            server.allowed_hosts if server is not None else (),
        )
        self.refusal_delay = to_seconds(refusal_delay, "refusal_delay", allow_zero=True)
        # The one place tokens are checked (``clock`` runs its per-client failure window).
        self.authenticator = (
            authenticator
            if authenticator is not None
            else TokenAuthenticator(self.operators, clock=clock, on_outcome=on_token_check)
        )
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ auth
    async def identify(self, header: str | None, client: str | None) -> OperatorConfig:
        """The operator of a ``Bearer`` header sent from ``client`` (its address), or a 401
        (no or unknown token) or 429 (not checked: see :class:`TokenAuthenticator`)."""
        token = bearer_token(header)
        if token is None:
            raise _HttpError(401, "missing bearer token")
        try:
            found = await self.authenticator.authenticate(token, client)
        except TokenCheckRefused as exc:
            await self._tarpit()
            raise _HttpError(429, str(exc), {"Retry-After": str(exc.retry_after)}) from None
        if found is None:
            await self._tarpit()
            raise _HttpError(401, "unknown token")
        return found

    async def _tarpit(self) -> None:
        # A bad token is answered after refusal_delay: each flood connection then costs
        # the event loop one request per delay instead of as many as it can send (the
        # refusal itself was decided at once and ran no scrypt; this coroutine holds no
        # slot, no thread and no lock while it waits).
        if self.refusal_delay > 0:
            await asyncio.sleep(self.refusal_delay)

    async def require_operator(self, header: str | None, client: str | None) -> OperatorConfig:
        """An operator allowed to halt and reset, or a 401/403/429."""
        who = await self.identify(header, client)
        if who.role != "operator":
            raise _HttpError(403, f"{who.name} has the role {who.role!r}: cannot halt or reset")
        return who

    # ------------------------------------------------------------------ state
    def refresh(self) -> None:
        """Add the breakers other processes wrote to the store that this server does not
        know yet (restored from the store as they are added). Changes to known breakers
        reach this server only through the store's one adoption path (its background
        watcher), which applies a remote snapshot only when it is newer and safe."""
        with self._lock:
            snapshots = self.store.load_all_snapshots()
            for name, snapshot in sorted(snapshots.items()):
                if name and self.manager.get_breaker(name) is None:
                    stored = StoredBreaker(name, str(snapshot.get("type", "custom")))
                    self.manager.add_breaker(stored)

    def status(self) -> dict[str, Any]:
        """The JSON of ``GET /api/status``."""
        self.refresh()
        rows = status_rows(self.manager)
        blocking = self.manager.get_blocking_reasons()
        keyed = kill_switch_settings(self.store, self.config)
        return {
            "trading_allowed": not blocking,
            "blocking": blocking,
            "breakers": [
                {**row, "since": row["since"].isoformat() if row["since"] else None} for row in rows
            ],
            "keyed": sorted(keyed),
            # Orders refused by the pre-trade checks, by deny code: the trading process's
            # own when the service is embedded in it; for `haltgate serve`, summed over the
            # live processes' registry entries (each since it started).
            "refusals": self.refusal_counts(),
            "time": datetime.now(UTC).isoformat(),
        }

    def events(self, n: int) -> list[dict[str, Any]]:
        """The latest ``n`` audit entries, newest last."""
        return [entry.to_dict() for entry in self.store.tail_audit(max(1, min(n, 1000)))]

    def halt(self, who: OperatorConfig, body: dict[str, Any]) -> dict[str, Any]:
        """Halt one breaker, or everything when no breaker is named."""
        reason = _required(body, "reason")
        name = body.get("breaker") or None
        self.refresh()
        if name is None:
            breaker = self.manager.halt_all(reason=reason, operator=who.name)
        else:
            found = self.manager.get_breaker(str(name))
            if found is None:
                raise _HttpError(404, f"no breaker named {name!r}")
            found.trigger_halt(reason=reason, operator=who.name)
            breaker = found
        self._check_durable(breaker.name, "MANUALLY_HALTED")
        return {"ok": True, "breaker": breaker.name, "operator": who.name, **self.status()}

    def reset(self, who: OperatorConfig, body: dict[str, Any]) -> dict[str, Any]:
        """Reset one breaker (a keyed kill switch needs ``key``)."""
        name = _required(body, "breaker")
        if not isinstance(name, str) or not name.strip():
            raise _HttpError(400, f"breaker={name!r}: must be the name of a breaker")
        self.refresh()
        breaker = self.manager.get_breaker(name)
        if breaker is None:
            raise _HttpError(404, f"no breaker named {name!r}")
        key = body.get("key") or None
        if key is not None:
            if not isinstance(key, str):
                raise _HttpError(400, f"key={key!r}: must be a string")
            require_utf8(key, "key")
        if breaker.state.value != "NORMAL":
            try:
                check_kill_switch_key(self.store, name, key, who.name, self.config)
            except AuthorizationError as exc:
                raise _HttpError(403, str(exc)) from None
            breaker.reset(operator=who.name, reason=body.get("reason") or None)
            self._check_durable(name, "NORMAL")
        return {"ok": True, "breaker": name, "operator": who.name, **self.status()}

    def _check_durable(self, name: str, state: str) -> None:
        snapshot = self.store.load_snapshot(name)
        if snapshot is None or snapshot.get("state") != state:
            raise _HttpError(503, f"the store did not record {name!r} as {state}")


def _required(body: dict[str, Any], field: str) -> Any:
    """``body[field]``; a field left out (or null) is a 400 that says it is missing, not a
    complaint about the value ``None`` the client never sent."""
    value = body.get(field)
    if value is None:
        raise _HttpError(400, f"{field} is required")
    return value


def _store_down(exc: StoreUnavailableError, what: str = "") -> _HttpError:
    """The 503 of a request the store could not serve (its URL redacted)."""
    note = f", {what}" if what else ""
    return _HttpError(503, f"store unavailable{note}: {redact_url(str(exc))}")


def create_app(service: AdminService) -> Starlette:
    """The Starlette application for ``service``."""
    try:
        from starlette.applications import Starlette
        from starlette.responses import HTMLResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError(
            "server", "haltgate serve needs the 'server' extra: pip install 'haltgate[server]'"
        ) from None

    def _error(exc: _HttpError) -> Response:
        headers = dict(exc.headers or {})
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"ok": False, "error": exc.message}, exc.status, headers=headers)

    def _client(request: Request) -> str | None:
        return request.client.host if request.client is not None else None

    async def _read_guard(request: Request) -> None:
        header = request.headers.get("authorization")
        if service.reads_need_token:
            await service.identify(header, _client(request))
            return
        token = bearer_token(header)
        if token is not None:
            # A read that needs no token still warms the cache with the one it carries (the
            # status page sends the pasted token with every poll), so the operator's halt
            # later needs no scrypt; the answer never depends on it.
            service.authenticator.warm(token, _client(request))

    def page(request: Request) -> Response:
        # The page holds no data: it reads /api/status (with the token, when one is needed).
        return HTMLResponse(STATUS_PAGE, headers={"Cache-Control": "no-store"})

    async def status(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            await _read_guard(request)
            result = await run_in_threadpool(service.status)
            return JSONResponse(result, headers={"Cache-Control": "no-store"})
        except _HttpError as exc:
            return _error(exc)
        except StoreUnavailableError as exc:
            return _error(_store_down(exc))

    async def events(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            await _read_guard(request)
            try:
                n = int(request.query_params.get("n", "50"))
            except ValueError:
                raise _HttpError(400, "n must be a whole number") from None
            return JSONResponse({"events": await run_in_threadpool(service.events, n)})
        except _HttpError as exc:
            return _error(exc)
        except StoreUnavailableError as exc:
            return _error(_store_down(exc))

    def _check_length(request: Request) -> None:
        # Refused from the header alone, before the token check and before any byte is read.
        declared = request.headers.get("content-length")
        if declared is None:
            return
        if not declared.strip().isdigit():
            raise _HttpError(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > MAX_BODY_BYTES:
            raise _HttpError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")

    async def _body(request: Request) -> dict[str, Any]:
        # Counted while it streams: a body without Content-Length (chunked) is cut off at
        # the limit, never read to its end.
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _HttpError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        try:
            data = json.loads(b"".join(chunks))
        except (ValueError, RecursionError):
            # RecursionError: deeply nested arrays are a malformed request, not a crash.
            raise _HttpError(400, "the body must be a JSON object") from None
        if not isinstance(data, dict):
            raise _HttpError(400, "the body must be a JSON object")
        return data

    async def _mutate(request: Request, action: str) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            _check_length(request)
            who = await service.require_operator(
                request.headers.get("authorization"), _client(request)
            )
            body = await _body(request)
            handler = service.halt if action == "halt" else service.reset
            result = await run_in_threadpool(handler, who, body)
            return JSONResponse(result)
        except _HttpError as exc:
            return _error(exc)
        except InvalidInputError as exc:
            return _error(_HttpError(400, str(exc)))
        except StoreUnavailableError as exc:
            return _error(_store_down(exc, "nothing changed"))

    async def halt(request: Request) -> Response:
        return await _mutate(request, "halt")

    async def reset(request: Request) -> Response:
        return await _mutate(request, "reset")

    async def metrics(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        if service.registry is None:
            return JSONResponse({"ok": False, "error": "metrics are not enabled"}, 404)
        try:
            await _read_guard(request)
        except _HttpError as exc:
            return _error(exc)
        from ..metrics import render_latest

        def scrape() -> tuple[bytes, str]:
            service.refresh()  # adopt other processes' changes before reporting them
            return render_latest(service.registry)

        try:
            body, content_type = await run_in_threadpool(scrape)
        except StoreUnavailableError as exc:
            return _error(_store_down(exc))
        return Response(body, media_type=content_type)

    document = openapi_document()

    async def openapi(request: Request) -> Response:
        try:
            await _read_guard(request)
        except _HttpError as exc:
            return _error(exc)
        return JSONResponse(document)

    handlers: dict[str, Callable[[Request], Awaitable[Response] | Response]] = {
        "page": page,
        "status": status,
        "events": events,
        "halt": halt,
        "reset": reset,
        "openapi": openapi,
        "metrics": metrics,
    }
    if set(handlers) != {route.operation for route in ROUTES}:
        raise RuntimeError("haltgate.server.routes.ROUTES and the app's handlers differ")
    app = Starlette(
        routes=[
            Route(route.path, handlers[route.operation], methods=[route.method]) for route in ROUTES
        ]
    )
    app.add_middleware(_Hardening, allowed_hosts=service.allowed_hosts)
    return app


_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Hardening:
    """Outermost layer of the app: refuses a foreign ``Host`` before any route runs and puts
    the security headers on every response, errors and 404s included."""

    def __init__(self, app: Callable[..., Awaitable[None]], allowed_hosts: frozenset[str]):
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_hardened(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        hosts = [v for k, v in scope.get("headers", ()) if k == b"host"]
        header = hosts[0].decode("latin-1") if len(hosts) == 1 else ""
        if host_of(header) not in self.allowed_hosts:
            logger.warning("api_host_refused", extra={"host": header[:200]})
            body = json.dumps(
                {"ok": False, "error": f"Host {header[:200]!r} is not a name of this server"}
            ).encode()
            await send_hardened(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_hardened({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_hardened)
