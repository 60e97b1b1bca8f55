"""The remedy catalogue: the shipped file parses, the most specific entry wins, bad files say why."""

from __future__ import annotations

import pytest

from remedies.catalogue import OtaPatch, ShopVisit, VehicleFacts, load_catalogue, parse_catalogue

FAULT_KINDS = (
    "battery_12v_failing", "charging_fault", "thermostat_stuck", "tyre_slow_leak", "brake_pad_wear",
    "sensor_stuck:Vehicle.Speed", "sensor_dropout:Vehicle.Speed", "misfire", "firmware_bug", "dtc:U0100",
)  # fmt: skip


def test_the_shipped_catalogue_has_a_remedy_for_every_fault_the_detectors_raise() -> None:
    catalogue = load_catalogue()
    for fault in FAULT_KINDS:
        for powertrain in ("ice", "bev", None):
            assert catalogue.match(fault, VehicleFacts(powertrain=powertrain)) is not None, fault
    assert isinstance(catalogue.match("firmware_bug", VehicleFacts()).remedy, OtaPatch)  # type: ignore[union-attr]
    visit = catalogue.match("tyre_slow_leak", VehicleFacts()).remedy  # type: ignore[union-attr]
    assert isinstance(visit, ShopVisit) and visit.skill == "tyres"


VISIT = {"kind": "shop_visit", "duration_min": 30}
BAD = {"name": "a", "fault": "x", "kind": "shop_visit", "skill": "tyres"}


def test_the_most_specific_entry_wins_then_the_first() -> None:
    catalogue = parse_catalogue(
        {
            "remedy": [
                {"name": "any-dtc", "fault": "dtc:*", **VISIT, "skill": "diagnostics"},
                {"name": "p0606", "fault": "dtc:P0606", **VISIT, "skill": "engine"},
                {"name": "p0606-ecm-420", "fault": "dtc:P0606", "kind": "ota_patch", "ecu": "ECM",
                 "software_version": "4.2.0", "to_version": "4.2.1"},
                {"name": "model-x", "fault": "dtc:*", "model_id": "X", "kind": "shop_visit", "skill": "body",
                 "duration_min": 10},
                {"name": "model-x-again", "fault": "dtc:*", "model_id": "X", "kind": "shop_visit",
                 "skill": "brakes", "duration_min": 10},
            ]
        }
    )  # fmt: skip
    name = lambda fault, **kw: catalogue.match(fault, VehicleFacts(**kw)).name  # type: ignore[union-attr]  # noqa: E731
    assert name("dtc:U0100") == "any-dtc"
    assert name("dtc:P0606") == "p0606"
    assert name("dtc:P0606", software={"ECM": "4.2.0"}) == "p0606-ecm-420"
    assert name("dtc:P0606", software={"ECM": "4.2.1"}) == "p0606"
    assert name("dtc:U0100", model_id="X") == "model-x"  # same specificity: the first
    assert catalogue.match("misfire", VehicleFacts()) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "a", "fault": "x", "kind": "visit"}, "kind must be"),
        ({**BAD, "skill": "magic", "duration_min": 5}, "skill must be"),
        ({"name": "a", "fault": "x", "kind": "shop_visit", "skill": "tyres"}, "needs duration_min"),
        ({"name": "a", "fault": "x", "kind": "ota_patch"}, "names its ecu"),
        ({"name": "a", "fault": "x", "kind": "ota_patch", "ecu": "E", "colour": 1}, "unknown fields"),
        ({**BAD, "duration_min": -1}, "duration_min"),
        ({**BAD, "duration_min": 5, "urgency": "now"},
         "urgency must be"),
        ({"fault": "x", "kind": "ota_patch", "ecu": "E"}, "name is required"),
    ],
)  # fmt: skip
def test_a_bad_entry_is_refused_with_its_reason(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_catalogue({"remedy": [entry]})
    with pytest.raises(ValueError, match="at least one"):
        parse_catalogue({})
