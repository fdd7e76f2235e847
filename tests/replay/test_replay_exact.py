"""Replay's batch path against the row-by-row reference, daily closes against the previous
close, and the simulated operator's acknowledgements (SPEC §3, §9)."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haltgate import (
    BaseCircuitBreaker,
    DailyLossCircuitBreaker,
    DailyRollCalendar,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from haltgate.replay import ReplayResult, read_chunks, read_rows, replay_csv, replay_rows

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
ROLL = "roll:17:00@America/New_York"


def _replay(text: str, make: Callable[[], list[BaseCircuitBreaker]], **kw: Any) -> Any:
    breakers = make()
    result = replay_rows(read_chunks(io.StringIO(text), size=kw.pop("size", 8192)), breakers, **kw)
    return result, breakers


def _state(breakers: list[BaseCircuitBreaker]) -> list[Any]:
    """Everything a breaker would persist, plus its live counts."""
    out: list[Any] = []
    for breaker in breakers:
        snapshot = breaker.export_state()
        out.append((breaker.name, snapshot, breaker.get_trip_details()))
        if isinstance(breaker, OrderRateCircuitBreaker):
            out.append(breaker.get_order_count())
        if isinstance(breaker, ErrorRateCircuitBreaker):
            out.append((breaker.get_error_count(), breaker.get_error_categories()))
        if isinstance(breaker, DrawdownCircuitBreaker):
            out.append((breaker.get_peak(), breaker.get_current_drawdown()))
        if isinstance(breaker, DailyLossCircuitBreaker):
            out.append((breaker.get_start_of_day_value(), breaker.get_current_daily_loss()))
    return out


def assert_same(fast: ReplayResult, slow: ReplayResult, fb: list[Any], sb: list[Any]) -> None:
    assert [(e.timestamp, e.breaker, e.kind, e.reason, e.operator) for e in fast.events] == [
        (e.timestamp, e.breaker, e.kind, e.reason, e.operator) for e in slow.events
    ]
    assert fast.summary() == slow.summary()
    assert fast.halted_periods == slow.halted_periods
    assert _state(fb) == _state(sb)


# ------------------------------------------------------------------------ generated series
PCT = Decimal("0.05")
LIMIT = Decimal("300")


@st.composite
def series(draw: st.DrawFn) -> str:
    """Rows near the drawdown and daily-loss lines (within 1e-9 relative), over several
    sessions, with orders and errors."""
    n = draw(st.integers(1, 120))
    t = T0 + draw(st.integers(0, 86400))
    value = Decimal(10000)
    peak = value
    close = value
    lines = ["timestamp,portfolio_value,orders,errors"]
    steps = st.sampled_from([0, 1, 7, 30, 59, 60, 61, 600, 3600, 6 * 3600, 86399, 86400, 90000])
    eps = st.sampled_from([Decimal(0), Decimal("1e-9"), Decimal("-1e-9"), Decimal("1e-12")])
    for _ in range(n):
        t += draw(steps)
        mode = draw(st.integers(0, 5))
        if mode == 0:
            value = value * (1 + Decimal(draw(st.integers(-300, 300))) / 10000)
        elif mode == 1:  # hugging the drawdown line of the running peak
            value = (peak - PCT * peak) * (1 + draw(eps))
        elif mode == 2:  # hugging the daily-loss line of the previous value
            value = (close - LIMIT) * (1 + draw(eps))
        elif mode == 3:
            value = value * Decimal("1.08")  # a new peak
        elif mode == 4:
            value = value * Decimal("0.85")  # a crash
        value = value.quantize(Decimal("1e-14"))
        peak = max(peak, value)
        close = value
        orders = draw(st.sampled_from([0, 0, 0, 1, 2, 4]))
        errors = draw(st.sampled_from([0, 0, 0, 0, 1, 3]))
        lines.append(f"{t},{value},{orders},{errors}")
    return "\n".join(lines) + "\n"


def _setup(calendar: str, pct_loss: bool) -> Callable[[], list[BaseCircuitBreaker]]:
    def make() -> list[BaseCircuitBreaker]:
        daily = (
            DailyLossCircuitBreaker(max_daily_loss_pct="0.03", calendar=calendar)
            if pct_loss
            else DailyLossCircuitBreaker(max_daily_loss=LIMIT, calendar=calendar)
        )
        return [
            DrawdownCircuitBreaker(PCT, lookback_days="0.5"),
            daily,
            OrderRateCircuitBreaker(max_orders_per_minute=4, window_seconds=120),
            ErrorRateCircuitBreaker(max_errors=3, window_seconds=600, cooldown_seconds=60),
            DrawdownCircuitBreaker("0.2", name="wide"),
            ManualCircuitBreaker(),
        ]

    return make


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    text=series(),
    calendar=st.sampled_from(["utc", ROLL]),
    pct_loss=st.booleans(),
    size=st.sampled_from([1, 3, 16, 8192]),
    resets=st.sampled_from([(None, False), (timedelta(hours=2), False), (None, True)]),
)
def test_batches_give_the_row_by_row_events_and_states(
    text: str,
    calendar: str,
    pct_loss: bool,
    size: int,
    resets: tuple[timedelta | None, bool],
) -> None:
    make = _setup(calendar, pct_loss)
    after, at_session = resets
    kw = {"reset_after": after, "reset_at_next_session": at_session}
    fast, fb = _replay(text, make, fast=True, size=size, **kw)
    slow, sb = _replay(text, make, fast=False, **kw)
    assert_same(fast, slow, fb, sb)


@pytest.mark.parametrize(
    ("breaker", "values", "tripped_at"),
    [
        # The drawdown line of a 10000 peak at 5 %: 9500 (strictly below trips).
        ("drawdown", ["10000", "9500.00000001", "9500", "9499.9999999905"], 3),
        # The daily-loss line 300 below the previous close (a new UTC session each row).
        ("daily_loss", ["10000", "9700", "9400.00000001", "9100.00000001", "8800.00000001"], 99),
        ("daily_loss", ["10000", "9700", "9399.99999999"], 2),
    ],
)
def test_values_a_billionth_from_the_lines_are_judged_exactly(
    breaker: str, values: list[str], tripped_at: int
) -> None:
    step = 60 if breaker == "drawdown" else 86400
    lines = ["timestamp,portfolio_value"]
    lines += [f"{T0 + i * step},{value}" for i, value in enumerate(values)]
    text = "\n".join(lines) + "\n"

    def make() -> list[BaseCircuitBreaker]:
        if breaker == "drawdown":
            return [DrawdownCircuitBreaker(PCT)]
        return [DailyLossCircuitBreaker(max_daily_loss=LIMIT)]

    fast, fb = _replay(text, make, fast=True)
    slow, sb = _replay(text, make, fast=False)
    assert_same(fast, slow, fb, sb)
    trips = [e.timestamp for e in fast.events if e.kind == "tripped"]
    if tripped_at == 99:
        assert trips == []
    else:
        assert trips == [datetime.fromtimestamp(T0 + tripped_at * step, UTC)]


@pytest.mark.parametrize("seed", range(4))
def test_a_long_random_series_with_bursts(seed: int) -> None:
    rng = random.Random(seed)
    lines = ["timestamp,portfolio_value,orders,errors"]
    t, value = T0, 100_000.0
    for i in range(6000):
        t += rng.choice([1, 30, 60, 60, 60, 300, 3600])
        value *= 1 + rng.gauss(0, 0.003)
        if rng.random() < 0.004:
            value *= 0.9
        orders = 15 if i % 700 == 5 else rng.choice([0] * 12 + [1, 2])
        errors = 8 if i % 900 == 7 else 0
        lines.append(f"{t},{value:.6f},{orders},{errors}")
    text = "\n".join(lines) + "\n"
    for make in (_setup("utc", False), _setup(ROLL, True)):
        for kw in ({}, {"reset_after": timedelta(days=1)}, {"reset_at_next_session": True}):
            fast, fb = _replay(text, make, fast=True, **kw)
            slow, sb = _replay(text, make, fast=False, **kw)
            assert slow.events
            assert_same(fast, slow, fb, sb)


def test_a_custom_breaker_is_fed_row_by_row() -> None:
    class Floor(BaseCircuitBreaker):
        def can_trade(self, current_portfolio_value: Decimal) -> bool:
            if current_portfolio_value < 9000:
                self._trip("below 9000")
            return not self.is_tripped

    text = f"timestamp,portfolio_value\n{T0},10000\n{T0 + 60},9500\n{T0 + 120},8999\n"

    def make() -> list[BaseCircuitBreaker]:
        return [DrawdownCircuitBreaker("0.5"), Floor(name="floor")]

    fast, fb = _replay(text, make, fast=True)
    slow, sb = _replay(text, make, fast=False)
    assert [(e.breaker, e.kind) for e in fast.events] == [("floor", "tripped")]
    assert_same(fast, slow, fb, sb)


def test_a_subclass_deciding_in_update_loses_the_inherited_batch_path() -> None:
    class Strict(DrawdownCircuitBreaker):
        def update(self, value: Any) -> Decimal:
            return super().update(value)

    assert DrawdownCircuitBreaker.contract.batch
    assert not Strict.contract.batch


# ------------------------------------------------------------------------ daily closes
def _daily_closes(seed: int, days: int) -> tuple[str, list[Decimal]]:
    """A GOOG-like series: one close per weekday at 21:00 UTC, $100..$700 a share on a
    $500,000 book, with fat-tailed daily moves."""
    rng = random.Random(seed)
    day = datetime(2004, 8, 19, 21, 0, tzinfo=UTC)
    value = 500_000.0
    closes: list[Decimal] = []
    lines = ["timestamp,portfolio_value"]
    while len(closes) < days:
        if day.weekday() < 5:
            move = rng.gauss(0.0008, 0.02)
            if rng.random() < 0.02:
                move -= rng.uniform(0.03, 0.10)
            value = max(1000.0, value * (1 + move))
            text = f"{value:.2f}"
            closes.append(Decimal(text))
            lines.append(f"{day.isoformat()},{text}")
        day += timedelta(days=1)
    return "\n".join(lines) + "\n", closes


@pytest.mark.parametrize("seed", [2004, 2008])
def test_daily_closes_trip_against_the_previous_close(seed: int) -> None:
    text, closes = _daily_closes(seed, 1100)
    limit = Decimal(5000)
    # Independently: one trip for each close more than the limit below the one before.
    expected = [i for i in range(1, len(closes)) if closes[i - 1] - closes[i] > limit]
    assert len(expected) > 20
    for fast in (True, False):
        result = replay_rows(
            read_rows(io.StringIO(text)),
            [DailyLossCircuitBreaker(max_daily_loss=limit)],
            fast=fast,
        )
        trips = [e for e in result.events if e.kind == "tripped"]
        assert len(trips) == len(expected)
        starts = [Decimal(e.reason.split("start of day ")[1].split(",")[0]) for e in trips]
        assert starts == [closes[i - 1] for i in expected]
    # The recommended setup (daily loss of $5,000) counts them too.
    summary = replay_rows(read_rows(io.StringIO(text)), None).summary()
    assert summary["trips_by_breaker"]["daily_loss"] == len(expected)


# ------------------------------------------------------------------------ acknowledgements
def _two_crashes() -> str:
    """Hourly rows over 120 days: a 20 % crash on day 10 and another on day 80."""
    lines = ["timestamp,portfolio_value"]
    value = 100_000.0
    for hour in range(120 * 24):
        if hour in (10 * 24 + 5, 80 * 24 + 5):
            value *= 0.8
        elif hour % 24 == 0:
            value *= 1.001
        lines.append(f"{T0 + hour * 3600},{value:.2f}")
    return "\n".join(lines) + "\n"


def _drawdown_trips(result: ReplayResult) -> list[Any]:
    return [e for e in result.events if e.breaker == "drawdown" and e.kind == "tripped"]


@pytest.mark.parametrize("fast", [True, False])
def test_without_an_operator_the_second_crash_is_hidden(fast: bool) -> None:
    result = replay_rows(read_rows(io.StringIO(_two_crashes())), None, fast=fast)
    assert len(_drawdown_trips(result)) == 1
    assert result.summary()["final_states"]["drawdown"] == "TRIPPED"


@pytest.mark.parametrize("fast", [True, False])
def test_reset_after_shows_every_crash(fast: bool) -> None:
    result = replay_rows(
        read_rows(io.StringIO(_two_crashes())),
        None,
        fast=fast,
        reset_after=timedelta(days=30),
    )
    trips = _drawdown_trips(result)
    assert len(trips) == 2
    resets = [e for e in result.events if e.breaker == "drawdown" and e.kind == "reset"]
    assert resets[0].operator == "replay"
    assert resets[0].timestamp == trips[0].timestamp + timedelta(days=30)
    assert "--reset-after 30d" in (resets[0].reason or "")
    assert trips[1].timestamp == datetime.fromtimestamp(T0 + (80 * 24 + 5) * 3600, UTC)


@pytest.mark.parametrize("fast", [True, False])
def test_reset_at_next_session_shows_every_crash(fast: bool) -> None:
    result = replay_rows(
        read_rows(io.StringIO(_two_crashes())), None, fast=fast, reset_at_next_session=True
    )
    trips = _drawdown_trips(result)
    assert len(trips) == 2
    resets = [e for e in result.events if e.breaker == "drawdown" and e.kind == "reset"]
    # The next UTC session (the daily-loss breaker's calendar) after the first crash.
    assert resets[0].timestamp == datetime.fromtimestamp(T0 + 11 * 86400, UTC)
    assert resets[0].operator == "replay"


def test_reset_at_next_session_follows_the_breakers_calendar() -> None:
    text = _two_crashes()
    cal = DailyRollCalendar("America/New_York", "17:00")
    result = replay_rows(
        read_rows(io.StringIO(text)),
        [DrawdownCircuitBreaker("0.1"), DailyLossCircuitBreaker(max_daily_loss=1, calendar=cal)],
        reset_at_next_session=True,
    )
    resets = [e for e in result.events if e.breaker == "drawdown" and e.kind == "reset"]
    # Tripped on day 10 05:00 UTC (midnight in New York): the session rolls at 17:00 EST.
    assert resets[0].timestamp == datetime(2024, 1, 11, 22, 0, tzinfo=UTC)


def test_cli_flags(tmp_path: Path, run_cli: Any) -> None:
    path = tmp_path / "two.csv"
    path.write_text(_two_crashes())
    plain = run_cli("replay", str(path), "--json", "--no-progress")
    assert plain.returncode == 0, plain.stderr
    events = json.loads(plain.stdout)["events"]
    assert sum(1 for e in events if e["breaker"] == "drawdown" and e["kind"] == "tripped") == 1
    for flags in (["--reset-after", "30d"], ["--reset-at-next-session"]):
        done = run_cli("replay", str(path), "--json", "--no-progress", *flags)
        assert done.returncode == 0, done.stderr
        events = json.loads(done.stdout)["events"]
        trips = [e for e in events if e["breaker"] == "drawdown" and e["kind"] == "tripped"]
        assert len(trips) == 2
    bad = run_cli("replay", str(path), "--reset-after", "soon")
    assert bad.returncode == 2
    assert "reset_after" in bad.stderr or "duration" in bad.stderr


def test_replay_csv_takes_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text(_two_crashes())
    result = replay_csv(path, reset_after=timedelta(days=30))
    assert len(_drawdown_trips(result)) == 2
    with pytest.raises(ValueError, match="reset_after"):
        replay_csv(path, reset_after=timedelta(0))


# ------------------------------------------------------------------------ the rows
def test_values_the_breakers_would_refuse_name_their_line() -> None:
    from haltgate.replay import ReplayError

    for bad in ("1e31", "1." + "1" * 40, "inf"):
        with pytest.raises(ReplayError) as info:
            list(read_chunks(io.StringIO(f"timestamp,portfolio_value\n{T0},1\n{T0 + 1},{bad}\n")))
        assert info.value.line == 3


def test_fractional_and_offset_times_keep_their_instant() -> None:
    text = (
        "timestamp,portfolio_value\n"
        "2024-03-01T10:00:00.123457+01:00,100\n"
        "2024-03-01T09:00:01,100\n"
        "2024-03-01 09:00:02Z,100\n"
    )
    (chunk,) = read_chunks(io.StringIO(text))
    assert chunk.when(0) == datetime(2024, 3, 1, 9, 0, 0, 123457, tzinfo=UTC)
    assert chunk.when(1) == datetime(2024, 3, 1, 9, 0, 1, tzinfo=UTC)
    assert chunk.when(2) == datetime(2024, 3, 1, 9, 0, 2, tzinfo=UTC)
    assert chunk.times[1] == datetime(2024, 3, 1, 9, 0, 1, tzinfo=UTC).timestamp()


def test_replay_csv_is_the_batch_path(tmp_path: Path) -> None:
    text, _closes = _daily_closes(7, 300)
    path = tmp_path / "closes.csv"
    path.write_text(text)
    fast = replay_csv(path)
    slow = replay_csv(path, fast=False)
    assert fast.events == slow.events
    assert fast.summary() == slow.summary()


def test_the_column_reader_and_the_row_reader_agree() -> None:
    # Blocks of one row take the column-by-column reader where they can; a block of all
    # rows meets a quote, a blank line and CRLF endings and is read row by row.
    text = (
        "timestamp,portfolio_value,orders,errors\r\n"
        "2024-03-01T10:00:00,100.50,0,1\r\n"
        '2024-03-01T10:00:01,"101",2,0\r\n'
        "\r\n"
        "2024-03-01T10:00:01.250000+00:00,1e2,,0\r\n"
        "2024-03-01 10:00:02Z,99.999999999,0,0\n"
    )
    small = list(read_chunks(io.StringIO(text, newline=""), size=1))
    (large,) = read_chunks(io.StringIO(text, newline=""))

    def flat(chunks: list[Any]) -> list[Any]:
        return [c.row(i) for c in chunks for i in range(len(c))]

    assert flat(small) == flat([large])
    assert [row[0] for row in flat([large])] == [2, 3, 5, 6]
    assert [row[5:] for row in flat([large])] == [(0, 1), (2, 0), (0, 0), (0, 0)]


def test_a_users_subclass_with_its_own_time_rule_is_read_at_every_row() -> None:
    # Inherits the order-rate breaker's bound (the window has room again after 10 minutes)
    # but clears a minute after its trip: replay must not trust the inherited bound, or it
    # would skip the reads that clear it.
    class QuickClear(OrderRateCircuitBreaker):
        def _refresh_locked(self, events: list[Any]) -> None:
            if self._condition is not None and self.clock.monotonic() - self._tripped_mono >= 60:
                self._clear_locked("a minute passed", {"cause": "quick"}, events)
                return
            super()._refresh_locked(events)

    lines = ["timestamp,portfolio_value,orders"]
    lines += [f"{T0 + i * 30},1000,{5 if i == 0 else 0}" for i in range(60)]
    text = "\n".join(lines) + "\n"

    def make() -> list[BaseCircuitBreaker]:
        return [
            DrawdownCircuitBreaker("0.5"),
            QuickClear(max_orders_per_minute=3, window_seconds=600),
        ]

    fast, fb = _replay(text, make, fast=True)
    slow, sb = _replay(text, make, fast=False)
    assert [(e.breaker, e.kind, e.reason) for e in slow.events][:2] == [
        ("order_rate", "tripped", slow.events[0].reason),
        ("order_rate", "reset", "a minute passed"),
    ]
    assert_same(fast, slow, fb, sb)
