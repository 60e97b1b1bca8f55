"""What each fleet query means: its name, its thresholds and the time window it reads.

Owns: the pure part of the fleet queries (docs/fleet-queries.md): bucket arithmetic on the Unix
epoch, the windows derived from `until`, and merging the pending time ranges a refresh must
re-aggregate. No I/O. Leaves the SQL to `api.fleet_queries.sql` and running it to
`api.fleet_queries.runner`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
BUCKET_S = 600  # the aggregate's bucket width: 10 minutes
DAY_S = 86_400
_US = dt.timedelta(microseconds=1)

DRIVING_SPEED_KMH = 1.0  # a bucket "drives" when its average speed is above this
STATIONARY_SPEED_KMH = 1.0  # a vehicle is stationary when its average speed is below this
LOW_ENERGY_PCT = 10.0  # low fuel: newest fuel level (or state of charge) below this
LONG_DRIVING_HOURS = 4
LONG_DRIVING_MIN_BUCKETS = 22  # more than this many driving buckets in LONG_DRIVING_HOURS
LONG_DAILY_HOURS = 24
LONG_DAILY_MIN_BUCKETS = 60
DEFAULT_DAYS = 7  # daily-activity: days up to the one of the last complete bucket
MAX_DAYS = 31

# The range of times the windows are computed in; a window reaching past it is cut there.
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


class FleetQuery(enum.StrEnum):
    LAST_LOCATION = "last-location"
    LOW_FUEL = "low-fuel"
    STATIONARY = "stationary"
    LONG_DRIVING = "long-driving"
    LONG_DAILY = "long-daily"
    DAILY_ACTIVITY = "daily-activity"


class InvalidUntil(ValueError):
    """`until` has no time zone."""


@dataclass(frozen=True, slots=True)
class Window:
    """The time a query reads. `edge` is the last bucket edge at or before `until`: the window
    queries count whole buckets in [start, edge); the newest-value queries read values at or
    before `until` (the aggregate before `edge`, raw rows of [edge, until])."""

    until: dt.datetime
    edge: dt.datetime
    start: dt.datetime | None  # None: no lower bound (last-location, low-fuel)
    days: tuple[dt.datetime, ...] = ()  # daily-activity: the UTC midnight of each day, oldest first


def floor_to(ts: dt.datetime, width_s: int) -> dt.datetime:
    """The multiple of `width_s` seconds since the Unix epoch at or before `ts` (exact, in µs)."""
    us = (ts - EPOCH) // _US
    width_us = width_s * 1_000_000
    return EPOCH + (us - us % width_us) * _US


def check_until(until: dt.datetime) -> dt.datetime:
    """`until` in UTC (a time whose UTC form lies outside year 1..9999 is cut to that range: no
    row can be there). Raises InvalidUntil for a naive datetime."""
    if until.tzinfo is None or until.utcoffset() is None:
        raise InvalidUntil("until needs a time zone")
    try:
        return until.astimezone(dt.UTC)
    except OverflowError:
        return EARLIEST if until.year == 1 else LATEST


def _before(t: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """t - delta, cut at EARLIEST."""
    return t - delta if t - EARLIEST > delta else EARLIEST


def window_of(query: FleetQuery, until: dt.datetime, *, days: int = DEFAULT_DAYS) -> Window:
    """The window `query` reads for `until`. Raises InvalidUntil (see check_until) and ValueError
    for `days` outside 1..MAX_DAYS."""
    until = check_until(until)
    edge = floor_to(until, BUCKET_S)
    match query:
        case FleetQuery.LAST_LOCATION | FleetQuery.LOW_FUEL:
            return Window(until, edge, None)
        case FleetQuery.STATIONARY:
            return Window(until, edge, _before(edge, dt.timedelta(seconds=BUCKET_S)))
        case FleetQuery.LONG_DRIVING:
            return Window(until, edge, _before(edge, dt.timedelta(hours=LONG_DRIVING_HOURS)))
        case FleetQuery.LONG_DAILY:
            return Window(until, edge, _before(edge, dt.timedelta(hours=LONG_DAILY_HOURS)))
        case FleetQuery.DAILY_ACTIVITY:
            if not 1 <= days <= MAX_DAYS:
                raise ValueError(f"days must be 1..{MAX_DAYS}")
            last_day = floor_to(_before(edge, dt.timedelta(seconds=BUCKET_S)), DAY_S)
            all_days = tuple(
                last_day - dt.timedelta(days=i)
                for i in reversed(range(days))
                if last_day - EARLIEST >= dt.timedelta(days=i)
            )
            return Window(until, edge, all_days[0], all_days)
    raise ValueError(f"unknown fleet query {query!r}")  # pragma: no cover - the match is exhaustive


def min_buckets(query: FleetQuery) -> int:
    """The driving buckets a vehicle must exceed to be listed by long-driving or long-daily."""
    return LONG_DAILY_MIN_BUCKETS if query is FleetQuery.LONG_DAILY else LONG_DRIVING_MIN_BUCKETS


def merge_ranges(
    ranges: Iterable[tuple[dt.datetime, dt.datetime]], width_s: int = BUCKET_S
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The buckets that the closed time ranges [first, last] touch, as disjoint half-open
    [lo, hi) ranges on bucket edges, oldest first (touching ranges are joined)."""
    step = dt.timedelta(seconds=width_s)
    spans = sorted((floor_to(min(a, b), width_s), floor_to(max(a, b), width_s) + step) for a, b in ranges)
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged
