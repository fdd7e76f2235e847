"""Stores: where state lasts. ``MemoryStore`` (library default), ``SQLiteStore`` (the
embedded default of the CLI, config and engine) and ``RedisStore`` (extra ``redis``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import ConfigError, InvalidTypeError
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
        "store.url", f"unsupported store URL {spec!r} (use sqlite:///FILE or redis://HOST:PORT/DB)"
    )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``redis://:***@host:6379/0``), for
    every output, log line and error that names a store."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable store URL>"
    redacted = url
    if "@" in parts.netloc:
        userinfo, _, host = parts.netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        if sep:
            redacted = redacted.replace(f"//{parts.netloc}", f"//{user}:***@{host}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(key.lower() == "password" for key, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*/"
            )
            redacted = redacted.replace(f"?{parts.query}", f"?{query}", 1)
    return redacted
