"""Stores: where state lasts. ``MemoryStore`` (library default), ``SQLiteStore`` (the
embedded default of the CLI, config and engine) and ``RedisStore`` (extra ``redis``)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, InvalidTypeError
from ..redact import redact_url
from .base import Store, event_payload
from .memory import MemoryStore

__all__ = ["MemoryStore", "Store", "event_payload", "open_store", "redact_url"]


def open_store(spec: Any, **options: Any) -> Store:
    """A store from an object or a URL: ``memory://``, ``sqlite:///path/to.db``,
    ``redis://host:6379/0``."""
    if isinstance(spec, Store):
        return spec
    if not isinstance(spec, str):
        raise InvalidTypeError(
            "store", spec, "must be a Store or a URL such as sqlite:///haltgate.db"
        )
    url = spec.strip()
    if url in ("memory", "memory://", "memory:"):
        return MemoryStore(**options)
    if url.startswith("sqlite://"):
        from .sqlite import SQLiteStore

        return SQLiteStore.from_url(url, **options)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(url, **options)
    raise ConfigError(
        "store.url",
        f"unsupported store URL {redact_url(repr(spec))} (use sqlite:///FILE or redis://HOST:PORT/DB)",
    )
