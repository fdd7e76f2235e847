"""SessionTracker: the one rule for "a new trading session began", shared by both
daily-loss dialects."""

from __future__ import annotations

from datetime import UTC, datetime

from haltgate import UTCDailyCalendar
from haltgate.calendars import SessionTracker


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_session_tracker_moves_only_forward_and_retries_an_unrecorded_roll() -> None:
    tracker = SessionTracker(UTCDailyCalendar())
    seen: list[tuple[datetime, datetime | None]] = []
    ok = True

    def record(start: datetime, previous: datetime | None, context: None) -> bool:
        assert tracker.session == start  # what the roll writes names the new session
        seen.append((start, previous))
        return ok

    day1, day2 = utc("2026-03-01T00:00"), utc("2026-03-02T00:00")
    assert tracker.roll(utc("2026-03-01T12:00"), record, None) == day1
    assert tracker.roll(utc("2026-03-01T18:00"), record, None) is None
    assert tracker.roll(utc("2026-02-28T23:00"), record, None) is None  # stepped back
    assert tracker.session == day1
    ok = False
    assert tracker.roll(utc("2026-03-02T00:00"), record, None) is None
    assert tracker.session == day1  # not recorded: not in force
    ok = True
    assert tracker.roll(utc("2026-03-02T00:01"), record, None) == day2
    assert seen == [(day1, None), (day2, day1), (day2, day1)]
    assert tracker.export() == day2.isoformat()
    tracker.restore(day1.isoformat())
    assert tracker.session == day1
    assert tracker.new_session(utc("2026-03-02T01:00")) == day2
