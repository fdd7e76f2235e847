"""SlidingWindowCounter: compaction keeps an event counted at most one resolution longer;
upper_bound() is never below the count."""

from __future__ import annotations

from haltgate.windows import SlidingWindowCounter


def test_a_steady_stream_still_expires_when_compacted() -> None:
    window = SlidingWindowCounter(60, compact_above=10)
    step = 0.005  # closer together than the 60/4096 s resolution
    now = 0.0
    for _ in range(40_000):  # 200 s of events
        window.add(now)
        now += step
    last = now - step
    counted = window.count(last)
    exact = int(60 / step)
    # Counted a little longer (never shorter): at most one resolution's worth extra.
    assert exact <= counted <= exact + int((60 / 4096) / step) + 1
    assert len(window) <= 4096 + 1


def test_compaction_never_drops_events_early() -> None:
    window = SlidingWindowCounter(10, compact_above=1)
    for i in range(1000):
        window.add(i * 0.001)
    # The last event (t=0.999) must still count until 10.999.
    assert window.count(10.998) >= 1


def test_upper_bound_never_below_the_count() -> None:
    window = SlidingWindowCounter(10)
    for i in range(20):
        window.add(float(i))
    assert window.upper_bound() >= window.count(25.0) == 4  # 16..19 are inside (15, 25]
    assert window.upper_bound() == 4  # the read expired the rest
