"""The replay plot (extra ``plot``): equity, peak, halted periods, trips and resets.

What the plot promises (SPEC §9): the peak line runs to the last row, every trip has a
marker and a label (a breaker's second trip too), every reset has a marker, the y-axis
reads as money (``1,500,000``, never ``1e6``) and the x-axis as dates (UTC). Labels sit in
a band above the curve, on as many rows as needed so that neighbours do not overlap.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .result import ReplayResult

__all__ = ["money_label", "plot_replay"]

_DAY = 86400.0
_TRIP_KINDS = ("tripped", "halted")
_LABEL_FONT = 8.5
_LABEL_ROWS = 6  # label rows in the band above the curve before labels may overlap
_BAND = 0.22  # fraction of the axes height kept free above the curve for the labels
_LOG_RATIO = 10.0
_TRIP_COLOURS = (
    "#d62728",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
)  # a series that grows tenfold is drawn on a log scale


def money_label(value: float) -> str:
    """A y-axis value as money: thousands separated, cents only when there are any
    (``1500000`` -> ``"1,500,000"``, ``12.5`` -> ``"12.50"``)."""
    if abs(value - round(value)) < 1e-9 * max(1.0, abs(value)):
        return f"{round(value):,}"
    return f"{value:,.2f}"


def _levels(xs: list[float], widths: list[float], rows: int) -> list[int] | None:
    """Label rows: each label (sorted by x) takes the lowest row where it does not overlap
    the previous label of that row; ``None`` when some label finds no free row."""
    ends = [float("-inf")] * rows
    levels = []
    for x, width in zip(xs, widths, strict=True):
        free = [i for i in range(rows) if ends[i] <= x - width / 2]
        if not free:
            return None
        ends[free[0]] = x + width / 2
        levels.append(free[0])
    return levels


def plot_replay(result: ReplayResult, path: str | Path, *, title: str | None = None) -> None:
    """Draw the replay to a PNG at ``path`` (see the module docstring for what it shows)."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plot", "--plot needs the 'plot' extra: pip install 'haltgate[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 6.5), dpi=110)
    try:
        _draw(result, fig, title)
        fig.savefig(path)
    finally:
        plt.close(fig)


