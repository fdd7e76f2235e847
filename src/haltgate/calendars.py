"""Trading-session calendars: when a trading day starts.

A calendar maps a moment to the start of the session it belongs to. The daily-loss breakers
(both dialects) keep one baseline per session and clear their trip when a new session starts;
:class:`SessionTracker` is the one place that decides that a new session began.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError, InvalidInputError, InvalidTypeError

__all__ = [
    "DailyRollCalendar",
    "ExchangeCalendar",
    "SessionTracker",
    "TradingCalendar",
    "UTCDailyCalendar",
    "calendar_from_spec",
]

_T = TypeVar("_T")


@runtime_checkable
class TradingCalendar(Protocol):
    """Anything that can tell when the session containing a moment started."""

    def session_start(self, now: datetime) -> datetime:
        """The start (aware UTC) of the session that ``now`` belongs to."""
        ...


class UTCDailyCalendar:
    """Sessions start at midnight UTC every day (24/7 markets such as crypto)."""

    def session_start(self, now: datetime) -> datetime:
        """Midnight UTC of ``now``'s day."""
        day = now.astimezone(UTC)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    def next_session_start(self, start: datetime) -> datetime:
        """The start of the session after the one that started at ``start``."""
        return self.session_start(start) + _ONE_DAY

    def describe(self) -> str:
        """The config spelling of this calendar."""
        return "utc"

    def __repr__(self) -> str:
        return "UTCDailyCalendar()"


def _parse_time(value: Any) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
        raise InvalidInputError("time", value, "must be a time of day such as '17:00'")
    raise InvalidTypeError("time", value, "must be a datetime.time or a string such as '17:00'")


def _zone(value: Any) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInputError("tz", value, "unknown time zone") from None
    raise InvalidTypeError("tz", value, "must be a time-zone name such as 'America/New_York'")


class DailyRollCalendar:
    """Sessions start every day at a local time in a time zone, e.g. 17:00 New York (FX).

    Daylight-saving changes are followed: the roll stays at 17:00 local time. On a
    spring-forward day a roll time that does not exist (02:30 in New York on 8 March 2026)
    starts the session at the first valid local moment after it, the end of the gap (03:00
    EDT). On a fall-back day a roll time that occurs twice (01:30 in New York on 1 November
    2026) starts the session at its first occurrence (``fold=0``, 01:30 EDT); the second
    one does not start another session.
    """

    def __init__(self, tz: str | ZoneInfo, time: time | str) -> None:
        self.tz = _zone(tz)
        # fold=0: an ambiguous roll time means its first occurrence, whatever the caller's
        # time object says.
        self.time = _parse_time(time).replace(fold=0)

    def _start_on(self, day: Any) -> datetime:
        local = datetime.combine(day, self.time, tzinfo=self.tz)
        start = local.astimezone(UTC)
        if start.astimezone(self.tz).replace(tzinfo=None) == local.replace(tzinfo=None):
            return start
        # The roll time falls in a gap: fold=0 read it with the offset from before the
        # gap, which lands after the gap by the gap's length. The session starts when the
        # gap ends, the instant the offset changes, which lies between the two readings.
        return _offset_change(local.replace(fold=1).astimezone(UTC), start, self.tz)

    def session_start(self, now: datetime) -> datetime:
        """The latest roll at or before ``now``."""
        local_day = now.astimezone(self.tz).date()
        start = self._start_on(local_day)
        if start > now:
            start = self._start_on(local_day - timedelta(days=1))
        return start

    def next_session_start(self, start: datetime) -> datetime:
        """The start of the session after the one that started at ``start``: the first
        roll after it (every time before that roll belongs to ``start``'s session)."""
        start = self.session_start(start)
        day = start.astimezone(self.tz).date()
        for ahead in range(1, 4):
            following = self._start_on(day + timedelta(days=ahead))
            if following > start:
                return following
        raise AssertionError(f"no roll after {start}")  # pragma: no cover

    def describe(self) -> str:
        """The config spelling of this calendar."""
        return f"roll:{self.time.strftime('%H:%M')}@{self.tz.key}"

    def __repr__(self) -> str:
        return f"DailyRollCalendar({self.tz.key!r}, {self.time.isoformat()!r})"


_MICROSECOND = timedelta(microseconds=1)


