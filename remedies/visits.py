"""Shop visits: where a vehicle usually parks, which service centre takes it, and when.

Owns the booking rules, as pure functions:
- A centre's day has `capacity_per_day` appointment slots, spread evenly over that day's opening
  hours in the centre's time zone (starts on a 15-minute grid); a closed day has none. A slot is
  free unless an active booking holds it, so a centre at full capacity has no free slot and is
  skipped.
- The choice: among the centres with the skill, the free slots that start no earlier than
  `not_before` and end by the deadline; the centre nearest to where the vehicle usually parks wins
  (great-circle distance), then the earliest slot. When no centre can take the vehicle before the
  deadline, the earliest free slot with the skill within the search horizon is taken and marked
  late, so the remedy still happens and the operator sees the miss.
- Where a vehicle usually parks: the place where it stood still the longest over the positions
  given (cells of about 150 m, dwell-weighted mean within the best cell).
Leaves reading centres, bookings and positions, and writing bookings, to `remedies.store`.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from registry.hours import DAYS

EARTH_RADIUS_KM = 6371.0088
SLOT_GRID_MIN = 15
PARKING_CELL_M = 150.0


@dataclass(frozen=True)
class Centre:
    centre_id: str
    lat: float | None
    lon: float | None
    skills: frozenset[str]
    capacity_per_day: int
    opening_hours: Mapping[str, list[list[str]]]  # {"mon": [["08:00", "18:00"]], ...}
    time_zone: str


@dataclass(frozen=True)
class SlotChoice:
    centre_id: str
    starts_at: dt.datetime  # UTC
    ends_at: dt.datetime
    distance_km: float | None
    late: bool  # no centre could take the vehicle before the deadline
    reason: str


def day_slots(centre: Centre, day: dt.date) -> list[dt.datetime]:
    """The centre's appointment starts on `day` (its local date), as UTC datetimes."""
    spans = centre.opening_hours.get(DAYS[day.weekday()], [])
    if centre.capacity_per_day <= 0 or not spans:
        return []
    tz = zoneinfo.ZoneInfo(centre.time_zone)
    minutes = [(_minute(a), _minute(b)) for a, b in spans]
    total = sum(b - a for a, b in minutes)
    if total <= 0:
        return []
    starts: list[dt.datetime] = []
    for i in range(centre.capacity_per_day):
        offset = i * total / centre.capacity_per_day
        for a, b in minutes:
            if offset < b - a:
                minute = a + int(offset // SLOT_GRID_MIN) * SLOT_GRID_MIN
                local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=tz)
                starts.append(local.astimezone(dt.UTC))
                break
            offset -= b - a
    return sorted(set(starts))  # a tiny span with a large capacity shares grid starts: fewer slots


def choose_slot(
    centres: Iterable[Centre],
    taken: Mapping[str, Collection[dt.datetime]],
    *,
    skill: str,
    duration_min: float,
    not_before: dt.datetime,
    deadline: dt.datetime,
    parked_at: tuple[float, float] | None,
    horizon_days: int = 60,
) -> SlotChoice | None:
    """The slot to book (see the module docstring), or None when no centre with the skill has a
    free slot within `horizon_days`."""
    able = [c for c in centres if skill in c.skills and c.capacity_per_day > 0]
    if not able:
        return None
    in_time: list[tuple[float, dt.datetime, Centre]] = []
    first_any: tuple[dt.datetime, float, Centre] | None = None
    length = dt.timedelta(minutes=duration_min)
    for centre in able:
        start = _first_free(centre, taken.get(centre.centre_id, ()), not_before, horizon_days)
        if start is None:
            continue
        distance = _distance_km(centre, parked_at)
        key = math.inf if distance is None else distance
        if start + length <= deadline:
            in_time.append((key, start, centre))
        if first_any is None or (start, key) < (first_any[0], first_any[1]):
            first_any = (start, key, centre)
    if in_time:
        key, start, centre = min(in_time, key=lambda t: (t[0], t[1], t[2].centre_id))
        why = f"nearest centre with {skill} and a free slot before the deadline"
        return SlotChoice(centre.centre_id, start, start + length, _finite(key), False, why)
    if first_any is None:
        return None
    start, key, centre = first_any
    why = f"no centre with {skill} has a free slot before the deadline: the earliest one after it"
    return SlotChoice(centre.centre_id, start, start + length, _finite(key), True, why)


def _first_free(
    centre: Centre, taken: Collection[dt.datetime], not_before: dt.datetime, horizon_days: int
) -> dt.datetime | None:
    tz = zoneinfo.ZoneInfo(centre.time_zone)
    day = not_before.astimezone(tz).date()
    for _ in range(horizon_days + 1):
        for start in day_slots(centre, day):
            if start >= not_before and start not in taken:
                return start
        day += dt.timedelta(days=1)
    return None


def usual_parking_spot(
    lat_deg: np.ndarray, lon_deg: np.ndarray, dwell_s: np.ndarray
) -> tuple[float, float] | None:
    """The dwell-weighted centre of the ~150 m cell where the vehicle stood the longest, or None
    without a usable position. Inputs are parallel arrays of stationary samples."""
    ok = np.isfinite(lat_deg) & np.isfinite(lon_deg) & np.isfinite(dwell_s) & (dwell_s > 0)
    if not ok.any():
        return None
    lat, lon, w = lat_deg[ok], lon_deg[ok], dwell_s[ok]
    cell_deg = PARKING_CELL_M / 111_320.0
    row = np.floor(lat / cell_deg).astype(np.int64)
    col = np.floor(lon * np.cos(np.radians(lat)) / cell_deg).astype(np.int64)
    _, inverse = np.unique(np.stack([row, col]), axis=1, return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=w)
    best = inverse.ravel() == int(np.argmax(totals))
    return float(np.average(lat[best], weights=w[best])), float(np.average(lon[best], weights=w[best]))


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _distance_km(centre: Centre, parked_at: tuple[float, float] | None) -> float | None:
    if parked_at is None or centre.lat is None or centre.lon is None:
        return None
    return haversine_km(parked_at[0], parked_at[1], centre.lat, centre.lon)


def _finite(x: float) -> float | None:
    return None if math.isinf(x) else round(x, 3)


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)
