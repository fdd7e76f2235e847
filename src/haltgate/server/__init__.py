"""``haltgate serve``: the admin API, the status page and ``/metrics`` (extra ``server``)."""

from __future__ import annotations

import functools
import sys
from typing import Any

from ..config import is_loopback
from .app import REFUSAL_DELAY, AdminService, create_app

__all__ = ["AdminService", "build_service", "create_app", "serve"]


def build_service(
    store: Any,
    config: Any = None,
    *,
    with_metrics: bool = True,
    bind: str | None = None,
    clock: Any = None,
    refusal_delay: float = REFUSAL_DELAY,
) -> AdminService:
    """An :class:`AdminService` over ``store`` (with Prometheus metrics when the extra is
    installed and ``with_metrics``). ``bind`` is the address it listens on (default: the
    config's); it answers to requests whose ``Host`` is that address or a local name.
    ``clock`` runs the per-client token failure window; ``refusal_delay`` is how long a bad
    token waits for its 401 or 429."""
    from ..operator import operator_manager
    from ..store.registry import live_refusals, read_registry

    manager = operator_manager(store, config)
    # The service runs in its own process: the refusals are the live trading processes'
    # (their registry entries), never this process's operator view's (always none).
    processes = functools.partial(read_registry, store)

    def refusals() -> dict[str, int]:
        return live_refusals(processes())

    registry = None
    on_token_check = None
    if with_metrics:
        try:
            from prometheus_client import CollectorRegistry
        except ImportError:
            registry = None
        else:
            from ..metrics import HaltgateMetrics

            registry = CollectorRegistry()
            on_token_check = HaltgateMetrics(
                manager, registry, processes=processes
            ).observe_token_check
    return AdminService(
        manager,
        config=config,
        registry=registry,
        bind=bind,
        clock=clock,
        on_token_check=on_token_check,
        refusal_delay=refusal_delay,
        refusals=refusals,
    )


def serve(ctx: Any) -> int:
    """Run the service for the CLI context ``ctx`` (blocks until stopped)."""
    from ..exits import CommandError

    config = ctx.config
    bind = ctx.args.bind or (config.server.bind if config is not None else "127.0.0.1")
    port = ctx.args.port or (config.server.port if config is not None else 8787)
    operators = config.operators if config is not None else ()
    if not is_loopback(bind) and not operators:
        raise CommandError(
            f"refusing to listen on {bind}: a non-loopback bind needs operators with tokens "
            "in the config ([[operators]] with token_hash)",
            2,
        )
    try:
        import uvicorn
    except ImportError:
        raise CommandError(
            "haltgate serve needs the 'server' extra: pip install 'haltgate[server]'", 2
        ) from None
    store = ctx.open_store(must_exist=False)
    service = build_service(store, config, bind=bind)
    if not operators:
        print(
            "warning: no operators are configured: the page is read-only (nobody can halt or "
            "reset from it)",
            file=sys.stderr,
        )
    if not is_loopback(bind) and not service.reads_need_token:
        print("warning: status is readable without a token on a network address", file=sys.stderr)
    print(f"haltgate admin on http://{bind}:{port}/", file=sys.stderr)
    try:
        # proxy_headers=False: the client is the TCP peer. uvicorn otherwise believes
        # X-Forwarded-For from 127.0.0.1, so a local flood could name a new client with each
        # request and never reach its failure limit.
        uvicorn.run(
            create_app(service),
            host=bind,
            port=port,
            log_level="warning",
            proxy_headers=False,
        )
    finally:
        service.authenticator.close()
        service.manager.close()
    return 0
