"""ConnectionCircuitBreaker: failures counted per source, and what a restart restores (the
trip's cause and the failure counts decide which sign of life may clear a restored trip)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from haltgate import (
    CircuitBreakerManager,
    CircuitBreakerState,
    ConnectionCircuitBreaker,
    ManualClock,
    MemoryStore,
)
from haltgate.store.sqlite import SQLiteStore

TRIPPED = CircuitBreakerState.TRIPPED
NORMAL = CircuitBreakerState.NORMAL


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 14, 30, tzinfo=UTC))


# ------------------------------------------------------------------------------ sources
def test_a_sources_success_never_clears_another_sources_failures(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=3, clock=clock)
    for _ in range(3):
        breaker.record_failure("broker timeout")
    assert breaker.state is TRIPPED
    breaker.record_failure("feed down", source="provider")
    breaker.record_success(source="provider")
    assert breaker.state is TRIPPED
    assert breaker.get_consecutive_failures() == 3
    assert breaker.get_failures_by_source() == {"caller": 3}
    breaker.record_success()
    assert breaker.state is NORMAL
    assert breaker.get_consecutive_failures() == 0


def test_a_trip_caused_by_one_source_alone_clears_on_its_success(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=2, clock=clock)
    breaker.record_failure("feed down", source="provider")
    breaker.record_failure("feed down", source="provider")
    assert breaker.state is TRIPPED
    assert breaker.get_trip_details()["by_source"] == {"provider": 2}
    breaker.record_success(source="provider")
    assert breaker.state is NORMAL


def test_a_mixed_failure_trip_needs_every_source_to_succeed(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=3, clock=clock)
    breaker.record_failure("broker timeout")
    breaker.record_failure("feed down", source="provider")
    breaker.record_failure("feed down", source="provider")
    assert breaker.state is TRIPPED
    breaker.record_success(source="provider")
    assert breaker.state is TRIPPED  # the caller's failing call has not succeeded yet
    assert breaker.get_consecutive_failures() == 1
    breaker.record_success(source="caller")
    assert breaker.state is NORMAL


def test_a_sources_success_is_a_sign_of_life(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(failure_threshold=3, timeout_seconds=5, clock=clock)
    breaker.record_failure("broker timeout")
    clock.advance(6)
    assert breaker.is_tripped
    breaker.record_success(source="provider")
    assert breaker.state is NORMAL
    assert breaker.get_consecutive_failures() == 1  # the caller's failure is kept


def test_a_bad_source_is_refused_without_counting(clock: ManualClock) -> None:
    breaker = ConnectionCircuitBreaker(clock=clock)
    with pytest.raises(TypeError, match="source"):
        breaker.record_failure("x", source=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        breaker.record_success(source=" ")
    assert breaker.get_consecutive_failures() == 0


# ------------------------------------------------------------------------------ restarts
@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "x.db"


def _open(path: Path, clock: ManualClock) -> tuple[CircuitBreakerManager, ConnectionCircuitBreaker]:
    breaker = ConnectionCircuitBreaker(failure_threshold=3, timeout_seconds=30, clock=clock)
    return CircuitBreakerManager(breakers=[breaker], store=SQLiteStore(path), clock=clock), breaker


def test_a_restored_timeout_trip_is_cleared_by_a_heartbeat(db: Path, clock: ManualClock) -> None:
    manager, breaker = _open(db, clock)
    clock.advance(31)
    assert breaker.is_tripped
    manager.close()

    manager, breaker = _open(db, clock)
    try:
        assert breaker.state is TRIPPED
        breaker.heartbeat()
        assert breaker.state is NORMAL
    finally:
        manager.close()


def test_a_restored_failure_trip_is_cleared_only_by_a_success(db: Path, clock: ManualClock) -> None:
    manager, breaker = _open(db, clock)
    for _ in range(2):
        breaker.record_failure("broker timeout")
    breaker.record_failure("feed down", source="provider")
    assert breaker.is_tripped
    manager.close()

    manager, breaker = _open(db, clock)
    try:
        assert breaker.state is TRIPPED
        assert breaker.get_failures_by_source() == {"caller": 2, "provider": 1}
        breaker.heartbeat()
        breaker.record_success(source="provider")
        assert breaker.state is TRIPPED
        assert breaker.get_consecutive_failures() == 2
        breaker.record_success()
        assert breaker.state is NORMAL
    finally:
        manager.close()


def test_a_timeout_trip_that_turned_into_failures_stays_so_after_a_restart(
    db: Path, clock: ManualClock
) -> None:
    manager, breaker = _open(db, clock)
    clock.advance(31)
    assert breaker.is_tripped  # timed out
    for _ in range(3):
        breaker.record_failure("broker timeout")  # and now failing too
    manager.close()

    manager, breaker = _open(db, clock)
    try:
        breaker.heartbeat()
        assert breaker.state is TRIPPED
        breaker.record_success()
        assert breaker.state is NORMAL
    finally:
        manager.close()


def test_a_cleared_trip_leaves_no_cause_for_a_later_trip(clock: ManualClock) -> None:
    store = MemoryStore()
    breaker = ConnectionCircuitBreaker(timeout_seconds=5, clock=clock)
    CircuitBreakerManager(breakers=[breaker], store=store, clock=clock)
    clock.advance(6)
    assert breaker.is_tripped
    breaker.heartbeat()
    assert breaker.state is NORMAL
    assert breaker.export_state()["data"] == {"cause": None, "failures": {}}
    # A trip whose cause this breaker does not know (adopted as state only) is not
    # lifted by a heartbeat.
    breaker.import_state(
        {"state": "TRIPPED", "trip": {"reason": "elsewhere", "at": clock.now().isoformat()}}
    )
    breaker.heartbeat()
    assert breaker.state is TRIPPED


@pytest.mark.parametrize(
    "data",
    [
        {},  # written before the cause was persisted
        {"cause": "somethingelse", "failures": {"caller": "3", "provider": True}},
    ],
)
def test_a_snapshot_without_a_known_cause_needs_a_success(
    clock: ManualClock, data: dict[str, object]
) -> None:
    store = MemoryStore()
    first = ConnectionCircuitBreaker(clock=clock)
    CircuitBreakerManager(breakers=[first], store=store, clock=clock)
    clock.advance(31)
    assert first.is_tripped
    snapshot = first.export_state()
    snapshot["data"] = data

    breaker = ConnectionCircuitBreaker(clock=clock)
    breaker.import_state(snapshot)
    assert breaker.state is TRIPPED
    breaker.heartbeat()
    breaker.record_success(source="provider")
    assert breaker.state is TRIPPED
    assert breaker.get_consecutive_failures() == 0
    breaker.record_success()
    assert breaker.state is NORMAL


def test_a_restored_timeout_trip_is_cleared_across_managers_sharing_a_store(
    clock: ManualClock,
) -> None:
    store = MemoryStore()
    first = ConnectionCircuitBreaker(timeout_seconds=30, clock=clock)
    CircuitBreakerManager(breakers=[first], store=store, clock=clock)
    clock.advance(31)
    assert first.is_tripped

    second = ConnectionCircuitBreaker(timeout_seconds=30, clock=clock)
    CircuitBreakerManager(breakers=[second], store=store, clock=clock)
    assert second.state is TRIPPED
    second.record_success(source="provider")
    assert second.state is NORMAL
