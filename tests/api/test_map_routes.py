"""The map's data routes against a real PostgreSQL with the map seed (tests/api/map_seed.py):
hazards by box and by H3 cell, roads, vehicle positions and alarm counts, scoped by role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient

from api import create_app
from api.map_params import MAX_SPAN_DEG
from tests.api.map_seed import ALARMS, FLEET_OF, POSITION, TOWN_BOX

pytestmark = pytest.mark.postgres

CALLERS = ("admin", "north", "south", "fleet_a")


@pytest.fixture(scope="module")
def client(database_url: str, map_seeded: dict[str, int]) -> Iterator[TestClient]:
    with TestClient(create_app(database_url)) as c:
        yield c


@pytest.fixture(scope="module")
def get(client: TestClient, map_tokens: dict[str, str]) -> Any:
    def call(caller: str, path: str, **params: Any) -> Any:
        return client.get(path, params=params, headers={"Authorization": f"Bearer {map_tokens[caller]}"})

    return call


def site_ids(map_seeded: dict[str, int], *indexes: int) -> set[int]:
    return {map_seeded[str(i)] for i in indexes}


@pytest.mark.parametrize("caller", CALLERS)
def test_every_role_reads_the_confirmed_hazards_in_the_box(
    get: Any, map_seeded: dict[str, int], caller: str
) -> None:
    r = get(caller, "/v1/hazards", **TOWN_BOX)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["bbox"] == [TOWN_BOX["min_lon"], TOWN_BOX["min_lat"], TOWN_BOX["max_lon"], TOWN_BOX["max_lat"]]
    assert {f["properties"]["id"] for f in doc["features"]} == site_ids(map_seeded, 0, 1, 2)
    assert doc["truncated"] is False
    by_kind = {f["properties"]["kind"]: f for f in doc["features"]}
    assert by_kind["pothole"]["geometry"] == {"type": "Point", "coordinates": [11.5741, 48.1371]}
    stretch = by_kind["slippery"]["geometry"]
    assert stretch["type"] == "LineString"  # 120 m east-west around its centre
    (w, lat_w), (e, lat_e) = stretch["coordinates"]
    assert lat_w == lat_e == pytest.approx(48.1345) and e - w == pytest.approx(
        120 / (111_320 * 0.6673), rel=0.01
    )
    # Anonymous aggregates: nothing in them names a vehicle.
    assert not any("VIN-" in str(f) for f in doc["features"])
    assert set(by_kind["junction"]["properties"]) == {
        "id", "kind", "state", "confidence", "vehicles", "events", "passes", "event_rate", "length_m",
        "first_seen_hour", "last_seen_hour", "thresholds_version",
    }  # fmt: skip


def test_hazards_filter_by_kind_and_state(get: Any, map_seeded: dict[str, int]) -> None:
    potholes = get("admin", "/v1/hazards", kind="pothole", **TOWN_BOX).json()["features"]
    assert {f["properties"]["id"] for f in potholes} == site_ids(map_seeded, 0)
    candidates = get("admin", "/v1/hazards", state="candidate", **TOWN_BOX).json()["features"]
    assert {f["properties"]["id"] for f in candidates} == site_ids(map_seeded, 3)
    far = get("admin", "/v1/hazards", min_lon=11.5, min_lat=48.5, max_lon=11.6, max_lat=48.6).json()[
        "features"
    ]
    assert {f["properties"]["id"] for f in far} == site_ids(map_seeded, 4)


def test_a_stretch_reaching_into_the_box_is_in_it(get: Any, map_seeded: dict[str, int]) -> None:
    """The slippery stretch's centre is at 11.5760; its east end, 60 m on, is inside a box that
    starts 40 m east of the centre."""
    west = 11.5760 + 40 / (111_320 * 0.6673)
    r = get("admin", "/v1/hazards", min_lon=west, min_lat=48.13, max_lon=11.59, max_lat=48.137)
    assert {f["properties"]["id"] for f in r.json()["features"]} == site_ids(map_seeded, 2)


def test_hazards_are_cut_at_the_limit(get: Any) -> None:
    doc = get("admin", "/v1/hazards", limit=2, **TOWN_BOX).json()
    assert len(doc["features"]) == 2 and doc["truncated"] is True and doc["limit"] == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_lon": 11.61}, "max_lon"),  # min above max
        ({"max_lat": 48.125}, "max_lat"),  # min equal to max
        ({"min_lon": 11.6 - MAX_SPAN_DEG - 0.01}, "max_lon"),  # too wide
        ({"min_lat": 48.15 - MAX_SPAN_DEG - 0.01}, "max_lat"),  # too tall
        ({"max_lat": 90.5}, "max_lat"),
        ({"min_lon": -180.5}, "min_lon"),
        ({"min_lat": "nan"}, "min_lat"),
        ({"max_lon": "inf"}, "max_lon"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/hazards", "/v1/hazards/h3", "/v1/roads"])
def test_a_bad_box_is_a_422_naming_the_field(get: Any, path: str, change: dict[str, Any], field: str) -> None:
    r = get("north", path, **{**TOWN_BOX, **change})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert ["query", field] in [e["location"] for e in r.json()["errors"]]


@pytest.mark.parametrize("path", ["/v1/hazards", "/v1/hazards/h3", "/v1/roads"])
def test_the_box_is_required(get: Any, path: str) -> None:
    r = get("admin", path, min_lon=11.5, min_lat=48.1)
    assert r.status_code == 422
    assert {tuple(e["location"]) for e in r.json()["errors"]} == {("query", "max_lon"), ("query", "max_lat")}


def test_hazard_cells_count_kinds_per_cell(get: Any, map_seeded: dict[str, int]) -> None:
    doc = get("fleet_a", "/v1/hazards/h3", resolution=9, **TOWN_BOX).json()
    assert doc["resolution"] == 9
    pothole_cell = h3.latlng_to_cell(48.1371, 11.5741, 9)
    cells = {c["cell"]: c for c in doc["cells"]}
    assert pothole_cell in cells
    assert cells[pothole_cell]["kinds"].get("pothole") == 1
    assert map_seeded["0"] in cells[pothole_cell]["hazards"]
    assert sum(c["kinds"].get("junction", 0) for c in doc["cells"]) == 1
    assert {h for c in doc["cells"] for h in c["hazards"]} == site_ids(map_seeded, 0, 1, 2)
    outline = cells[pothole_cell]["boundary"]
    assert outline[0] == outline[-1] and len(outline) == 7
    assert (
        h3.latlng_to_cell(sum(p[1] for p in outline[:-1]) / 6, sum(p[0] for p in outline[:-1]) / 6, 9)
        == pothole_cell
    )


@pytest.mark.parametrize("resolution", [4, 14, -1])
def test_hazard_cells_resolution_is_bounded(get: Any, resolution: int) -> None:
    assert get("admin", "/v1/hazards/h3", resolution=resolution, **TOWN_BOX).status_code == 422


def test_the_map_routes_need_a_token(client: TestClient) -> None:
    boxed = ("/v1/hazards", "/v1/hazards/h3", "/v1/roads")
    for path in (*boxed, "/v1/roads/extent", "/v1/vehicle-positions", "/v1/alarm-counts"):
        r = client.get(path, params=TOWN_BOX if path in boxed else {})
        assert r.status_code == 401, path


def test_roads_are_the_imported_network(get: Any, map_seeded: dict[str, int]) -> None:
    doc = get("south", "/v1/roads", **TOWN_BOX).json()
    assert len(doc["features"]) == map_seeded["roads"] > 50 and not doc["truncated"]
    assert {f["properties"]["road_class"] for f in doc["features"]} == {
        "local",
        "arterial",
        "highway",
        "ramp",
    }
    assert all(f["geometry"]["type"] == "LineString" for f in doc["features"])
    assert (
        get("south", "/v1/roads", min_lon=11.5, min_lat=48.5, max_lon=11.6, max_lat=48.6).json()["features"]
        == []
    )
    extent = get("fleet_a", "/v1/roads/extent").json()
    assert extent["segments"] == map_seeded["roads"]
    w, s, e, n = extent["bbox"]
    assert TOWN_BOX["min_lon"] < w < 11.575 < e < TOWN_BOX["max_lon"]
    assert TOWN_BOX["min_lat"] < s < 48.137 < n < TOWN_BOX["max_lat"]


VISIBLE = {
    "admin": {"VIN-N1", "VIN-N2", "VIN-N3", "VIN-S1", "VIN-U1"},
    "north": {"VIN-N1", "VIN-N2", "VIN-N3"},
    "south": {"VIN-S1"},
    "fleet_a": {v for v, f in FLEET_OF.items() if f == "fleet-a"},
}


@pytest.mark.parametrize("caller", CALLERS)
def test_vehicle_positions_are_scoped_to_the_role(get: Any, caller: str) -> None:
    doc = get(caller, "/v1/vehicle-positions").json()
    assert doc["type"] == "FeatureCollection"
    features = {f["id"]: f for f in doc["features"]}
    assert set(features) == VISIBLE[caller]
    for vehicle_id, f in features.items():
        if vehicle_id in POSITION:
            lat, lon = POSITION[vehicle_id]
            assert f["geometry"] == {"type": "Point", "coordinates": [lon, lat]}
        else:
            assert f["geometry"] is None and f["properties"]["position_ts"] is None
        active = {(a, s) for v, a, s, cleared in ALARMS if v == vehicle_id and not cleared}
        assert {(a["fault"], a["severity"]) for a in f["properties"]["alarms"]} == active


@pytest.mark.parametrize(
    ("caller", "params", "expected"),
    [
        ("admin", {"fleet_id": "fleet-b"}, {"VIN-N2", "VIN-U1"}),
        ("admin", {"service_centre_id": "sc-south"}, {"VIN-S1"}),
        ("admin", {"severity": "CRITICAL"}, {"VIN-S1"}),  # N1's critical alarm is cleared
        ("admin", {"fault": "brake_pad_wear"}, {"VIN-N1"}),
        ("admin", {"fault": "battery_12v"}, set()),
        ("north", {"service_centre_id": "sc-south"}, set()),  # a filter never widens the scope
        ("north", {"fleet_id": "fleet-a"}, {"VIN-N1"}),
        ("fleet_a", {"fleet_id": "fleet-b"}, set()),
        ("fleet_a", {"severity": "MAJOR"}, {"VIN-N1"}),
    ],
)
def test_vehicle_position_filters(get: Any, caller: str, params: dict[str, str], expected: set[str]) -> None:
    r = get(caller, "/v1/vehicle-positions", **params)
    assert r.status_code == 200, r.text
    assert {f["id"] for f in r.json()["features"]} == expected


def test_vehicle_positions_are_cut_at_the_limit(get: Any) -> None:
    doc = get("admin", "/v1/vehicle-positions", limit=2).json()
    assert [f["id"] for f in doc["features"]] == ["VIN-N1", "VIN-N2"] and doc["truncated"] is True


def test_vehicle_position_filters_are_validated(get: Any) -> None:
    assert get("admin", "/v1/vehicle-positions", severity="LOUD").status_code == 422
    assert get("admin", "/v1/vehicle-positions", fleet_id="a b").status_code == 422
    assert get("admin", "/v1/vehicle-positions", limit=0).status_code == 422
    assert get("admin", "/v1/vehicle-positions", fleet="fleet-a").status_code == 422  # a typo is refused


def counts(doc: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {i["service_centre_id"]: {k: v for k, v in i["active"].items() if v} for i in doc["items"]}


def test_alarm_counts_per_centre(get: Any) -> None:
    doc = get("admin", "/v1/alarm-counts").json()
    assert counts(doc) == {"sc-north": {"MAJOR": 1}, "sc-south": {"CRITICAL": 1}}
    north = next(i for i in doc["items"] if i["service_centre_id"] == "sc-north")
    assert north["total"] == 1 and north["vehicles_with_alarms"] == 1
    assert (north["lat"], north["lon"], north["name"]) == (48.142, 11.575, "North")
    assert counts(get("admin", "/v1/alarm-counts", fleet_id="fleet-b").json()) == {
        "sc-north": {},
        "sc-south": {},
    }


def test_a_centre_sees_only_its_own_alarm_counts(get: Any) -> None:
    assert counts(get("north", "/v1/alarm-counts").json()) == {"sc-north": {"MAJOR": 1}}
    assert counts(get("south", "/v1/alarm-counts").json()) == {"sc-south": {"CRITICAL": 1}}


def test_a_fleet_operator_counts_only_its_fleets_vehicles(get: Any) -> None:
    assert counts(get("fleet_a", "/v1/alarm-counts").json()) == {
        "sc-north": {"MAJOR": 1},
        "sc-south": {"CRITICAL": 1},
    }
    assert counts(get("fleet_a", "/v1/alarm-counts", fleet_id="fleet-b").json()) == {}


def test_a_fault_filter_is_a_fault_name(get: Any) -> None:
    """Found by schemathesis: a NUL in a text parameter reached PostgreSQL (a 500)."""
    assert get("admin", "/v1/vehicle-positions", fault="brake\x00pad").status_code == 422
    assert get("admin", "/v1/vehicle-positions", fault="dtc:P0217").status_code == 200


def test_a_reversed_box_says_what_is_wrong(get: Any) -> None:
    r = get("admin", "/v1/roads", **{**TOWN_BOX, "min_lon": 11.61})
    assert r.json()["errors"] == [
        {
            "location": ["query", "max_lon"],
            "message": "max_lon must be greater than min_lon",
            "type": "value_error",
        }
    ]
