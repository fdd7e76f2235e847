"""What ``haltgate replay`` prints: the limits and calendar in effect, UTC times, warnings
about rows too sparse for a breaker, and halted spans a person can read."""

from __future__ import annotations

import io
import json
import random
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_support import load

from haltgate import DailyLossCircuitBreaker, DrawdownCircuitBreaker, ManualCircuitBreaker
from haltgate.calendars import DailyRollCalendar, UTCDailyCalendar, calendar_from_spec
from haltgate.config import load_config
from haltgate.replay import print_report, read_rows, replay_rows

RunCli = Callable[..., subprocess.CompletedProcess[str]]
series = load()
_T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _times(*offsets_days: float) -> list[float]:
    return [(_T0 + timedelta(days=d)).timestamp() for d in offsets_days]


def _lines(text: str) -> list[str]:
    """The lines of ``text`` with runs of spaces made one (column widths vary)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------ the header
def test_header_shows_the_configured_limits_and_calendar(tmp_path: Path, run_cli: RunCli) -> None:
    config = _write(
        tmp_path,
        "haltgate.toml",
        'calendar = "roll:17:00@America/New_York"\n'
        '[[breakers]]\ntype = "drawdown"\nmax_drawdown_pct = "0.25"\nlookback_days = 90\n'
        '[[breakers]]\ntype = "daily_loss"\nname = "day"\nmax_daily_loss_pct = "0.02"\n',
    )
    csv = _write(
        tmp_path,
        "eq.csv",
        "timestamp,portfolio_value\n2024-03-01T10:00,100000\n2024-03-01T10:01,70000\n",
    )
    done = run_cli("--config", str(config), "replay", str(csv))
    assert done.returncode == 0, done.stderr
    head = _lines(done.stdout.split("\n\n")[0])
    assert head[0] == f"config: {config}"
    assert head[1:] == [
        "limits in effect:",
        "drawdown max_drawdown_pct=0.25, lookback_days=90",
        "day (daily_loss) max_daily_loss_pct=0.02",
        "calendar: roll:17:00@America/New_York (day)",
        "times: UTC",
    ]
    # Times are labelled UTC: in the events and in the summary.
    assert "2024-03-01 10:01:00 UTC  TRIPPED  drawdown" in done.stdout
    assert "(2024-03-01 10:00:00 UTC .. 2024-03-01 10:01:00 UTC)" in done.stdout

    plain = run_cli("replay", str(csv))
    assert _lines(plain.stdout.split("\n\n")[0]) == [
        "config: none: the guide's recommended minimum setup (--config FILE for yours)",
        "limits in effect:",
        "drawdown max_drawdown_pct=0.10, lookback_days=30",
        "daily_loss max_daily_loss=5000",
        "order_rate max_orders_per_minute=10, window_seconds=60, cooldown_seconds=0",
        "manual no limit: halted only by an operator",
        "calendar: utc (daily_loss)",
        "times: UTC",
    ]


def test_json_summary_carries_limits_calendars_and_warnings(
    tmp_path: Path, run_cli: RunCli
) -> None:
    config = _write(
        tmp_path,
        "haltgate.toml",
        '[[breakers]]\ntype = "drawdown"\nmax_drawdown_pct = "0.10"\n'
        '[[breakers]]\ntype = "daily_loss"\nmax_daily_loss = "5000"\ncalendar = "utc"\n',
    )
    csv = _write(tmp_path, "monthly.csv", series.monthly_30y())
    done = run_cli("--config", str(config), "replay", str(csv), "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload) == {"events", "summary"}
    summary = payload["summary"]
    assert summary["rows"] == 360  # the summary's own fields are all still there
    assert summary["config"] == str(config)
    assert summary["times"] == "UTC"
    assert summary["limits"] == [
        {
            "breaker": "drawdown",
            "type": "drawdown",
            "settings": {"max_drawdown_pct": "0.10", "lookback_days": "30"},
        },
        {
            "breaker": "daily_loss",
            "type": "daily_loss",
            "settings": {"max_daily_loss": "5000", "calendar": "utc"},
        },
    ]
    assert summary["calendars"] == {"daily_loss": "utc"}
    assert [w["breaker"] for w in summary["warnings"]] == ["drawdown", "daily_loss"]
    # The same warnings reach a person on stderr; stdout stays one JSON object.
    assert done.stderr.count("warning: rows too sparse for") == 2


def test_every_configured_setting_is_shown_as_the_file_gives_it(tmp_path: Path) -> None:
    from haltgate.config import breaker_settings, starter_config

    path = _write(tmp_path, "haltgate.toml", starter_config())
    config = load_config(path)
    for spec, breaker in zip(config.breakers, config.build_breakers(), strict=True):
        shown = breaker_settings(breaker)
        for key, value in spec.kwargs.items():
            if key == "calendar":
                assert shown[key] == calendar_from_spec(value).describe()  # type: ignore[attr-defined]
            else:
                assert Decimal(str(shown[key])) == Decimal(str(value)), (spec.name, key)


# ------------------------------------------------------------------------ warnings
def test_monthly_rows_warn_for_drawdown_and_daily_loss(tmp_path: Path, run_cli: RunCli) -> None:
    # The 2000-2002 slide is in the series, but a 30-day look-back over monthly rows
    # never holds an earlier high: nothing trips, and the replay must say why.
    csv = _write(tmp_path, "monthly.csv", series.monthly_30y())
    done = run_cli("replay", str(csv))
    assert done.returncode == 0, done.stderr
    assert "TRIPPED  drawdown" not in done.stdout
    assert "warning: rows too sparse for drawdown: the median spacing of the rows (31.0 days)" in (
        done.stderr
    )
    assert "lookback_days=30" in done.stderr
    assert (
        "warning: rows too sparse for daily_loss: 360 of 360 sessions (calendar utc) hold a "
        "single row" in done.stderr
    )
    assert "warning" not in done.stdout.split("summary")[0]  # warnings go to stderr
    assert "warnings:        2: rows too sparse for drawdown, daily_loss" in done.stdout


def test_dense_rows_do_not_warn(tmp_path: Path, run_cli: RunCli) -> None:
    lines = ["timestamp,portfolio_value"]
    for minute in range(3 * 1440):
        lines.append(f"{int(_T0.timestamp()) + 60 * minute},100000")
    done = run_cli("replay", str(_write(tmp_path, "m.csv", "\n".join(lines) + "\n")), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["warnings"] == []
    assert "warning" not in done.stderr


def test_drawdown_warning_is_at_or_above_the_look_back() -> None:
    from haltgate.replay.sparsity import sparse_rows

    breaker = [DrawdownCircuitBreaker("0.1", lookback_days=30)]
    at = _times(0, 30, 60, 90, 120)
    assert [w.breaker for w in sparse_rows(at, breaker)] == ["drawdown"]
    below = _times(0, 29.9, 59.8, 89.7, 119.6)
    assert sparse_rows(below, breaker) == []
    # The median, not the mean: one long gap among daily rows does not warn...
    assert sparse_rows(_times(0, 1, 2, 3, 400, 401, 402), breaker) == []
    # ...and a few dense rows among monthly ones do not hide the sparseness.
    mixed = _times(0, 31, 62, 93, 93.01, 124, 155, 186)
    assert [w.breaker for w in sparse_rows(mixed, breaker)] == ["drawdown"]


def test_daily_loss_warning_counts_sessions_of_one_row() -> None:
    from haltgate.replay.sparsity import sparse_rows

    breaker = [DailyLossCircuitBreaker(max_daily_loss=100)]
    daily = _times(*range(10))
    found = sparse_rows(daily, breaker)
    assert [w.breaker for w in found] == ["daily_loss"]
    assert "10 of 10 sessions (calendar utc)" in found[0].message
    # Two rows a day: every session can see a loss.
    assert sparse_rows(_times(*[d + h for d in range(10) for h in (0.1, 0.6)]), breaker) == []
    # The breaker's own calendar decides the sessions: every other day, rows at 16:30 and
    # 17:30 New York time share a UTC day but straddle a 17:00 New York roll.
    pairs = [
        datetime(2024, 1, 8 + d, h, 30, tzinfo=UTC).timestamp()
        for d in range(0, 10, 2)
        for h in (21, 22)
    ]
    assert sparse_rows(pairs, breaker) == []
    rolled = [DailyLossCircuitBreaker(max_daily_loss=100, calendar="roll:17:00@America/New_York")]
    found = sparse_rows(pairs, rolled)
    assert "10 of 10 sessions (calendar roll:17:00@America/New_York)" in found[0].message


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=3 * 86400), min_size=1, max_size=120),
    roll=st.booleans(),
)
def test_session_sizes_match_one_row_at_a_time(gaps: list[int], roll: bool) -> None:
    from haltgate.replay.sparsity import _session_sizes

    calendar = DailyRollCalendar("America/New_York", "17:00") if roll else UTCDailyCalendar()
    times: list[float] = []
    t = _T0.timestamp()
    for gap in gaps:
        t += gap
        times.append(t)
    expected: list[int] = []
    previous = None
    for ts in times:
        start = calendar.session_start(datetime.fromtimestamp(ts, UTC))
        if start == previous:
            expected[-1] += 1
        else:
            expected.append(1)
            previous = start
    assert list(_session_sizes(times, calendar)) == expected


# ------------------------------------------------------------------------ durations
@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30, "30 s"),
        (90, "1.5 min"),
        (9 * 3600, "9.0 h"),
        (47.9 * 3600, "47.9 h"),
        (48 * 3600, "2.0 days"),
        (194232 * 3600, "8,093.0 days (22.2 years)"),
    ],
)
def test_durations_read_in_the_unit_a_person_uses(seconds: float, text: str) -> None:
    from haltgate.replay.report import format_duration

    assert format_duration(seconds) == text


def test_a_long_halt_prints_in_days() -> None:
    lines = ["timestamp,portfolio_value", "2000-01-01T00:00:00,100", "2000-01-02T00:00:00,50"]
    lines += [f"{2000 + y}-06-01T00:00:00,60" for y in range(1, 4)]
    result = replay_rows(read_rows(io.StringIO("\n".join(lines) + "\n")))
    out = io.StringIO()
    print_report(result, out)
    halted = next(line for line in out.getvalue().splitlines() if "halted:" in line)
    assert "1,246.0 days (3.4 years)" in halted
    assert " h " not in halted


def test_print_report_without_a_setup_keeps_its_old_form() -> None:
    text = "timestamp,portfolio_value\n1709287200,100000\n1709287260,80000\n"
    result = replay_rows(read_rows(io.StringIO(text)), [ManualCircuitBreaker()])
    out = io.StringIO()
    print_report(result, out)
    assert out.getvalue().startswith("no breaker tripped\n")


def test_a_breaker_without_known_settings_says_so() -> None:
    from haltgate import BaseCircuitBreaker, CircuitBreakerType
    from haltgate.replay.report import replay_setup

    class Custom(BaseCircuitBreaker):
        def __init__(self) -> None:
            super().__init__(CircuitBreakerType.CUSTOM, name="mine")

    out = io.StringIO()
    result = replay_rows(read_rows(io.StringIO("timestamp,portfolio_value\n1,1\n")), [Custom()])
    print_report(result, out, setup=replay_setup([Custom(), ManualCircuitBreaker()]))
    lines = _lines(out.getvalue())
    assert "mine (custom) settings not known" in lines
    assert "manual no limit: halted only by an operator" in lines
    assert "calendar: none (no breaker follows trading sessions)" in lines


def test_record_times_passes_the_rows_through_and_keeps_their_times() -> None:
    from haltgate.replay.sparsity import record_times

    rng = random.Random(3)
    t = int(_T0.timestamp())
    lines = ["timestamp,portfolio_value"]
    for _ in range(500):
        t += rng.choice([60, 86400, 40 * 86400])
        lines.append(f"{t},{rng.uniform(90, 110):.2f}")
    text = "\n".join(lines) + "\n"
    recorded: list[float] = []
    replay_rows(record_times(read_rows(io.StringIO(text)), recorded))
    assert recorded == [row[2] for row in read_rows(io.StringIO(text))]


def test_a_calendar_that_cannot_place_a_row_is_reported_not_raised() -> None:
    from haltgate.errors import InvalidInputError
    from haltgate.replay.sparsity import sparse_rows

    class Refusing:
        def session_start(self, now: datetime) -> datetime:
            raise InvalidInputError("now", now, "outside the dates this calendar knows")

    breaker = DailyLossCircuitBreaker(max_daily_loss=100, calendar=Refusing())
    (found,) = sparse_rows(_times(0, 1), [breaker])
    assert found.message.startswith("sessions of daily_loss not checked: ")
