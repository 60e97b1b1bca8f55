"""The install preconditions (edge_agent.ota.preconditions): parked, power, window, consent."""

from __future__ import annotations

import math
from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.ota.preconditions import (
    CONSENT,
    MAINTENANCE_WINDOW,
    PARKED,
    POWER,
    MaintenanceWindow,
    OfferTerms,
    Thresholds,
    VehicleConditions,
    check_preconditions,
)

TH = Thresholds(min_parked_s=60, min_battery_v=12.2, min_traction_soc_pct=30)
PARKED_OK = VehicleConditions(
    speed_kmh=0, parked_s=120, engine_running=False, battery_v=12.6, local_time=time(3)
)
NIGHT = OfferTerms(window=MaintenanceWindow(time(22), time(5)))
ANY_TIME = OfferTerms()


def failed(c: VehicleConditions, terms: OfferTerms = ANY_TIME) -> list[str]:
    return [r.precondition for r in check_preconditions(c, terms, TH)]


def test_a_parked_charged_vehicle_in_its_window_may_install() -> None:
    assert failed(PARKED_OK, NIGHT) == []


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"speed_kmh": 12.0}, "moving at 12 km/h"),
        ({"engine_running": True}, "engine running"),
        ({"parked_s": 30.0}, "parked for 30 s, less than 60 s"),
        ({"speed_kmh": None}, "unknown"),
        ({"parked_s": math.nan}, "unknown"),
    ],
)
def test_not_parked(changes: dict[str, object], detail: str) -> None:
    (refusal,) = check_preconditions(_with(**changes), OfferTerms(), TH)
    assert refusal.precondition == PARKED and detail in refusal.detail


def test_power_from_the_12v_battery_or_the_traction_battery() -> None:
    assert failed(_with(battery_v=11.9)) == [POWER]
    assert failed(_with(battery_v=11.9, traction_soc_pct=80)) == []  # an EV: the traction battery holds
    assert failed(_with(battery_v=None, traction_soc_pct=31)) == []
    (refusal,) = check_preconditions(_with(battery_v=11.9, traction_soc_pct=12), OfferTerms(), TH)
    assert refusal.detail == "12 V battery at 11.90 V < 12.2 V; traction battery at 12 % < 30 %"
    assert failed(_with(battery_v=None)) == [POWER]  # nothing known: not enough proof of power
    assert failed(_with(battery_v=math.nan, traction_soc_pct=None)) == [POWER]


def test_the_maintenance_window_in_local_time_crossing_midnight() -> None:
    assert failed(_with(local_time=time(23, 30)), NIGHT) == []
    assert failed(_with(local_time=time(4, 59)), NIGHT) == []
    assert failed(_with(local_time=time(5, 0)), NIGHT) == [MAINTENANCE_WINDOW]
    (refusal,) = check_preconditions(_with(local_time=time(14, 5)), NIGHT, TH)
    assert refusal.detail == "local time 14:05 outside 22:00-05:00"
    day = OfferTerms(window=MaintenanceWindow(time(9), time(17)))
    assert failed(_with(local_time=time(9)), day) == []
    assert failed(_with(local_time=time(17)), day) == [MAINTENANCE_WINDOW]
    assert failed(_with(local_time=None), day) == [MAINTENANCE_WINDOW]
    assert failed(_with(local_time=None)) == []  # no window: any time
    with pytest.raises(ValueError):
        MaintenanceWindow(time(2), time(2))


def test_consent_only_when_the_offer_asks() -> None:
    asks = OfferTerms(consent_required=True)
    assert failed(PARKED_OK, asks) == [CONSENT]
    assert failed(_with(consent_given=True), asks) == []
    assert failed(PARKED_OK) == []


def test_every_failing_precondition_is_named() -> None:
    c = VehicleConditions(speed_kmh=50, parked_s=0, engine_running=True, battery_v=11.0, local_time=time(12))
    assert failed(c, OfferTerms(window=NIGHT.window, consent_required=True)) == [
        PARKED,
        POWER,
        MAINTENANCE_WINDOW,
        CONSENT,
    ]


NUMBERS = st.none() | st.floats(allow_nan=True, allow_infinity=True)


@given(NUMBERS, NUMBERS, st.none() | st.booleans(), NUMBERS, NUMBERS, st.none() | st.times(), st.booleans())
def test_any_snapshot_gives_a_verdict(speed, parked, engine, volts, soc, local, consent) -> None:  # type: ignore[no-untyped-def]
    c = VehicleConditions(speed, parked, engine, volts, soc, local, consent)
    refusals = check_preconditions(c, OfferTerms(window=NIGHT.window, consent_required=True), TH)
    names = [r.precondition for r in refusals]
    assert len(set(names)) == len(names)
    if not refusals:  # passing needs real proof
        assert (
            speed == 0 and engine is False and parked is not None and math.isfinite(parked) and parked >= 60
        )
        assert consent and any(v is not None and math.isfinite(v) for v in (volts, soc))


def _with(**changes: object) -> VehicleConditions:
    fields = {f: getattr(PARKED_OK, f) for f in PARKED_OK.__slots__}
    return VehicleConditions(**{**fields, **changes})  # type: ignore[arg-type]
