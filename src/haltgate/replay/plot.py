"""The replay plot (extra ``plot``): equity, peak, halted periods, trips."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConfigError
from .result import ReplayResult

_DAY = 86400.0


def plot_replay(result: ReplayResult, path: str | Path, *, title: str | None = None) -> None:
    """Draw equity, peak, halted periods (shaded) and trip markers to a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "plot", "--plot needs the 'plot' extra: pip install 'haltgate[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np

    times = np.frombuffer(result.times, dtype=np.float64)
    values = np.frombuffer(result.values, dtype=np.float64)
    days = times / _DAY
    epoch = float(mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC)))  # type: ignore[no-untyped-call]
    x = days + epoch
    # Down-sample to a min/max envelope so a million points draw quickly and spikes show.
    if len(x) > 8000:
        step = len(x) // 4000
        cut = (len(x) // step) * step
        xs = x[:cut].reshape(-1, step)
        vs = values[:cut].reshape(-1, step)
        px = np.repeat(xs[:, 0], 2)
        pv = np.column_stack([vs.max(axis=1), vs.min(axis=1)]).ravel()
    else:
        px, pv = x, values
    fig, ax = plt.subplots(figsize=(13, 6.5), dpi=110)
    ax.plot(px, pv, color="#1f4e9c", linewidth=1.0, label="portfolio value")
    if result.peaks:
        pk = np.array(result.peaks)
        ax.plot(
            pk[:, 0] / _DAY + epoch,
            pk[:, 1],
            color="#7a7a7a",
            linestyle="--",
            linewidth=1.0,
            drawstyle="steps-post",
            label="peak (drawdown look-back)",
        )
    first_span = True
    for start, end in result.halted_periods:
        ax.axvspan(
            mdates.date2num(start),  # type: ignore[no-untyped-call]
            mdates.date2num(end),  # type: ignore[no-untyped-call]
            color="#d62728",
            alpha=0.18,
            label="trading halted" if first_span else None,
        )
        first_span = False
    trips = [e for e in result.events if e.kind in ("tripped", "halted")]
    if trips:
        tx = np.array([e.timestamp.timestamp() for e in trips])
        idx = np.clip(np.searchsorted(times, tx), 0, len(values) - 1)
        ax.scatter(
            tx / _DAY + epoch,
            values[idx],
            marker="v",
            s=90,
            color="#d62728",
            edgecolor="black",
            zorder=5,
            label="trip",
        )
        labelled: set[str] = set()
        stacked: dict[float, int] = {}
        for e, xv, yv in zip(trips, tx / _DAY + epoch, values[idx], strict=True):
            if e.breaker in labelled:
                continue  # name each breaker once: repeated labels pile up unreadably
            labelled.add(e.breaker)
            # Trips at the same moment get their labels stacked, not printed over each other.
            level = stacked.get(xv, 0)
            stacked[xv] = level + 1
            ax.annotate(
                e.breaker,
                (xv, yv),
                textcoords="offset points",
                xytext=(0, 12 + 13 * level),
                ha="center",
                fontsize=9,
                color="#8b0000",
            )
    s = result.summary()
    ax.set_title(
        title
        or f"haltgate replay: {s['rows']:,} rows, {s['trips']} trip(s), "
        f"halted {s['halted_fraction']:.1%} of the time",
        fontsize=13,
    )
    ax.set_ylabel("portfolio value")
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
