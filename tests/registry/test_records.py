"""Registry records and hours: what a valid row is, with the reason a person can act on when it
is not, and that the canonical row validates back to the same record."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from registry.hours import DAYS, format_opening_hours, parse_opening_hours, parse_quiet_hours
from registry.records import Owner, ServiceCentre, Vehicle, VehicleModel

CENTRE = {
    "service_centre_id": "sc-1",
    "name": "North",
    "lat": 59.3,
    "lon": 18.1,
    "skills": ["tyres", "brakes"],
    "capacity_per_day": 10,
    "opening_hours": "mon-fri 08:00-18:00; sat 09:00-12:30",
    "time_zone": "Europe/Stockholm",
}


def test_opening_hours_read_ranges_days_and_split_shifts() -> None:
    hours = parse_opening_hours("Mon-Wed 08:00-12:00,13:00-17:00; fri 08:00-24:00")
    assert hours == {
        "mon": [["08:00", "12:00"], ["13:00", "17:00"]],
        "tue": [["08:00", "12:00"], ["13:00", "17:00"]],
        "wed": [["08:00", "12:00"], ["13:00", "17:00"]],
        "fri": [["08:00", "24:00"]],
    }


@pytest.mark.parametrize(
    "text",
    [
        "mon 8-17",
        "mon 18:00-08:00",
        "fri-mon 08:00-17:00",
        "xyz 08:00-17:00",
        "mon",
        "mon 08:00-17:00; mon 09:00-10:00",
        "mon 08:00-24:30",
        "mon 25:00-26:00",
    ],
)
def test_unreadable_opening_hours_say_why(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_opening_hours(text)


@given(st.dictionaries(st.sampled_from(DAYS), st.tuples(st.integers(0, 22), st.integers(1, 23)), min_size=1))
def test_opening_hours_text_round_trips(spans: dict[str, tuple[int, int]]) -> None:
    hours = {d: [[f"{a:02d}:00", f"{max(a + 1, b):02d}:00"]] for d, (a, b) in spans.items()}
    text = format_opening_hours(hours)
    assert parse_opening_hours(text) == {d: hours[d] for d in DAYS if d in hours}


def test_quiet_hours_may_cross_midnight() -> None:
    assert parse_quiet_hours("22:00-07:00") == (dt.time(22), dt.time(7))
    with pytest.raises(ValueError, match="same time"):
        parse_quiet_hours("07:00-07:00")


def test_a_centre_row_validates_and_its_canonical_row_gives_the_same_record() -> None:
    centre = ServiceCentre.model_validate(CENTRE)
    assert centre.skills == ["brakes", "tyres"]  # sorted, once each
    assert ServiceCentre.model_validate(centre.row()) == centre


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "IANA time zone"),
        ({"skills": ["tyres", "welding"]}, "skills"),
        ({"skills": []}, "skills"),
        ({"lat": 91}, "lat"),
        ({"capacity_per_day": -1}, "capacity_per_day"),
        ({"service_centre_id": "sc/1"}, "service_centre_id"),
        ({"opening_hours": "mon 18:00-08:00"}, "end after it starts"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_centre_row_names_its_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceCentre.model_validate({**CENTRE, **change})


def test_csv_cells_are_read_leniently_but_exactly() -> None:
    """A CSV cell is text: lists are `a;b`, numbers and booleans are converted, nothing else."""
    centre = ServiceCentre.model_validate(
        {**CENTRE, "skills": "tyres; high_voltage", "capacity_per_day": "7"}
    )
    assert centre.skills == ["high_voltage", "tyres"] and centre.capacity_per_day == 7
    owner = Owner.model_validate(
        {"owner_id": "o1", "name": "A", "email": "a@example.com", "consent_email": "true", "time_zone": "UTC"}
    )
    assert owner.consent_email is True


def test_models_must_match_their_powertrain() -> None:
    base = {"model_id": "m", "make": "Acme", "model": "M", "tyre_placard_kpa": 240}
    assert VehicleModel.model_validate({**base, "powertrain": "ice", "cylinders": 4}).cylinders == 4
    with pytest.raises(ValidationError, match="needs its number of cylinders"):
        VehicleModel.model_validate({**base, "powertrain": "ice"})
    with pytest.raises(ValidationError, match="no cylinders"):
        VehicleModel.model_validate({**base, "powertrain": "bev", "cylinders": 4})


def test_owner_consent_needs_the_contact() -> None:
    with pytest.raises(ValidationError, match="consent_sms needs a phone number"):
        Owner.model_validate({"owner_id": "o1", "name": "A", "consent_sms": True, "time_zone": "UTC"})
    with pytest.raises(ValidationError, match="phone"):
        Owner.model_validate({"owner_id": "o1", "name": "A", "phone": "0701234567", "time_zone": "UTC"})


@pytest.mark.parametrize(
    "vin", ["YV1SW61R02123456", "YV1SW61R0212345678", "YV1SW61R02123456O", "yv1sw61r021234567"]
)
def test_a_vin_is_seventeen_iso_3779_characters(vin: str) -> None:
    with pytest.raises(ValidationError, match="vin"):
        Vehicle.model_validate({"vehicle_id": "V1", "vin": vin})
    assert Vehicle.model_validate({"vehicle_id": "V1", "vin": "YV1SW61R021234567"}).vin == "YV1SW61R021234567"
