"""Trading-session calendars: UTC midnight, a daily roll across DST, a real exchange."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from haltgate import DailyRollCalendar, ExchangeCalendar, HaltgateError, UTCDailyCalendar
from haltgate.calendars import calendar_from_spec

NY = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_utc_daily_calendar() -> None:
    cal = UTCDailyCalendar()
    assert cal.session_start(utc("2025-03-03T00:00:00")) == utc("2025-03-03T00:00:00")
    assert cal.session_start(utc("2025-03-03T23:59:59.999999")) == utc("2025-03-03T00:00:00")
    # A non-UTC aware time is converted first.
    tokyo = datetime(2025, 3, 4, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 23:00 UTC on the 3rd
    assert cal.session_start(tokyo) == utc("2025-03-03T00:00:00")
    assert cal.describe() == "utc"


@pytest.mark.parametrize(
    ("now", "start_utc"),
    [
        # March 2025: New York springs forward on Sunday 9 March.
        ("2025-03-07T22:30", "2025-03-07T22:00"),  # Fri 17:30 EST
        ("2025-03-08T21:59", "2025-03-07T22:00"),  # Sat 16:59 EST
        ("2025-03-09T20:59", "2025-03-08T22:00"),  # Sun 16:59 EDT: still Saturday's session
        ("2025-03-09T21:00", "2025-03-09T21:00"),  # Sun 17:00 EDT: the roll, 21:00 UTC now
        ("2025-03-10T21:00", "2025-03-10T21:00"),  # Mon 17:00 EDT
        # November 2025: back to standard time on Sunday 2 November.
        ("2025-11-01T21:00", "2025-11-01T21:00"),  # Sat 17:00 EDT
        ("2025-11-02T21:59", "2025-11-01T21:00"),  # Sun 16:59 EST
        ("2025-11-02T22:00", "2025-11-02T22:00"),  # Sun 17:00 EST
        ("2025-11-03T21:30", "2025-11-02T22:00"),  # Mon 16:30 EST
    ],
)
def test_daily_roll_stays_at_17_local_across_dst(now: str, start_utc: str) -> None:
    cal = DailyRollCalendar("America/New_York", "17:00")
    start = cal.session_start(utc(now))
    assert start == utc(start_utc)
    assert start.tzinfo is UTC
    assert start.astimezone(NY).time() == time(17, 0)


def test_sessions_around_dst_are_23_and_25_hours_long() -> None:
    cal = DailyRollCalendar(NY, time(17, 0))
    spring = cal.session_start(utc("2025-03-09T21:00")) - cal.session_start(utc("2025-03-09T20:00"))
    autumn = cal.session_start(utc("2025-11-02T22:00")) - cal.session_start(utc("2025-11-02T21:00"))
    assert spring.total_seconds() == 23 * 3600
    assert autumn.total_seconds() == 25 * 3600


def test_roll_time_in_a_dst_gap_starts_after_the_gap() -> None:
    cal = DailyRollCalendar("America/New_York", "02:30")  # does not exist on 9 March 2025
    start = cal.session_start(utc("2025-03-09T12:00"))
    assert start.astimezone(NY).date().isoformat() == "2025-03-09"
    assert start >= utc("2025-03-09T07:00")  # 03:00 EDT, the end of the gap
    assert cal.session_start(start) == start


def test_roll_calendar_rejects_bad_input() -> None:
    with pytest.raises(HaltgateError, match="tz"):
        DailyRollCalendar("Mars/Olympus", "17:00")
    with pytest.raises(HaltgateError, match="time"):
        DailyRollCalendar("UTC", "25:00")
    with pytest.raises(TypeError, match="time"):
        DailyRollCalendar("UTC", 17)  # type: ignore[arg-type]


def test_calendar_from_spec() -> None:
    assert isinstance(calendar_from_spec(None), UTCDailyCalendar)
    assert isinstance(calendar_from_spec("UTC"), UTCDailyCalendar)
    roll = calendar_from_spec("roll:17:00@America/New_York")
    assert isinstance(roll, DailyRollCalendar)
    assert repr(roll) == "DailyRollCalendar('America/New_York', '17:00:00')"
    with pytest.raises(HaltgateError, match="calendar"):
        calendar_from_spec("roll:17:00")
    with pytest.raises(HaltgateError):
        calendar_from_spec(42)


def test_exchange_calendar_holiday_and_early_close() -> None:
    cal = ExchangeCalendar("xnys")
    assert cal.describe() == "XNYS"
    open_ = utc("2025-11-26T14:30")  # Wed 09:30 EST
    # Thanksgiving (Thu 27 Nov) is a holiday: Wednesday's session continues through it.
    assert cal.session_start(utc("2025-11-26T14:29")) == utc("2025-11-25T14:30")
    assert cal.session_start(open_) == open_
    assert cal.session_start(utc("2025-11-27T16:00")) == open_
    assert cal.session_start(utc("2025-11-28T14:29")) == open_
    # Friday 28 Nov opens normally and closes early (13:00): after the close it is still
    # Friday's session until Monday's open.
    friday = utc("2025-11-28T14:30")
    assert cal.session_start(friday) == friday
    assert cal.session_start(utc("2025-11-28T19:00")) == friday
    assert cal.session_start(utc("2025-12-01T14:29:59")) == friday
    assert cal.session_start(utc("2025-12-01T14:30")) == utc("2025-12-01T14:30")
    # Going back in time still answers correctly (the cache is only a shortcut).
    assert cal.session_start(utc("2025-11-27T16:00")) == open_


def test_exchange_calendar_unknown_code() -> None:
    with pytest.raises(HaltgateError, match="code"):
        ExchangeCalendar("NOPE")


@pytest.mark.parametrize(
    ("now", "start_utc"),
    [
        # Sunday 8 March 2026: New York skips 02:00-03:00 EST, so 02:30 does not exist.
        ("2026-03-08T06:59:59.999999", "2026-03-07T07:30"),  # 01:59:59 EST: Saturday's roll
        ("2026-03-08T07:00", "2026-03-08T07:00"),  # 03:00 EDT: the first valid moment
        ("2026-03-08T07:29", "2026-03-08T07:00"),  # 03:29 EDT: same session
        ("2026-03-08T07:30", "2026-03-08T07:00"),  # 03:30 EDT: no second roll
        ("2026-03-09T06:29:59", "2026-03-08T07:00"),  # Mon 02:29:59 EDT
        ("2026-03-09T06:30", "2026-03-09T06:30"),  # Mon 02:30 EDT: back to normal
    ],
)
def test_roll_time_in_the_spring_forward_gap_starts_at_the_end_of_the_gap(
    now: str, start_utc: str
) -> None:
    cal = DailyRollCalendar("America/New_York", "02:30")
    start = cal.session_start(utc(now))
    assert start == utc(start_utc)
    assert start.tzinfo is UTC
    assert cal.session_start(start) == start


@pytest.mark.parametrize(
    ("now", "start_utc"),
    [
        # Sunday 1 November 2026: New York repeats 01:00-02:00, so 01:30 happens twice.
        ("2026-11-01T05:29:59", "2026-10-31T05:30"),  # 01:29:59 EDT: Saturday's roll
        ("2026-11-01T05:30", "2026-11-01T05:30"),  # 01:30 EDT: the first occurrence rolls
        ("2026-11-01T06:29:59", "2026-11-01T05:30"),  # 01:29:59 EST (second pass)
        ("2026-11-01T06:30", "2026-11-01T05:30"),  # 01:30 EST: no second roll
        ("2026-11-02T06:29:59", "2026-11-01T05:30"),  # Mon 01:29:59 EST
        ("2026-11-02T06:30", "2026-11-02T06:30"),  # Mon 01:30 EST
    ],
)
def test_ambiguous_roll_time_on_the_fall_back_day_is_its_first_occurrence(
    now: str, start_utc: str
) -> None:
    cal = DailyRollCalendar("America/New_York", "01:30")
    assert cal.session_start(utc(now)) == utc(start_utc)


def test_ambiguous_roll_time_ignores_the_fold_of_the_given_time() -> None:
    cal = DailyRollCalendar(NY, time(1, 30, fold=1))
    assert cal.session_start(utc("2026-11-01T06:00")) == utc("2026-11-01T05:30")


# --------------------------------------------------------------------------- every known date
def _package_opens(start: str, end: str) -> list[datetime]:
    """XNYS opens from exchange-calendars itself, over an explicit range (independent of
    haltgate's loading)."""
    import exchange_calendars as xcals

    schedule = xcals.get_calendar("XNYS", start=start, end=end).schedule
    return [ts.to_pydatetime().astimezone(UTC) for ts in schedule["open"]]


# (a time, the open of its session): 1990, 2006 and 2026, holidays and early closes.
KNOWN_SESSIONS = [
    ("1990-01-02T14:30", "1990-01-02T14:30"),  # first session of 1990, 09:30 EST
    ("1990-01-02T14:29", "1989-12-29T14:30"),  # before it: Friday's session (1 Jan closed)
    ("1990-01-03T20:00", "1990-01-03T14:30"),
    ("2006-07-05T13:29", "2006-07-03T13:30"),  # 4 July closed; 3 July (early close) goes on
    ("2006-11-24T17:00", "2006-11-24T14:30"),  # day after Thanksgiving, early close
    ("2006-11-30T15:00", "2006-11-30T14:30"),  # before the default start (20 years back)
    ("2026-03-02T15:00", "2026-03-02T14:30"),
    ("2026-12-24T20:00", "2026-12-24T14:30"),  # Christmas Eve, early close
    ("2026-12-28T14:29", "2026-12-24T14:30"),  # through Christmas and the weekend
]


@pytest.mark.parametrize(("now", "start_utc"), KNOWN_SESSIONS)
def test_exchange_calendar_answers_every_known_date(now: str, start_utc: str) -> None:
    cal = ExchangeCalendar("XNYS")
    start = cal.session_start(utc(now))
    assert start == utc(start_utc)
    assert start.tzinfo is UTC
    # The package's own schedule, loaded around that date only, agrees.
    day = utc(now)
    opens = _package_opens(
        (day - timedelta(days=20)).date().isoformat(), (day + timedelta(days=5)).date().isoformat()
    )
    assert start == max(o for o in opens if o <= day)


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(["2026-03-02T15:00", "1990-01-02T15:00", "2007-11-01T15:00",
                      "2008-10-14T15:00"], id="2026-1990-2007-2008"),
        pytest.param(["1990-01-02T15:00", "2007-11-01T15:00", "2008-10-14T15:00",
                      "2026-03-02T15:00"], id="1990-first"),
    ],
)  # fmt: skip
def test_no_cached_lookup_answers_with_another_dates_session(order: list[str]) -> None:
    expected = {
        "1990-01-02T15:00": utc("1990-01-02T14:30"),
        "2007-11-01T15:00": utc("2007-11-01T13:30"),  # EDT until 4 November in 2007
        "2008-10-14T15:00": utc("2008-10-14T13:30"),
        "2026-03-02T15:00": utc("2026-03-02T14:30"),
    }
    cal = ExchangeCalendar("XNYS")
    for now in order + order[::-1]:
        assert cal.session_start(utc(now)) == expected[now], now
    # Every XNYS session of October 2008, asked in turn after all that, is its own.
    for open_ in _package_opens("2008-10-01", "2008-10-31"):
        assert cal.session_start(open_ + timedelta(hours=1)) == open_
        assert cal.session_start(open_ - timedelta(microseconds=1)) < open_