def _offset_change(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in ``(before, after]`` (UTC) whose offset in ``tz`` is the one of
    ``after``; ``before`` has the other offset."""
    target = after.astimezone(tz).utcoffset()
    low, high = before, after
    # Bisect to the microsecond (datetime's resolution): about 35 steps for an hour's gap,
    # and only on the one day a year whose roll time does not exist.
    while high - low > _MICROSECOND:
        mid = low + (high - low) / 2
        if mid.astimezone(tz).utcoffset() == target:
            high = mid
        else:
            low = mid
    return high


# The session before (or after) a time can lie far away: exchanges have closed for days
# (New York after 11 September 2001) and for months (wars). A lookup loads this much around
# the time asked, and widens the load by doubling while no session bounds it.
_EXCHANGE_PAD = timedelta(days=31)
# pandas holds times as int64 nanoseconds (1677-09-21 .. 2262-04-11): a calendar without
# bounds of its own is known inside these dates.
_PANDAS_FIRST_DAY = datetime(1678, 1, 1, tzinfo=UTC)
_PANDAS_LAST_DAY = datetime(2262, 4, 1, tzinfo=UTC)
_ONE_DAY = timedelta(days=1)


class ExchangeCalendar:
    """Sessions of a real exchange (needs the ``calendars`` extra: exchange-calendars).

    A session starts at the exchange's open; holidays and early closes are respected. Between
    a close and the next open, the last session continues (its baseline stays).

    Every date exchange-calendars knows for the exchange is answered: the range of sessions
    loaded starts as the package's default (about 20 years back, 1 year ahead) and grows to
    cover each time asked, in either direction. A time outside what the package can know
    (before the exchange's ``bound_min`` or its first session, after its ``bound_max``, or
    outside the dates pandas can hold) is refused with :class:`~haltgate.InvalidInputError`
    naming ``now``. Each answer is cached with the interval between the session's open and
    the next one, so a cached answer is only ever given for a time inside its own session.
    """

    def __init__(self, code: str) -> None:
        try:
            import exchange_calendars as xcals  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError(
                "calendar",
                f"ExchangeCalendar({code!r}) needs the 'calendars' extra: "
                "pip install 'haltgate[calendars]'",
            ) from None
        if not isinstance(code, str) or not code.strip():
            raise InvalidInputError("code", code, "must be an exchange code such as 'XNYS'")
        try:
            calendar = xcals.get_calendar(code.strip().upper())
        except Exception as exc:
            raise InvalidInputError("code", code, f"unknown exchange calendar: {exc}") from None
        self.code = code.strip().upper()
        self._xcals = xcals
        bound_min = calendar.bound_min()
        bound_max = calendar.bound_max()
        self._first_day = (
            _PANDAS_FIRST_DAY if bound_min is None else _utc_day(bound_min.to_pydatetime())
        )
        self._last_day = (
            _PANDAS_LAST_DAY if bound_max is None else _utc_day(bound_max.to_pydatetime())
        )
        self._lock = threading.Lock()
        self._load(calendar)
        self._cached: tuple[datetime, datetime] | None = None  # (session open, next open)

    def _load(self, calendar: Any) -> None:
        """Take the sessions of ``calendar`` (an exchange_calendars calendar) as loaded."""
        self._start = _utc_day(calendar.first_session.to_pydatetime())
        self._end = _utc_day(calendar.last_session.to_pydatetime())
        # int64 nanoseconds since the epoch, sorted: one binary search per lookup.
        self._opens = calendar.opens.astype("int64").to_numpy()

    def _widen(self, start: datetime, end: datetime) -> None:
        start = max(start, self._first_day)
        end = min(end, self._last_day)
        self._load(
            self._xcals.get_calendar(
                self.code,
                start=start.date().isoformat(),
                end=end.date().isoformat(),
            )
        )

    def _refuse(self, now: datetime, why: str) -> InvalidInputError:
        known = f"{self._first_day.date().isoformat()} .. {self._last_day.date().isoformat()}"
        return InvalidInputError("now", now, f"{why} ({known})")

    def session_start(self, now: datetime) -> datetime:
        """The open of the latest session that opened at or before ``now``."""
        cached = self._cached
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[0]
        import numpy as np
        import pandas as pd

        moment = now.astimezone(UTC)
        day = _utc_day(moment)
        if day < self._first_day or day > self._last_day:
            raise self._refuse(now, f"outside the dates exchange-calendars knows for {self.code}")
        with self._lock:
            # Compared after clamping to what is known: at a bound there is nothing to add.
            start = max(min(self._start, day - _EXCHANGE_PAD), self._first_day)
            end = min(max(self._end, day + _EXCHANGE_PAD), self._last_day)
            if start < self._start or end > self._end:
                self._widen(start, end)
            target = pd.Timestamp(moment).value
            pad = _EXCHANGE_PAD
            while True:
                opens = self._opens
                index = int(np.searchsorted(opens, target, side="right")) - 1
                if index < 0 and self._start > self._first_day:
                    pad *= 2
                    self._widen(day - pad, self._end)
                    continue
                if index + 1 >= len(opens) and self._end < self._last_day:
                    pad *= 2
                    self._widen(self._start, day + pad)
                    continue
                break
            if index < 0:
                raise self._refuse(now, f"before {self.code}'s first known session")
            start = _from_nanos(int(opens[index]))
            if index + 1 < len(opens):
                following = _from_nanos(int(opens[index + 1]))
            else:
                # The last session the package knows: it lasts as far as the package knows.
                following = self._last_day + _ONE_DAY
            self._cached = (start, following)
            return start

    def next_session_start(self, start: datetime) -> datetime:
        """The open of the session after the one that opened at ``start`` (for the last
        session the package knows: as far as it knows)."""
        opened = self.session_start(start)
        cached = self._cached
        if cached is not None and cached[0] == opened:
            return cached[1]
        # Another thread's lookup replaced the cache meanwhile: step a day at a time to the
        # first moment of a later session (opens are more than a day apart at most once).
        moment = opened + _ONE_DAY  # pragma: no cover
        while self.session_start(moment) == opened:  # pragma: no cover
            moment += _ONE_DAY
        return self.session_start(moment)  # pragma: no cover

    def describe(self) -> str:
        """The config spelling of this calendar."""
        return self.code

    def __repr__(self) -> str:
        return f"ExchangeCalendar({self.code!r})"


def _utc_day(moment: datetime) -> datetime:
    """Midnight UTC of ``moment``'s UTC date (a naive ``moment`` is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _from_nanos(nanos: int) -> datetime:
    """The aware UTC datetime of whole-minute nanoseconds since the epoch."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanos // 1000)


class SessionTracker:
    """The one place that decides that a new trading session began; sessions only move
    forward.

    ``session`` is the start of the session in force (``None`` before the first one).
    :meth:`new_session` answers whether ``now`` lies in a later session, and which one; a
    wall clock stepped back (a clock correction, a replay jumping back) never gives one.
    :meth:`roll` moves to that session and commits it only once what the roll must do
    (reset a baseline, clear a trip) has been recorded, so a roll that could not be recorded
    (the store refused the trip's clear) is retried by the next call. Not thread-safe on its
    own: callers hold their breaker's lock.
    """

    __slots__ = ("calendar", "session")

    def __init__(self, calendar: TradingCalendar) -> None:
        self.calendar = calendar
        self.session: datetime | None = None

    def new_session(self, now: datetime) -> datetime | None:
        """The start of the session ``now`` belongs to if that session is later than the one
        in force (or there is none yet); otherwise ``None``."""
        start = self.calendar.session_start(now)
        current = self.session
        if current is None or start > current:
            return start
        return None

    def roll(
        self,
        now: datetime,
        record: Callable[[datetime, datetime | None, _T], bool],
        context: _T,
    ) -> datetime | None:
        """Move to the session of ``now`` if it is a later one, and return its start.

        ``record(start, previous, context)`` does what the roll must (``previous`` is the
        session it leaves, ``None`` for the first one seen; ``context`` is passed through,
        e.g. the caller's event list); it runs with ``session`` already set to ``start``, so
        what it writes to a store names the new session. When it returns False (the roll
        could not be recorded) the session in force stays ``previous``, the next call tries
        again, and this returns ``None``.
        """
        # Same rule as new_session, inlined: this runs on every read of a daily-loss breaker.
        start = self.calendar.session_start(now)
        previous = self.session
        if previous is not None and start <= previous:
            return None
        self.session = start
        try:
            done = record(start, previous, context)
        except BaseException:
            self.session = previous
            raise
        if not done:
            self.session = previous
            return None
        return start

    def next_start(self) -> datetime | None:
        """The start of the session after the one in force: until then :meth:`roll` and
        :meth:`new_session` find no new session, whatever the time. ``None`` before the
        first session, or when the calendar cannot tell (it has no
        ``next_session_start``): then only asking at each time can tell."""
        session = self.session
        if session is None:
            return None
        following = getattr(self.calendar, "next_session_start", None)
        if following is None:
            return None
        result: datetime = following(session)
        return result

    def export(self) -> str | None:
        """The session in force in persisted form (ISO 8601), or ``None``."""
        return None if self.session is None else self.session.isoformat()

    def restore(self, value: str | None) -> None:
        """Adopt a session that :meth:`export` wrote (a restart, another process's state).

        Taken as given, not only forward: a breaker restored from a store must roll from the
        session its restored trip and baseline belong to."""
        self.session = None if value is None else datetime.fromisoformat(value)

    def __repr__(self) -> str:
        return f"SessionTracker({self.calendar!r}, session={self.export()!r})"


def calendar_from_spec(spec: Any) -> TradingCalendar:
    """Build a calendar from its config spelling: ``"utc"``, ``"XNYS"`` or
    ``"roll:17:00@America/New_York"``; calendar objects pass through."""
    if spec is None:
        return UTCDailyCalendar()
    if not isinstance(spec, str):
        if isinstance(spec, TradingCalendar):
            return spec
        raise InvalidTypeError("calendar", spec, "must be a calendar or a calendar name")
    text = spec.strip()
    if text.lower() == "utc":
        return UTCDailyCalendar()
    try:
        if text.lower().startswith("roll:"):
            body = text[5:]
            if "@" not in body:
                raise InvalidInputError("calendar", spec, "expected 'roll:HH:MM@Area/City'")
            at, tz = body.split("@", 1)
            return DailyRollCalendar(tz, at)
        return ExchangeCalendar(text)
    except InvalidInputError as exc:
        if exc.parameter == "calendar":
            raise
        # The caller gave one string: name it, and say which part of it is wrong.
        raise InvalidInputError(
            "calendar", spec, f"{exc.parameter} {exc.value!r}: {exc.problem}"
        ) from None
