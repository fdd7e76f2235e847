"""The call breaker's exception filters and ``fn`` checks: a broken predicate never hides a
failure, and a non-callable ``fn`` is refused before anything is counted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from cb_support import Boom, boom, fail, make, ok

from haltgate import CircuitState, HaltgateError, ManualClock
from haltgate.errors import InvalidTypeError


def broken(value: object) -> bool:
    # A filter that assumes every exception carries an HTTP status.
    return value.status == 429  # type: ignore[attr-defined]


def filter_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.message == "exception_filter_failed"]


def connection_down() -> None:
    raise ConnectionError("broker unreachable")


def test_a_raising_ignore_predicate_ignores_nothing(caplog: pytest.LogCaptureFixture) -> None:
    breaker = make(failure_threshold=3, ignore_exceptions=broken)
    with caplog.at_level(logging.ERROR, logger="haltgate.filters"):
        for _ in range(3):
            with pytest.raises(ConnectionError):
                breaker.call_sync(connection_down)
    assert breaker.state is CircuitState.OPEN
    assert breaker.get_status()["total_failures"] == 3
    failures = filter_failures(caplog)
    assert len(failures) == 3  # once per call
    assert {r.parameter for r in failures} == {"ignore_exceptions"}  # type: ignore[attr-defined]
    assert {r.breaker for r in failures} == {"api"}  # type: ignore[attr-defined]


def test_a_raising_record_predicate_records_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = make(failure_threshold=3, record_exceptions=broken)
    with caplog.at_level(logging.ERROR, logger="haltgate.filters"):
        for _ in range(3):
            with pytest.raises(ConnectionError):
                breaker.call_sync(connection_down)
    assert breaker.state is CircuitState.OPEN
    failures = filter_failures(caplog)
    assert len(failures) == 3
    assert {r.parameter for r in failures} == {"record_exceptions"}  # type: ignore[attr-defined]


def test_a_raising_failure_result_counts_as_failure_and_returns_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = make(failure_threshold=3, failure_result=broken)
    with caplog.at_level(logging.ERROR, logger="haltgate.filters"):
        for _ in range(3):
            assert breaker.call_sync(ok) == "ok"
    assert breaker.state is CircuitState.OPEN
    failures = filter_failures(caplog)
    assert len(failures) == 3
    assert {r.parameter for r in failures} == {"failure_result"}  # type: ignore[attr-defined]


def test_a_raising_ignore_predicate_in_half_open_reopens_the_circuit() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, open_timeout_seconds=10, ignore_exceptions=broken)
    with pytest.raises(ConnectionError):
        breaker.call_sync(connection_down)
    clock.advance(10)
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(ConnectionError):
        breaker.call_sync(connection_down)
    assert breaker.state is CircuitState.OPEN


def test_a_raising_ignore_predicate_still_lets_record_exceptions_decide() -> None:
    # Not ignored does not mean recorded: an exception record_exceptions does not select
    # stays an ignored outcome.
    breaker = make(failure_threshold=1, ignore_exceptions=broken, record_exceptions=Boom)
    with pytest.raises(ConnectionError):
        breaker.call_sync(connection_down)
    assert breaker.is_closed
    fail(breaker)
    assert breaker.is_open


NOT_CALLABLE: list[Any] = [None, 42, "ok", object()]


@pytest.mark.parametrize("fn", NOT_CALLABLE)
@pytest.mark.parametrize(
    "settings", [{}, {"failure_result": lambda r: False}], ids=["fast", "checked"]
)
def test_call_sync_refuses_a_non_callable_fn_counting_nothing(
    fn: Any, settings: dict[str, Any]
) -> None:
    breaker = make(failure_threshold=1, **settings)
    before = breaker.get_status()
    with pytest.raises(InvalidTypeError) as info:
        breaker.call_sync(fn)
    assert isinstance(info.value, TypeError) and isinstance(info.value, HaltgateError)
    assert info.value.parameter == "fn"
    assert info.value.value is fn
    assert breaker.get_status() == before
    assert breaker.is_closed


@pytest.mark.parametrize("fn", NOT_CALLABLE)
def test_async_call_refuses_a_non_callable_fn_counting_nothing(fn: Any) -> None:
    breaker = make(failure_threshold=1)
    before = breaker.get_status()
    with pytest.raises(InvalidTypeError) as info:
        asyncio.run(breaker.call(fn))
    assert info.value.parameter == "fn"
    assert breaker.get_status() == before


def test_a_non_callable_fn_takes_no_half_open_permit() -> None:
    clock = ManualClock()
    breaker = make(clock, failure_threshold=1, open_timeout_seconds=10, success_threshold=1)
    fail(breaker)
    clock.advance(10)
    assert breaker.state is CircuitState.HALF_OPEN
    for _ in range(3):
        with pytest.raises(InvalidTypeError):
            breaker.call_sync(None)  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError):
            asyncio.run(breaker.call(None))  # type: ignore[arg-type]
    status = breaker.get_status()
    assert status["half_open_in_flight"] == 0
    assert status["total_failures"] == 1
    assert breaker.call_sync(ok) == "ok"  # the one permit was still free
    assert breaker.is_closed


def test_a_non_callable_fn_refused_while_open_is_not_a_rejection() -> None:
    breaker = make(failure_threshold=1)
    with pytest.raises(Boom):
        breaker.call_sync(boom)
    with pytest.raises(InvalidTypeError):
        breaker.call_sync(None)  # type: ignore[arg-type]
    assert breaker.get_status()["total_rejected"] == 0


def test_five_non_callables_do_not_open_the_circuit() -> None:
    breaker = make(failure_threshold=5)
    for _ in range(5):
        with pytest.raises(InvalidTypeError):
            breaker.call_sync(None)  # type: ignore[arg-type]
    assert breaker.is_closed
    assert breaker.get_status()["total_failures"] == 0
