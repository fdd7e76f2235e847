"""The call breaker's exception filters: a broken predicate never hides a failure."""

from __future__ import annotations

import logging

import pytest
from cb_support import Boom, fail, make, ok

from haltgate import CircuitState, ManualClock


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
