"""The hazard map through a real PostgreSQL: a simulated run stored by ingest's own store, the
analysis job's hazard step over it, and the map scored against the run's ground truth; a re-run
adds nothing, and the same data arriving in two halves gives the same map."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from analytics.hazard_scoring import score_hazards
from analytics.hazard_store import site_rows
from analytics.job import run_analysis
from tests.analytics.hazard_data import hazard_scenario, simulate_hazards, store_run
from tests.analytics.simulated import SimulatedRun
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def run() -> SimulatedRun:
    return simulate_hazards(hazard_scenario(5))


def _analyse(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        return run_analysis(conn, [], settle_s=0.0).hazards


def _sites(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        return site_rows(conn)


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM hazard_events), (SELECT count(*) FROM hazard_passes)"
        )
        return row.fetchone()  # type: ignore[return-value]


def test_the_map_finds_every_hazard_and_forgets_the_repaired_one(
    pg_server_url: str, run: SimulatedRun
) -> None:
    url = migrated_fresh_database(pg_server_url, "fleet_hazards_once")
    store_run(url, run)
    first = _analyse(url)
    assert first["events"] > 0 and first["passes"] > 0
    scores = score_hazards(run.truth, _sites(url))
    for kind, s in scores["kinds"].items():
        assert s["precision"] == 1.0 and s["recall"] == 1.0, (kind, s)
        assert s["median_error_m"] <= 10.0, (kind, s)
    assert scores["kinds"]["pothole"]["repaired_checked"] == 1
    assert scores["repaired_still_on_map"] == []
    _check_the_cli_map(url, confirmed=sum(s["on_map"] for s in scores["kinds"].values()))
    # Nothing new arrived: a second run reads nothing and changes nothing.
    before, counts = _sites(url), _counts(url)
    second = _analyse(url)
    assert second == {} or second["events"] == 0
    assert _sites(url) == before or [s["state"] for s in _sites(url)] == [s["state"] for s in before]
    assert _counts(url) == counts


def test_two_arrivals_give_the_map_of_one(pg_server_url: str, run: SimulatedRun) -> None:
    once = migrated_fresh_database(pg_server_url, "fleet_hazards_one")
    store_run(once, run)
    _analyse(once)
    twice = migrated_fresh_database(pg_server_url, "fleet_hazards_two")
    half = run.ts_ns_at(run.scenario.duration_s / 2)
    store_run(twice, run, until_ns=half)
    _analyse(twice)
    store_run(twice, run, from_ns=half)
    _analyse(twice)
    a = score_hazards(run.truth, _sites(once))
    b = score_hazards(run.truth, _sites(twice))
    for kind in a["kinds"]:
        for field in ("true_positives", "false_positives", "false_negatives"):
            assert a["kinds"][kind][field] == b["kinds"][kind][field], (kind, field, a, b)
        assert abs(a["kinds"][kind]["median_error_m"] - b["kinds"][kind]["median_error_m"]) < 3.0
    assert b["repaired_still_on_map"] == []


PUBLIC_FIELDS = {
    "id", "kind", "state", "confidence", "vehicles", "events", "passes", "event_rate", "length_m",
    "first_seen_hour", "last_seen_hour", "thresholds_version",
}  # fmt: skip


def _check_the_cli_map(url: str, confirmed: int) -> None:
    """`fleet hazards` gives the confirmed sites as GeoJSON and H3 cells, with no vehicle in them."""
    from typer.testing import CliRunner

    from fleet.cli import app

    runner = CliRunner()
    env = {"FLEET_DATABASE_URL": url}
    result = runner.invoke(app, ["hazards", "--format", "geojson"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == confirmed
    for f in doc["features"]:
        assert set(f["properties"]) == PUBLIC_FIELDS
        assert f["properties"]["state"] == "confirmed" and f["properties"]["vehicles"] >= 3
        want = "LineString" if f["properties"]["kind"] == "slippery" else "Point"
        assert f["geometry"]["type"] == want
    cells = json.loads(
        runner.invoke(app, ["hazards", "--format", "h3", "--resolution", "10"], env=env).stdout
    )
    assert cells["resolution"] == 10 and cells["cells"]
    assert {i for c in cells["cells"] for i in c["hazards"]} == {
        f["properties"]["id"] for f in doc["features"]
    }
    listed = runner.invoke(app, ["hazards", "--all", "--json"], env=env)
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) > confirmed
    bad = runner.invoke(app, ["hazards", "--format", "kml"], env=env)
    assert bad.exit_code == 2
