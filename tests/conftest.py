"""Shared fixtures: a ManualClock so that no test depends on real time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from haltgate import ManualClock

START = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)  # a Monday, mid-session in New York


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock(START)
