"""Exception filters: one rule for every setting that selects errors or results.

``ErrorRateCircuitBreaker(ignore=...)`` and the call breaker's ``record_exceptions``,
``ignore_exceptions`` and ``failure_result`` all go through this module. A filter spec is an
exception type, a tuple/list/set of them, or a predicate; :func:`compile_filter` turns it
into one :class:`CompiledFilter`.

The failure rule lives in :meth:`CompiledFilter.matches`: a predicate that itself raises
never hides an error. The filter then answers whatever makes the error count (an *ignore*
filter does not match, a *record* or *failure_result* filter matches), and the predicate's
failure is logged as ``exception_filter_failed`` on the ``haltgate.filters`` logger. The
caller's own exception or return value is never replaced by the predicate's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .errors import InvalidTypeError

__all__ = ["CompiledFilter", "FilterSpec", "compile_filter", "normalize_filter"]

logger = logging.getLogger("haltgate.filters")

FilterSpec = (
    type[BaseException]
    | tuple[type[BaseException], ...]
    | list[type[BaseException]]
    | Callable[[Any], bool]
)
"""What a filter setting accepts: an exception type, several of them, or a predicate."""

_HINT = "must be an exception type, a tuple of them or a predicate"


def _is_exception_type(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def normalize_filter(
    spec: Any, parameter: str, *, allow_empty: bool = False
) -> type[BaseException] | tuple[type[BaseException], ...] | Callable[[Any], bool]:
    """Validate a filter spec: one exception type, a tuple of them, or a predicate.

    A list, set or frozenset of types becomes a tuple. An empty collection (selects
    nothing) is accepted only with ``allow_empty``. Anything else raises
    :class:`~haltgate.errors.InvalidTypeError` naming ``parameter`` and the value.
    """
    if isinstance(spec, type):
        if issubclass(spec, BaseException):
            return spec
        raise InvalidTypeError(parameter, spec, _HINT)
    if isinstance(spec, tuple | list | set | frozenset):
        if not spec and not allow_empty:
            raise InvalidTypeError(parameter, spec, f"{_HINT}, not empty")
        for item in spec:
            if not _is_exception_type(item):
                raise InvalidTypeError(parameter, spec, f"{item!r} is not an exception type")
        return tuple(spec)
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    raise InvalidTypeError(parameter, spec, _HINT)


def _safe_repr(value: Any) -> str:
    # The log entry must not fail because of the very object it describes.
    try:
        return repr(value)[:200]
    except Exception:
        return f"<{type(value).__name__} with a failing repr>"


class CompiledFilter:
    """A compiled filter: ``matches(value, breaker)`` says whether it selects ``value``.

    ``types`` is the tuple of exception types (an ``isinstance`` check) and ``predicate``
    the callable, exactly one of them in use. ``match_counts`` says what a match means:
    True for filters whose match makes the error count (``record_exceptions``,
    ``failure_result``), False for filters whose match hides it (``ignore``,
    ``ignore_exceptions``). It is also the answer of a predicate that raises, so that a
    broken predicate never hides an error.
    """

    __slots__ = ("match_counts", "parameter", "predicate", "types")

    def __init__(
        self,
        parameter: str,
        *,
        match_counts: bool,
        types: tuple[type[BaseException], ...] = (),
        predicate: Callable[[Any], Any] | None = None,
    ) -> None:
        self.parameter = parameter
        self.match_counts = match_counts
        self.types = types
        self.predicate = predicate

    def matches(self, value: Any, breaker: str | None = None) -> bool:
        """Does the filter select ``value``? Never raises for a broken predicate.

        A predicate that raises (or returns something without a truth value) is logged as
        ``exception_filter_failed`` with the filter's ``parameter`` and the ``breaker``
        name, and the answer is ``match_counts``: the error counts.
        """
        predicate = self.predicate
        if predicate is None:
            return isinstance(value, self.types)
        try:
            return bool(predicate(value))
        except Exception:
            logger.exception(
                "exception_filter_failed",
                extra={
                    "parameter": self.parameter,
                    "breaker": breaker,
                    "filter": _safe_repr(predicate),
                    "value": _safe_repr(value),
                    "counted": True,
                },
            )
            return self.match_counts

    def __repr__(self) -> str:
        what = self.types if self.predicate is None else self.predicate
        return f"CompiledFilter({self.parameter!r}, {what!r})"


def compile_filter(
    spec: Any, parameter: str, *, match_counts: bool, allow_empty: bool = False
) -> CompiledFilter | None:
    """Validate ``spec`` (see :func:`normalize_filter`) and compile it into one filter.

    ``None`` and an empty collection (when ``allow_empty``) select nothing and compile to
    ``None``, so a caller can skip the filter entirely.
    """
    if spec is None:
        return None
    normal = normalize_filter(spec, parameter, allow_empty=allow_empty)
    if isinstance(normal, type):
        return CompiledFilter(parameter, match_counts=match_counts, types=(normal,))
    if isinstance(normal, tuple):
        if not normal:
            return None
        return CompiledFilter(parameter, match_counts=match_counts, types=normal)
    return CompiledFilter(parameter, match_counts=match_counts, predicate=normal)
