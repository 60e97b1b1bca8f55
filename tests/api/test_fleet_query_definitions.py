"""The pure part of the fleet queries: epoch-aligned buckets, the windows derived from `until`
(including times far from any data), and merging the pending ranges a refresh covers. No I/O."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.fleet_queries import FleetQuery, InvalidUntil
from api.fleet_queries.definitions import EPOCH, floor_to, merge_ranges, window_of

UTC_TIMES = st.datetimes(timezones=st.just(dt.UTC))
ANY_TIMES = st.datetimes(timezones=st.timezones())


def test_buckets_are_multiples_of_their_width_since_the_epoch() -> None:
    t = dt.datetime(2025, 3, 1, 10, 19, 59, 999_999, tzinfo=dt.UTC)
    assert floor_to(t, 600) == dt.datetime(2025, 3, 1, 10, 10, tzinfo=dt.UTC)
    assert floor_to(t.replace(minute=20, second=0, microsecond=0), 600) == t.replace(
        minute=20, second=0, microsecond=0
    )
    assert floor_to(dt.datetime(1969, 12, 31, 23, 55, tzinfo=dt.UTC), 600) == dt.datetime(
        1969, 12, 31, 23, 50, tzinfo=dt.UTC
    )


@given(UTC_TIMES)
def test_floor_is_the_edge_at_or_before(t: dt.datetime) -> None:
    edge = floor_to(t, 600)
    assert edge <= t < edge + dt.timedelta(seconds=600)
    assert (edge - EPOCH) % dt.timedelta(seconds=600) == dt.timedelta(0)


def test_windows_of_each_query() -> None:
    until = dt.datetime(2026, 1, 5, 12, 7, 3, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    edge = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert window_of(FleetQuery.LAST_LOCATION, until).start is None
    assert window_of(FleetQuery.STATIONARY, until).start == edge - dt.timedelta(minutes=10)
    assert window_of(FleetQuery.LONG_DRIVING, until).start == edge - dt.timedelta(hours=4)
    assert window_of(FleetQuery.LONG_DAILY, until).start == edge - dt.timedelta(hours=24)
    daily = window_of(FleetQuery.DAILY_ACTIVITY, until, days=2)
    assert daily.edge == edge and daily.until == until
    assert daily.days == (dt.datetime(2026, 1, 4, tzinfo=dt.UTC), dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    # At midnight the new day has no complete bucket yet: the last day is the one before.
    midnight = window_of(FleetQuery.DAILY_ACTIVITY, dt.datetime(2026, 1, 5, tzinfo=dt.UTC), days=1)
    assert midnight.days == (dt.datetime(2026, 1, 4, tzinfo=dt.UTC),)


@given(ANY_TIMES, st.sampled_from(FleetQuery), st.integers(1, 31))
def test_every_aware_time_has_a_window(until: dt.datetime, query: FleetQuery, days: int) -> None:
    window = window_of(query, until, days=days)
    assert window.edge <= window.until
    assert window.start is None or window.start <= window.edge
    assert list(window.days) == sorted(window.days)


def test_naive_times_and_bad_days_are_refused() -> None:
    with pytest.raises(InvalidUntil):
        window_of(FleetQuery.STATIONARY, dt.datetime(2026, 1, 5))
    with pytest.raises(ValueError):
        window_of(FleetQuery.DAILY_ACTIVITY, dt.datetime(2026, 1, 5, tzinfo=dt.UTC), days=0)


def test_merged_ranges_cover_touched_buckets_once() -> None:
    t = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    m = dt.timedelta(minutes=1)
    got = merge_ranges(
        [(t + 25 * m, t + 31 * m), (t, t + 3 * m), (t + 9 * m, t + 10 * m), (t + 60 * m, t + 60 * m)]
    )
    assert got == [(t, t + 40 * m), (t + 60 * m, t + 70 * m)]
    assert merge_ranges([]) == []


@given(
    st.lists(
        st.tuples(UTC_TIMES, UTC_TIMES).filter(lambda r: r[0].year > 1 and r[1].year < 9999), max_size=20
    )
)
def test_merged_ranges_are_disjoint_and_cover_every_range(
    ranges: list[tuple[dt.datetime, dt.datetime]],
) -> None:
    merged = merge_ranges(ranges)
    for (_, hi), (lo, _) in zip(merged, merged[1:], strict=False):
        assert hi < lo
    for a, b in ranges:
        assert any(lo <= min(a, b) and max(a, b) < hi for lo, hi in merged)
