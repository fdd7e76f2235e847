"""The replay plot's content (not its pixels): the figure ``plot_replay`` saves is caught
and its artists read back — the peak line, the trip labels, the reset markers, the axes."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from replay_support import load

from haltgate import DailyLossCircuitBreaker, DrawdownCircuitBreaker
from haltgate.replay import ReplayResult, plot_replay, read_rows, replay_rows

pytest.importorskip("matplotlib")

import matplotlib.dates as mdates
from matplotlib.figure import Figure

series = load()


def _figure(
    result: ReplayResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """Draw ``result`` with plot_replay and return the saved figure and its axes."""
    saved: list[Figure] = []
    real = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    out = tmp_path / "plot.png"
    plot_replay(result, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = saved
    (ax,) = fig.axes
    return fig, ax


def _line(ax: Any, prefix: str) -> Any:
    (line,) = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith(prefix)]
    return line


def _num(ts: float) -> float:
    return float(mdates.date2num(datetime.fromtimestamp(ts, UTC)))


def _two_daily_loss_trips() -> ReplayResult:
    """Hourly rows over ten days; a 6,000 loss on day 2 and on day 8 (two trips of the
    daily-loss breaker, each cleared by the next session)."""
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    lines = ["timestamp,portfolio_value"]
    for hour in range(10 * 24):
        day, h = divmod(hour, 24)
        value = 100_000 - (6_000 if day in (2, 8) and h >= 12 else 0)
        lines.append(f"{(t0 + timedelta(hours=hour)).isoformat()},{value}")
    breakers = [DrawdownCircuitBreaker("0.50"), DailyLossCircuitBreaker(max_daily_loss=5000)]
    return replay_rows(read_rows(io.StringIO("\n".join(lines) + "\n")), breakers, keep_series=True)


def test_the_peak_line_runs_to_the_last_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Daily rows of 2024: the last change of the peak is weeks before the last row.
    result = replay_rows(read_rows(io.StringIO(series.daily_1y())), keep_series=True)
    assert result.peaks[-1][0] < result.times[-1] - 7 * 86400
    _, ax = _figure(result, tmp_path, monkeypatch)
    peak = _line(ax, "peak")
    assert peak.get_xdata()[-1] == pytest.approx(_num(result.times[-1]), abs=1e-6)
    assert peak.get_ydata()[-1] == result.peaks[-1][1]
    equity = _line(ax, "portfolio value")
    assert equity.get_xdata()[-1] == pytest.approx(_num(result.times[-1]), abs=1e-6)


def test_the_equity_line_keeps_the_last_rows_when_down_sampled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())
    lines = ["timestamp,portfolio_value"] + [f"{t0 + 60 * i},{100000 + i % 7}" for i in range(9001)]
    result = replay_rows(read_rows(io.StringIO("\n".join(lines) + "\n")), keep_series=True)
    _, ax = _figure(result, tmp_path, monkeypatch)
    equity = _line(ax, "portfolio value")
    assert equity.get_xdata()[-1] == pytest.approx(_num(result.times[-1]), abs=1e-6)
    assert _line(ax, "peak").get_xdata()[-1] == pytest.approx(_num(result.times[-1]), abs=1e-6)


def test_every_trip_is_labelled_and_every_reset_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _two_daily_loss_trips()
    kinds = [(e.breaker, e.kind, e.timestamp.day) for e in result.events]
    assert kinds == [
        ("daily_loss", "tripped", 3),
        ("daily_loss", "reset", 4),
        ("daily_loss", "tripped", 9),
        ("daily_loss", "reset", 10),
    ]
    _, ax = _figure(result, tmp_path, monkeypatch)
    labels = sorted(text.get_text() for text in ax.texts)
    assert labels == ["daily_loss 2024-03-03", "daily_loss 2024-03-09"]
    # Each label points at its own trip (the arrow ends at the trip's time).
    trip_times = sorted(_num(e.timestamp.timestamp()) for e in result.events if e.kind == "tripped")
    assert sorted(text.xy[0] for text in ax.texts) == pytest.approx(trip_times, abs=1e-6)
    (resets,) = [c for c in ax.collections if c.get_label() == "reset"]
    reset_times = [_num(e.timestamp.timestamp()) for e in result.events if e.kind == "reset"]
    assert sorted(resets.get_offsets()[:, 0]) == pytest.approx(reset_times, abs=1e-6)
    (trips,) = [c for c in ax.collections if str(c.get_label()).startswith("trip")]
    assert len(trips.get_offsets()) == 2


def test_axes_read_as_money_and_dates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = replay_rows(read_rows(io.StringIO(series.monthly_30y())), keep_series=True)
    _, ax = _figure(result, tmp_path, monkeypatch)
    formatter = ax.yaxis.get_major_formatter()
    assert formatter(1_500_000, 0) == "1,500,000"
    assert formatter(250_000, 0) == "250,000"
    assert ax.yaxis.get_offset_text().get_text() == ""  # never a "1e6" above the axis
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    # A thirteenfold rise over 30 years is drawn on a log scale, so the early crashes
    # stay visible next to the late highs.
    assert ax.get_yscale() == "log"
    from haltgate.replay.plot import money_label

    assert money_label(12.5) == "12.50"
    assert money_label(-3000) == "-3,000"


def test_labels_of_trips_close_together_do_not_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = replay_rows(read_rows(io.StringIO(series.daily_1y())), keep_series=True)
    fig, ax = _figure(result, tmp_path, monkeypatch)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(fig).get_renderer()  # plot_replay closed the figure's own
    fig.draw(renderer)
    # The text's own box (an annotation's extent would include its line to the marker).
    boxes = [Text.get_window_extent(text, renderer) for text in ax.texts]
    # One label per trip: two order-rate trips three days apart, a drawdown trip and the
    # daily-loss trips (each close judged against the previous one), some on one day.
    trips = [e for e in result.events if e.kind in ("tripped", "halted")]
    assert len(trips) == 9
    assert len(boxes) == len(trips)
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert not first.overlaps(second)


def test_a_burst_of_trips_shares_a_label_that_counts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 order-rate trips within 30 hours, then 60 quiet days: 30 separate labels cannot
    # fit over those hours, one label that counts them can.
    from haltgate import OrderRateCircuitBreaker

    t0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())
    lines = ["timestamp,portfolio_value,orders"]
    lines += [f"{t0 + 3600 * i},100000,{11 if i < 30 else 0}" for i in range(60 * 24)]
    breakers = [OrderRateCircuitBreaker(max_orders_per_minute=10)]
    result = replay_rows(
        read_rows(io.StringIO("\n".join(lines) + "\n")), breakers, keep_series=True
    )
    assert sum(e.kind == "tripped" for e in result.events) == 30
    _, ax = _figure(result, tmp_path, monkeypatch)
    assert [text.get_text() for text in ax.texts] == ["order_rate x30 from 2024-03-01"]


def test_within_a_few_days_a_label_gives_the_time_of_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "timestamp,portfolio_value\n2024-03-01T10:00,100000\n2024-03-01T10:01,80000\n"
    result = replay_rows(read_rows(io.StringIO(text)), keep_series=True)
    _, ax = _figure(result, tmp_path, monkeypatch)
    assert sorted(t.get_text() for t in ax.texts) == [
        "daily_loss 03-01 10:01",
        "drawdown 03-01 10:01",
    ]
