"""The snapshot codec: breaker state as JSON that round-trips its types.

Audit payloads are plain JSON (Decimals and datetimes as strings, for people and tools).
A snapshot is read back by haltgate itself, so its values must come back as what they
were: a ``Decimal`` threshold in trip details is a ``Decimal`` after a restart, a
``datetime`` is an aware ``datetime``. Tagged objects carry those types:
``{"$decimal": "0.10"}`` and ``{"$datetime": "2026-01-02T03:04:05+00:00"}``. Plain JSON
written by older versions decodes as it was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

__all__ = ["decode", "encode"]

_DECIMAL = "$decimal"
_DATETIME = "$datetime"


def encode(value: Any) -> Any:
    """``value`` as JSON types, with Decimals and datetimes tagged so :func:`decode`
    restores them. Enums become their values; tuples and sets become lists."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, Enum):
        return encode(value.value)
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    return str(value)


def decode(value: Any) -> Any:
    """The inverse of :func:`encode` (untagged JSON is returned as it is)."""
    if isinstance(value, dict):
        if len(value) == 1:
            if _DECIMAL in value and isinstance(value[_DECIMAL], str):
                return Decimal(value[_DECIMAL])
            if _DATETIME in value and isinstance(value[_DATETIME], str):
                return datetime.fromisoformat(value[_DATETIME])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
