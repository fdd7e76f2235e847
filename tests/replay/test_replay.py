"""Replay: CSV parsing, trip decisions, the fast path against the per-row reference, plots."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from haltgate import (
    DailyLossCircuitBreaker,
    DrawdownCircuitBreaker,
    ErrorRateCircuitBreaker,
    ManualCircuitBreaker,
    OrderRateCircuitBreaker,
)
from haltgate.replay import (
    ReplayError,
    default_breakers,
    plot_replay,
    read_chunks,
    read_rows,
    replay_csv,
    replay_rows,
)


def _rows(text: str) -> list:
    return list(read_rows(io.StringIO(text)))


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "equity.csv"
    path.write_text(text)
    return path


# ------------------------------------------------------------------------ parsing
def test_iso_naive_is_utc_and_epoch_seconds_agree() -> None:
    iso = _rows("timestamp,portfolio_value\n2024-03-01T10:00:00,100\n")
    epoch = _rows("timestamp,portfolio_value\n1709287200,100\n")
    assert iso[0][2] == epoch[0][2] == datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp()
    offset = _rows("timestamp,portfolio_value\n2024-03-01T11:00:00+01:00,100\n")
    assert offset[0][2] == iso[0][2]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("timestamp,value\n1,2\n", 1, "portfolio_value"),
        ("timestamp,portfolio_value\n1709287200,100\n1709287260,abc\n", 3, "not a number"),
        ("timestamp,portfolio_value\n1709287200,100\n1709287260,nan\n", 3, "finite"),
        ("timestamp,portfolio_value\n2024-03-01T10:00:00,100\nyesterday,100\n", 3, "ISO-8601"),
        ("timestamp,portfolio_value\n1709287260,100\n1709287200,100\n", 3, "backwards"),
        ("timestamp,portfolio_value,orders\n1709287200,100,-1\n", 2, "negative"),
        ("timestamp,portfolio_value,errors\n1709287200,100,1.5\n", 2, "whole number"),
        ("timestamp,portfolio_value\n1709287200\n", 2, "columns"),
    ],
)
def test_csv_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ReplayError) as info:
        _rows(text)
    assert info.value.line == line
    assert f"line {line}" in str(info.value)
    assert words in str(info.value)


# ------------------------------------------------------------------------ decisions
def test_exactly_at_the_limits_does_not_trip_and_just_above_does(tmp_path: Path) -> None:
    # 50000 -> 45000 is exactly a 10 % drawdown and exactly a 5000 daily loss.
    at_limit = replay_csv(
        _csv(tmp_path, "timestamp,portfolio_value\n1709287200,50000\n1709287260,45000\n")
    )
    assert at_limit.events == []
    above = replay_csv(
        _csv(tmp_path, "timestamp,portfolio_value\n1709287200,50000\n1709287260,44999.99\n")
    )
    assert [(e.breaker, e.kind) for e in above.events] == [
        ("drawdown", "tripped"),
        ("daily_loss", "tripped"),
    ]
    assert above.events[0].timestamp == datetime(2024, 3, 1, 10, 1, tzinfo=UTC)
    summary = above.summary()
    assert summary["trips"] == 2
    assert summary["trading_allowed_at_end"] is False
    assert summary["final_states"]["drawdown"] == "TRIPPED"


def test_daily_loss_clears_at_the_next_utc_session(tmp_path: Path) -> None:
    text = (
        "timestamp,portfolio_value\n"
        "2024-03-01T09:00:00,100000\n"
        "2024-03-01T15:00:00,94000\n"  # 6000 loss > 5000, 6 % drawdown (no drawdown trip)
        "2024-03-01T23:59:59,94500\n"
        "2024-03-02T00:00:00,94600\n"
    )
    result = replay_csv(_csv(tmp_path, text))
    assert [(e.timestamp.isoformat(), e.breaker, e.kind) for e in result.events] == [
        ("2024-03-01T15:00:00+00:00", "daily_loss", "tripped"),
        ("2024-03-02T00:00:00+00:00", "daily_loss", "reset"),
    ]
    assert result.halted_periods == [
        (datetime(2024, 3, 1, 15, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC))
    ]
    assert result.summary()["halted_seconds"] == 9 * 3600


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,portfolio_value\n1709287200,100\n")
    assert replay_csv(path).rows == 1


def test_order_column_trips_the_rate_breaker_and_refuses(tmp_path: Path) -> None:
    text = "timestamp,portfolio_value,orders\n1709287200,100000,12\n1709287500,100000,1\n"
    result = replay_csv(_csv(tmp_path, text))
    kinds = [(e.breaker, e.kind) for e in result.events]
    assert kinds[0] == ("order_rate", "tripped")
    assert result.orders_admitted == 10 + 1  # the window emptied before the second row
    assert result.orders_refused == 2
    assert ("order_rate", "reset") in kinds


# ------------------------------------------------------------------------ fast == reference
def _random_series(seed: int, n: int) -> str:
    rng = random.Random(seed)
    t = 1_709_251_200  # 2024-03-01 00:00 UTC
    value = 100_000.0
    lines = ["timestamp,portfolio_value,orders,errors"]
    for i in range(n):
        t += rng.choice([1, 7, 30, 59, 60, 61, 600, 3600])
        step = rng.gauss(0, 0.004)
        if rng.random() < 0.003:
            step -= rng.uniform(0.03, 0.12)  # a crash
        value = max(1.0, value * (1 + step))
        if rng.random() < 0.01:
            value = round(value, 0)
        orders = rng.choice([0] * 20 + [1, 2, 5, 11])
        errors = rng.choice([0] * 30 + [1, 3])
        if i % 97 == 0:
            lines.append(f"{t},{value:.2f},{orders},{errors}")
            lines.append(f"{t},{value:.2f},0,0")  # a repeated timestamp
        else:
            lines.append(f"{t},{value:.4f},{orders},{errors}")
    return "\n".join(lines) + "\n"


def _setups() -> list:
    return [
        default_breakers,
        lambda: [
            DrawdownCircuitBreaker(max_drawdown_pct="0.03", lookback_days=1),
            DailyLossCircuitBreaker(max_daily_loss_pct="0.02"),
            OrderRateCircuitBreaker(max_orders_per_minute=5, window_seconds=120),
            ErrorRateCircuitBreaker(max_errors=3, window_seconds=300),
            ManualCircuitBreaker(),
        ],
        lambda: [
            DrawdownCircuitBreaker(max_drawdown_pct="0.05", lookback_days="0.05"),
            DrawdownCircuitBreaker(max_drawdown_pct="0.02", name="tight"),
        ],
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("setup", range(3))
def test_fast_path_gives_exactly_the_reference_events(seed: int, setup: int) -> None:
    text = _random_series(seed, 3000)
    make = _setups()[setup]
    fast = replay_rows(read_rows(io.StringIO(text)), make(), fast=True)
    slow = replay_rows(read_rows(io.StringIO(text)), make(), fast=False)
    assert len(slow.events) > 0
    assert fast.events == slow.events
    assert fast.summary() == slow.summary()


@pytest.mark.parametrize("block", [1, 2, 7, 64])
def test_fast_path_is_exact_across_chunks(block: int) -> None:
    text = _random_series(9, 1500)
    for make in _setups():
        fast = replay_rows(read_chunks(io.StringIO(text), size=block), make(), fast=True)
        slow = replay_rows(read_rows(io.StringIO(text)), make(), fast=False)
        assert fast.events == slow.events
        assert fast.summary() == slow.summary()


def test_fast_path_matches_on_values_hugging_the_threshold() -> None:
    # Values within a hair of the 10 % line, in every minute, rising and falling.
    lines = ["timestamp,portfolio_value"]
    t = 1_709_251_200
    lines.append(f"{t},100000")
    rng = random.Random(5)
    for _ in range(2000):
        t += rng.choice([10, 30, 60])
        lines.append(f"{t},{90000 + rng.choice([-0.01, 0, 0.01, 5000, 20]):.2f}")
    text = "\n".join(lines) + "\n"
    fast = replay_rows(read_rows(io.StringIO(text)), [DrawdownCircuitBreaker("0.10")], fast=True)
    slow = replay_rows(read_rows(io.StringIO(text)), [DrawdownCircuitBreaker("0.10")], fast=False)
    assert fast.events == slow.events
    assert len(fast.events) == 1
    assert fast.events[0].reason is not None and "89999.99" in fast.events[0].reason


def test_breaker_with_its_own_clock_is_refused() -> None:
    from haltgate import ManualClock

    with pytest.raises(ReplayError):
        replay_rows(
            read_rows(io.StringIO("timestamp,portfolio_value\n1,1\n")),
            [DrawdownCircuitBreaker("0.1", clock=ManualClock())],
        )


# ------------------------------------------------------------------------ output
def test_json_output_shape_via_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from haltgate.cli import main

    path = _csv(
        tmp_path,
        "timestamp,portfolio_value\n2024-03-01T10:00:00,100000\n2024-03-01T10:01:00,80000\n",
    )
    assert main(["replay", str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"events", "summary"}
    assert payload["events"][0] == {
        "timestamp": "2024-03-01T10:01:00+00:00",
        "breaker": "drawdown",
        "kind": "tripped",
        "reason": payload["events"][0]["reason"],
    }
    assert "Drawdown 20.0000%" in payload["events"][0]["reason"]
    assert payload["summary"]["rows"] == 2


def test_human_output_and_bad_csv_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from haltgate.cli import main

    path = _csv(tmp_path, "timestamp,portfolio_value\n1709287200,100000\n1709287260,80000\n")
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "TRIPPED  drawdown" in out
    assert "TRADING HALTED" in out
    bad = _csv(tmp_path, "timestamp,portfolio_value\n1709287200,100000\n1709287260,oops\n")
    assert main(["replay", str(bad)]) == 2
    assert "line 3" in capsys.readouterr().err
    empty = _csv(tmp_path, "timestamp,portfolio_value\n")
    assert main(["replay", str(empty)]) == 2
    assert "no data rows" in capsys.readouterr().err


def test_plot_is_a_png_with_halted_periods(tmp_path: Path) -> None:
    text = _random_series(11, 20000)
    result = replay_rows(read_rows(io.StringIO(text)), None, keep_series=True)
    assert result.halted_periods and result.peaks
    out = Path("artifacts") / "replay-plot.png"
    out.parent.mkdir(exist_ok=True)
    plot_replay(result, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000


def test_decimal_values_reach_the_breakers_exactly() -> None:
    text = "timestamp,portfolio_value\n1709287200,0.3\n1709287260,0.27\n1709287320,0.269999999999\n"
    result = replay_rows(
        read_rows(io.StringIO(text)), [DrawdownCircuitBreaker(max_drawdown_pct=Decimal("0.1"))]
    )
    assert [e.timestamp.minute for e in result.events] == [2]


def test_plotted_peak_is_the_look_back_high_of_every_row() -> None:
    # A short look-back, so old highs must leave the plotted peak too.
    text = _random_series(5, 4000)
    breakers = [DrawdownCircuitBreaker(Decimal("0.5"), lookback_days=1)]
    result = replay_rows(read_rows(io.StringIO(text)), breakers, keep_series=True)
    steps = iter(result.peaks)
    current = next(steps)
    upcoming = next(steps, None)
    times, values = list(result.times), list(result.values)
    for i, ts in enumerate(times):
        while upcoming is not None and upcoming[0] <= ts:
            current, upcoming = upcoming, next(steps, None)
        # The breaker keeps per-minute maxima: a minute counts while any part of it is
        # inside the day, so the high is over rows from the start of that minute on.
        horizon = (int((ts - 86400) // 60)) * 60
        window = zip(times[: i + 1], values[: i + 1], strict=True)
        expected = max(v for t, v in window if t >= horizon)
        assert current[1] == pytest.approx(expected), (ts, current, expected)
