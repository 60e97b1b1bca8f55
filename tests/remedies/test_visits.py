"""Shop-visit rules: slots spread over opening hours, the nearest centre with the skill and a free
slot before the deadline, full centres skipped, late bookings marked, the usual parking spot."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from remedies.visits import Centre, choose_slot, day_slots, haversine_km, usual_parking_spot

WEEKDAYS = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
MONDAY = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)  # 07:00 in Berlin


def centre(cid: str, lat: float, capacity: int = 4, skills: tuple[str, ...] = ("tyres",), **kw) -> Centre:  # noqa: ANN003
    hours = kw.get("hours", WEEKDAYS)
    return Centre(cid, lat, 11.5, frozenset(skills), capacity, hours, kw.get("tz", "Europe/Berlin"))


def test_slots_spread_over_the_opening_hours_in_local_time() -> None:
    starts = day_slots(centre("A", 48.1, capacity=4), MONDAY.date())
    local = [s.astimezone(dt.timezone(dt.timedelta(hours=1))).strftime("%H:%M") for s in starts]
    assert local == ["08:00", "10:30", "13:00", "15:30"]
    assert day_slots(centre("A", 48.1), dt.date(2026, 12, 5)) == []  # Saturday: closed
    split = centre("B", 48.1, capacity=2, hours={"mon": [["08:00", "12:00"], ["13:00", "17:00"]]})
    assert [
        s.astimezone(dt.timezone(dt.timedelta(hours=1))).hour for s in day_slots(split, MONDAY.date())
    ] == [8, 13]


def test_the_nearest_centre_with_the_skill_and_a_free_slot_before_the_deadline() -> None:
    near, far, wrong = (
        centre("near", 48.14),
        centre("far", 48.30),
        centre("brakes", 48.137, skills=("brakes",)),
    )
    parked = (48.137, 11.5)
    deadline = MONDAY + dt.timedelta(hours=24)
    choice = choose_slot([far, wrong, near], {}, skill="tyres", duration_min=30, not_before=MONDAY,
                         deadline=deadline, parked_at=parked)  # fmt: skip
    assert choice is not None and choice.centre_id == "near" and not choice.late
    assert choice.starts_at == dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.UTC)  # 08:00 local
    assert choice.distance_km == round(haversine_km(48.137, 11.5, 48.14, 11.5), 3)
    # The near centre is full until after the deadline: the far one takes it.
    full = {
        "near": set(day_slots(near, MONDAY.date())) | set(day_slots(near, MONDAY.date() + dt.timedelta(1)))
    }
    choice = choose_slot([far, near], full, skill="tyres", duration_min=30, not_before=MONDAY,
                         deadline=deadline, parked_at=parked)  # fmt: skip
    assert choice is not None and choice.centre_id == "far" and not choice.late


def test_when_no_centre_can_before_the_deadline_the_earliest_is_booked_late() -> None:
    friday_evening = dt.datetime(2026, 12, 4, 17, 30, tzinfo=dt.UTC)
    choice = choose_slot([centre("A", 48.1)], {}, skill="tyres", duration_min=30, not_before=friday_evening,
                         deadline=friday_evening + dt.timedelta(hours=24), parked_at=None)  # fmt: skip
    assert choice is not None and choice.late and choice.starts_at.weekday() == 0  # Monday
    assert choose_slot([centre("A", 48.1, capacity=0)], {}, skill="tyres", duration_min=30,
                       not_before=MONDAY, deadline=MONDAY, parked_at=None) is None  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(47.0, 49.0), st.integers(0, 6), st.sampled_from(["tyres", "brakes"])),
        min_size=1,
        max_size=5,
    ),
    st.integers(0, 300),
    st.floats(1.0, 96.0),
)  # fmt: skip
def test_a_choice_never_takes_a_taken_slot_or_a_centre_without_the_skill(specs, taken_n, hours) -> None:  # noqa: ANN001
    centres = [centre(f"C{i}", lat, cap, (skill,)) for i, (lat, cap, skill) in enumerate(specs)]
    taken = {c.centre_id: set(day_slots(c, MONDAY.date())[: taken_n % 7]) for c in centres}
    choice = choose_slot(centres, taken, skill="tyres", duration_min=45, not_before=MONDAY,
                         deadline=MONDAY + dt.timedelta(hours=hours), parked_at=(48.0, 11.5))  # fmt: skip
    able = [c for c in centres if "tyres" in c.skills and c.capacity_per_day > 0]
    if choice is None:
        assert not able
        return
    mine = next(c for c in centres if c.centre_id == choice.centre_id)
    assert "tyres" in mine.skills and choice.starts_at not in taken[mine.centre_id]
    assert choice.starts_at >= MONDAY
    assert choice.late == (choice.ends_at > MONDAY + dt.timedelta(hours=hours))


def test_the_usual_parking_spot_is_where_the_vehicle_stood_longest() -> None:
    home = (48.1000, 11.5000)
    lat = np.r_[np.full(50, home[0]) + np.linspace(0, 1e-4, 50), 48.2, 48.2, np.nan]
    lon = np.r_[np.full(50, home[1]), 11.6, 11.6, 11.6]
    dwell = np.r_[np.full(50, 600.0), 900.0, 900.0, 900.0]
    spot = usual_parking_spot(lat, lon, dwell)
    assert spot is not None and abs(spot[0] - home[0]) < 2e-4 and abs(spot[1] - home[1]) < 1e-9
    assert usual_parking_spot(np.array([np.nan]), np.array([1.0]), np.array([1.0])) is None