def test_exchange_calendar_refuses_a_time_the_package_cannot_know() -> None:
    from haltgate import InvalidInputError

    cal = ExchangeCalendar("XNYS")
    before_pandas = datetime(1600, 1, 3, 15, 0, tzinfo=UTC)
    with pytest.raises(InvalidInputError) as caught:
        cal.session_start(before_pandas)
    assert caught.value.parameter == "now"
    assert caught.value.value == before_pandas
    assert "XNYS" in str(caught.value)
    with pytest.raises(InvalidInputError, match="now"):
        cal.session_start(datetime(2300, 1, 3, tzinfo=UTC))
    # Refusals change nothing: known dates still answer.
    assert cal.session_start(utc("2026-03-02T15:00")) == utc("2026-03-02T14:30")


def test_exchange_calendar_refuses_times_outside_an_exchanges_own_bounds() -> None:
    from haltgate import InvalidInputError

    cal = ExchangeCalendar("XSHG")  # exchange-calendars knows Shanghai from 1990-12-03
    with pytest.raises(InvalidInputError, match="now"):
        cal.session_start(utc("1990-11-30T02:00"))
    with pytest.raises(InvalidInputError, match="first known session"):
        cal.session_start(utc("1990-12-03T00:00"))  # that day, before its first open
    first = cal.session_start(utc("1990-12-03T03:00"))
    assert first.date().isoformat() == "1990-12-03"
