"""SystemClock and ManualClock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from haltgate import Clock, HaltgateError, ManualClock, SystemClock


def test_system_clock_is_aware_utc_and_monotonic() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    now = clock.now()
    assert now.tzinfo is UTC
    a = clock.monotonic()
    b = clock.monotonic()
    assert b >= a


def test_manual_clock_starts_where_told() -> None:
    start = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    clock = ManualClock(start)
    assert isinstance(clock, Clock)
    assert clock.now() == start
    assert clock.monotonic() == 0.0


def test_manual_clock_converts_other_zones_to_utc() -> None:
    start = datetime(2025, 1, 2, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    clock = ManualClock(start)
    assert clock.now() == datetime(2025, 1, 2, 0, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_manual_clock_default_start_is_now() -> None:
    before = datetime.now(UTC)
    clock = ManualClock()
    assert before <= clock.now() <= datetime.now(UTC)


def test_advance_moves_both_readings(clock: ManualClock) -> None:
    start = clock.now()
    clock.advance(1.5)
    clock.advance("0.25")
    clock.advance(0)
    assert clock.monotonic() == 1.75
    assert clock.now() == start + timedelta(seconds=1.75)


def test_advance_is_exact_without_float_drift(clock: ManualClock) -> None:
    for _ in range(1000):
        clock.advance(0.001)
    assert clock.monotonic() == 1.0
    clock.advance(0.1)
    clock.advance(0.2)
    assert clock.monotonic() == 1.3


def test_set_jumps_wall_time_and_monotonic_never_goes_back(clock: ManualClock) -> None:
    start = clock.now()
    clock.set(start + timedelta(hours=1))
    assert clock.monotonic() == 3600.0
    clock.set(start)  # wall time goes back (e.g. replaying an earlier row)
    assert clock.now() == start
    assert clock.monotonic() == 3600.0
    clock.set(start + timedelta(minutes=30))  # still behind the latest wall time
    assert clock.monotonic() == 5400.0


def test_manual_clock_rejects_naive_and_bad_values(clock: ManualClock) -> None:
    with pytest.raises(HaltgateError, match="start"):
        ManualClock(datetime(2025, 1, 1))
    with pytest.raises(TypeError, match="start"):
        ManualClock("2025-01-01")  # type: ignore[arg-type]
    before = (clock.now(), clock.monotonic())
    for bad in (-1, "x", None, True, float("nan"), float("inf"), 1e20):
        with pytest.raises(HaltgateError, match="seconds"):
            clock.advance(bad)
    for bad_dt in (datetime(2025, 1, 1), "2025-01-01", None):
        with pytest.raises(HaltgateError, match="dt"):
            clock.set(bad_dt)  # type: ignore[arg-type]
    assert (clock.now(), clock.monotonic()) == before


def test_concurrent_advances_are_all_counted(clock: ManualClock) -> None:
    def worker() -> None:
        for _ in range(1000):
            clock.advance(0.001)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.monotonic() == 16.0


def test_repr(clock: ManualClock) -> None:
    assert "2025-03-03T14:30:00+00:00" in repr(clock)
    assert repr(SystemClock()) == "SystemClock()"
