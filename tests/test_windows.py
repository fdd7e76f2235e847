"""The shared sliding window and rolling maximum."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from haltgate.windows import RollingMax, SlidingWindowCounter


def test_half_open_window() -> None:
    window = SlidingWindowCounter(10)
    window.add(100.0)
    assert window.count(100.0) == 1
    assert window.count(109.999999) == 1  # 100 > 99.999999
    assert window.count(110.0) == 0  # 100 > 100 is false: out


def test_events_at_the_same_instant_share_one_entry() -> None:
    window = SlidingWindowCounter(10)
    for _ in range(1000):
        window.add(5.0)
    assert window.count(5.0) == 1000
    assert len(window) == 1


def test_try_add_respects_the_limit() -> None:
    window = SlidingWindowCounter(10)
    assert [window.try_add(float(t), 3) for t in range(5)] == [True, True, True, False, False]
    assert window.try_add(10.0, 3)  # the event at 0 left
    assert window.count(10.0) == 3


def test_remove_latest_undoes_a_reservation() -> None:
    window = SlidingWindowCounter(10)
    window.add(1.0)
    window.add(2.0)
    assert window.remove_latest(2.0)
    assert window.count(2.0) == 1
    assert not window.remove_latest(7.0)


def test_frees_at() -> None:
    window = SlidingWindowCounter(10)
    for t in (0.0, 1.0, 2.0):
        window.add(t)
    assert window.frees_at(3, 2.0) == 10.0  # at 10 the event at 0 leaves
    assert window.frees_at(4, 2.0) is None
    assert window.frees_at(2, 2.0) == 11.0


def test_tags_count_per_category() -> None:
    window = SlidingWindowCounter(10)
    window.add(0.0, tag="Timeout")
    window.add(1.0, tag="broker")
    window.add(2.0, tag="Timeout")
    assert window.tags(2.0) == {"Timeout": 2, "broker": 1}
    assert window.tags(10.5) == {"broker": 1, "Timeout": 1}


def test_compaction_bounds_memory_and_never_forgets_early() -> None:
    window = SlidingWindowCounter(60, compact_above=10)
    rng = random.Random(7)
    now = 0.0
    times: list[float] = []
    for _ in range(200_000):
        now += rng.random() * 0.001
        window.add(now)
        times.append(now)
    # Memory stays near 4096 entries per window whatever the number of events.
    assert len(window) <= 4096 + 64
    # A compacted event may be counted a little longer, never shorter.
    for probe in (now, now + 30, now + 59.9):
        exact = sum(1 for t in times if probe - 60 < t <= probe)
        assert window.count(probe) >= exact
    assert window.count(now + 60 + 60 / 4096) == 0


def test_rolling_max_look_back() -> None:
    peak = RollingMax(lookback_seconds=600, bucket_seconds=60)
    assert peak.peak(0) is None
    assert peak.add(0, Decimal(100)) == 100
    assert peak.add(30, Decimal(90)) == 100
    assert peak.add(300, Decimal(95)) == 100
    assert peak.peak(659) == 100  # the bucket [0, 60) still touches the look-back
    assert peak.peak(660) == 95
    assert peak.peak(959) == 95
    assert peak.peak(960) is None  # bucket [300, 360) no longer touches (360, 960]


def test_rolling_max_is_bounded_by_buckets() -> None:
    peak = RollingMax(lookback_seconds=3600, bucket_seconds=60)
    for i in range(100_000):
        peak.add(i * 0.5, Decimal(1_000_000 - i))  # strictly falling: worst case
    assert len(peak) <= 61


def test_rolling_max_export_and_load() -> None:
    peak = RollingMax(3600)
    peak.add(0, Decimal("5.5"))
    peak.add(120, Decimal("4"))
    copy = RollingMax(3600)
    copy.load(peak.export())
    assert copy.export() == [[0, "5.5"], [2, "4"]]
    assert copy.peak(130) == Decimal("5.5")
    copy.restart(200, Decimal(3))
    assert copy.peak(200) == 3


def test_boundary_is_exact_where_float_sums_are_not() -> None:
    # 10.005 + 20.0 == 30.005000000000003 in floats, and 20.000002 - 20.0 < 2e-06.
    window = SlidingWindowCounter(20)
    window.add(10.005)
    assert window.count(30.004999) == 1
    assert window.count(30.005) == 0
    tiny = SlidingWindowCounter(20)
    tiny.add(2e-06)
    assert tiny.count(20.000001) == 1
    assert tiny.count(20.000002) == 0


# ---------------------------------------------------------------- RollingMax.add_until
@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([0, 0.5, 1, 59, 60, 61, 600, 3599]), st.integers(-5, 40)),
        min_size=1,
        max_size=60,
    ),
    lookback=st.sampled_from([60.0, 120.0, 900.0, 3600.0]),
    floor=st.one_of(st.none(), st.integers(0, 40)),
)
def test_add_until_is_one_add_per_row(
    steps: list[tuple[float, int]], lookback: float, floor: int | None
) -> None:
    times, values = [], []
    t = 1_700_000_000.0
    for dt, v in steps:
        t += dt
        times.append(t)
        values.append(Decimal(v))
    line_of = None if floor is None else (lambda peak: peak - Decimal(floor))
    batch, single = RollingMax(lookback), RollingMax(lookback)
    index, last_peak, rose = batch.add_until(times, values, 0, len(times), line_of)
    expected_stop, expected_peak, expected_rose = len(times), None, False
    for i, (ts, value) in enumerate(zip(times, values, strict=True)):
        before = single.peak(ts)
        peak = value if before is None or value > before else before
        if line_of is not None and value < line_of(peak):
            expected_stop = i
            break
        single.add(ts, value)
        expected_peak = peak
        expected_rose = expected_rose or peak != before
    assert (index, last_peak, rose) == (expected_stop, expected_peak, expected_rose)
    assert batch.export() == single.export()