def _label_trips(ax: Any, fig: Any, trips: list[Any], trip_x: Any, trip_y: Any, px: Any) -> None:
    """Text labels in the band above the curve, each joined to its trip's marker.

    Each trip gets its own label (breaker and date) when all fit on the rows of the band;
    else trips of one breaker packed closer than a label's width share one label
    (``order_rate x12 from 2024-03-01``); then, if still needed, the dates are left out;
    when even that cannot fit (hundreds of trips), no text is drawn: the markers' colours
    and the legend still say whose each trip is.
    """
    import numpy as np

    span = np.concatenate([px, trip_x])  # the series, or the trips alone when none is kept
    left, right = float(span.min()), float(span.max())
    unit = ((right - left) or 1.0) / (float(fig.get_figwidth()) * 72 * 0.88)  # x per point

    # Dates name a trip over a long series; within a few days the time of day does.
    stamp = "%Y-%m-%d" if right - left >= 3 else "%m-%d %H:%M"

    def width(text: str) -> float:  # estimated from the length and the font
        return (len(text) * _LABEL_FONT * 0.62 + 6) * unit

    order = sorted(range(len(trips)), key=lambda i: float(trip_x[i]))
    for grouped, dated in ((False, True), (True, True), (True, False)):
        groups: list[list[int]] = []
        latest: dict[str, list[int]] = {}
        for i in order:
            name = trips[i].breaker
            group = latest.get(name) if grouped else None
            if group is not None and float(trip_x[i] - trip_x[group[-1]]) < width(name + " x00"):
                group.append(i)
            else:
                group = [i]
                groups.append(group)
                latest[name] = group
        texts = []
        for group in groups:
            first = trips[group[0]]
            text = first.breaker if len(group) == 1 else f"{first.breaker} x{len(group)}"
            if dated:
                when = first.timestamp.astimezone(UTC).strftime(stamp)
                text += f" {when}" if len(group) == 1 else f" from {when}"
            texts.append(text)
        widths = [width(t) for t in texts]
        # A label near an edge is moved inwards; its line still reaches the marker.
        xs = [
            min(max(float(trip_x[g].mean()), left + w / 2), right - w / 2)
            for g, w in zip(groups, widths, strict=True)
        ]
        placed = sorted(range(len(groups)), key=lambda k: xs[k])
        levels = _levels([xs[k] for k in placed], [widths[k] for k in placed], _LABEL_ROWS)
        if levels is not None:
            break
    else:
        return
    row_height = _BAND / (_LABEL_ROWS + 0.5)
    for k, level in zip(placed, levels, strict=True):
        target = groups[k][len(groups[k]) // 2]
        ax.annotate(
            texts[k],
            xy=(float(trip_x[target]), float(trip_y[target])),
            xycoords="data",
            xytext=(xs[k], 0.985 - row_height * level),
            textcoords=("data", "axes fraction"),
            ha="center",
            va="top",
            fontsize=_LABEL_FONT,
            color="#8b0000",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            arrowprops={"arrowstyle": "-", "color": "#8b0000", "alpha": 0.35, "lw": 0.7},
        )


def _draw(result: ReplayResult, fig: Any, title: str | None) -> None:
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax = fig.add_subplot()
    times = np.frombuffer(result.times, dtype=np.float64)
    values = np.frombuffer(result.values, dtype=np.float64)
    epoch = float(mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC)))  # type: ignore[no-untyped-call]
    x = times / _DAY + epoch
    # Down-sample to a min/max envelope so a million points draw quickly and spikes show.
    if len(x) > 8000:
        step = len(x) // 4000
        cut = (len(x) // step) * step
        xs = x[:cut].reshape(-1, step)
        vs = values[:cut].reshape(-1, step)
        px = np.concatenate([np.repeat(xs[:, 0], 2), x[cut:]])
        pv = np.concatenate(
            [np.column_stack([vs.max(axis=1), vs.min(axis=1)]).ravel(), values[cut:]]
        )
    else:
        px, pv = x, values
    ax.plot(px, pv, color="#1f4e9c", linewidth=1.0, label="portfolio value")
    if result.peaks and len(times):
        pk = np.array(result.peaks)
        # Steps hold each peak until the next change: the last one holds to the last row.
        peak_x = np.append(pk[:, 0], times[-1]) / _DAY + epoch
        peak_y = np.append(pk[:, 1], pk[-1, 1])
        ax.plot(
            peak_x,
            peak_y,
            color="#7a7a7a",
            linestyle="--",
            linewidth=1.0,
            drawstyle="steps-post",
            label="peak (drawdown look-back)",
        )
    for i, (start, end) in enumerate(result.halted_periods):
        ax.axvspan(
            mdates.date2num(start),  # type: ignore[no-untyped-call]
            mdates.date2num(end),  # type: ignore[no-untyped-call]
            color="#d62728",
            alpha=0.15,
            linewidth=0,
            label="trading halted" if i == 0 else None,
        )

    def at_rows(kinds: tuple[str, ...]) -> tuple[list[Any], Any, Any]:
        chosen = [e for e in result.events if e.kind in kinds]
        tx = np.array([e.timestamp.timestamp() for e in chosen], dtype=np.float64)
        if not len(values):
            return chosen, tx / _DAY + epoch, np.zeros(len(chosen))
        # The value of the row the event happened at (the last row at or before it).
        idx = np.clip(np.searchsorted(times, tx, side="right") - 1, 0, len(values) - 1)
        return chosen, tx / _DAY + epoch, values[idx]

    trips, trip_x, trip_y = at_rows(_TRIP_KINDS)
    resets, reset_x, _ = at_rows(("reset",))
    if resets:
        # On the bottom edge: a reset often comes at the row of the next trip, whose marker
        # would hide it at the curve.
        ax.scatter(
            reset_x,
            np.zeros(len(resets)),
            transform=ax.get_xaxis_transform(),
            marker="^",
            s=60,
            color="#2ca02c",
            edgecolor="black",
            zorder=5,
            clip_on=False,
            label="reset",
        )
    # One colour per breaker, named in the legend with its number of trips: every trip
    # says whose it is even where the text labels below cannot all be drawn.
    by_breaker: dict[str, list[int]] = {}
    for i, event in enumerate(trips):
        by_breaker.setdefault(event.breaker, []).append(i)
    for n, (name, chosen) in enumerate(by_breaker.items()):
        ax.scatter(
            trip_x[chosen],
            trip_y[chosen],
            marker="v",
            s=90,
            color=_TRIP_COLOURS[n % len(_TRIP_COLOURS)],
            edgecolor="black",
            zorder=6,
            label=f"trip: {name}" + (f" ({len(chosen)})" if len(chosen) > 1 else ""),
        )

    # The y-axis: money, a log scale when the series grows tenfold (a crash early in a
    # long history stays visible), and a band kept free above the curve for the labels.
    low = float(values.min()) if len(values) else 0.0
    high = float(values.max()) if len(values) else 1.0
    if result.peaks:
        high = max(high, max(p for _, p in result.peaks))
    log = low > 0 and high / low >= _LOG_RATIO
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        span = np.log10(high / low)
        ax.set_ylim(low / 10 ** (0.04 * span), high * 10 ** (span * _BAND / (1 - _BAND)))
    else:
        span = (high - low) or max(abs(high), 1.0) * 0.01
        ax.set_ylim(low - 0.04 * span, high + span * _BAND / (1 - _BAND))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: money_label(v)))
    ax.set_ylabel("portfolio value" + (" (log scale)" if log else ""))

    if trips:
        _label_trips(ax, fig, trips, trip_x, trip_y, px)

    s = result.summary()
    ax.set_title(
        title
        or f"haltgate replay: {s['rows']:,} rows, {s['trips']} trip(s), "
        f"halted {s['halted_fraction']:.1%} of the time",
        fontsize=13,
    )
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.set_xlabel("time (UTC)")
    ax.grid(True, alpha=0.3)
    # Below the axes, in one row: inside it would cover the curve somewhere.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=5, fontsize=9, frameon=False)
    fig.tight_layout()
