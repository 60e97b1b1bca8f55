"""The driving-score shell against a real PostgreSQL: the road network imports idempotently (also
through `fleet roads import`), the analysis job stores a simulated fleet's trips with limits from
the imported roads, a re-run writes the same rows, and data that arrives in two parts stores the
trips one arrival stores; `fleet trips` lists them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from analytics.driving.roads import parse_road_geojson
from analytics.driving.score import SIGNALS
from analytics.job import run_analysis
from analytics.road_store import import_road_lines
from analytics.suite import default_detectors
from contract import topics, wire_v1
from contract.batch import TelemetryBatch
from fleet.cli import app
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage
from simulators.network_export import network_geojson
from simulators.scenario import CitySpec, NetworkSpec, Scenario
from tests.analytics.simulated import SimulatedRun, recent_morning_unix_s, simulate
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres
runner = CliRunner()
S = 1_000_000_000


@pytest.fixture(scope="module")
def run() -> SimulatedRun:
    scenario = Scenario(
        name="driving-job",
        seed=11,
        vehicles=6,
        duration_s=2400.0,
        city=CitySpec(blocks=6),
        mean_parking_s=300.0,
        network=NetworkSpec(outage_vehicle_share=0.0, duplicate_batch_probability=0.0),
    )
    return simulate(scenario, SIGNALS, start_unix_s=recent_morning_unix_s())


def _store(url: str, run: SimulatedRun, since_ns: int, until_ns: int, seq: int) -> None:
    """The run's rows with since <= ts < until, one batch per vehicle, through ingest's triage."""
    c = run.columns
    envelopes = []
    for k, vid in enumerate(c.vehicle_ids):
        rows = (c.vehicle == k) & (c.ts_ns >= since_ns) & (c.ts_ns < until_ns)
        if rows.any():
            batch = TelemetryBatch(vid, seq, c.ts_ns[rows], {p: v[rows] for p, v in c.values.items()})
            envelopes.append(
                Envelope(topics.topic_for(vid, topics.TELEMETRY), wire_v1.encode(batch), time.time_ns())
            )
    store = TelemetryStore(url)
    try:
        assert store.write(triage(envelopes)).batches == len(envelopes)
    finally:
        store.close()


def _analyse(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return run_analysis(conn, [], settle_s=0.0).as_dict()


def _trips(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT vehicle_id, started_at, ended_at, distance_km, harsh_brakes, harsh_accelerations,"
            " harsh_corners, speeding_share, night_share, score, components, thresholds_version"
            " FROM trips ORDER BY 1, 2"
        ).fetchall()


def test_roads_import_is_idempotent_and_updates_a_changed_limit(pg_server_url: str, tmp_path: Path) -> None:
    url = migrated_fresh_database(pg_server_url, "fleet_roads")
    doc = network_geojson(simulate_network())
    path = tmp_path / "network.geojson"
    path.write_text(json.dumps(doc))
    first = runner.invoke(app, ["roads", "import", str(path), "--json"], env={"FLEET_DATABASE_URL": url})
    assert first.exit_code == 0, first.output
    n = len(doc["features"])
    assert json.loads(first.stdout) == {
        "file": str(path),
        "lines": n,
        "inserted": n,
        "updated": 0,
        "unchanged": 0,
    }
    again = runner.invoke(app, ["roads", "import", str(path), "--json"], env={"FLEET_DATABASE_URL": url})
    assert json.loads(again.stdout)["unchanged"] == n
    doc["features"][0]["properties"]["maxspeed"] = 20
    with psycopg.connect(url) as conn:
        changed = import_road_lines(conn, parse_road_geojson(doc))
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, n - 1)
    bad = tmp_path / "bad.geojson"
    bad.write_text("[1, 2]")
    refused = runner.invoke(app, ["roads", "import", str(bad)], env={"FLEET_DATABASE_URL": url})
    assert refused.exit_code == 2


def simulate_network():  # noqa: ANN201
    from simulators.roads import city_grid

    return city_grid(blocks=4)


def test_two_arrivals_store_the_trips_of_one_and_a_rerun_changes_nothing(
    pg_server_url: str, run: SimulatedRun
) -> None:
    lines = parse_road_geojson(network_geojson(run.sim.network))
    cut = run.ts_ns_at(1300.0)
    whole = migrated_fresh_database(pg_server_url, "fleet_driving_whole")
    split = migrated_fresh_database(pg_server_url, "fleet_driving_split")
    for url in (whole, split):
        with psycopg.connect(url) as conn:
            import_road_lines(conn, lines)
    _store(whole, run, 0, 2**62, 1)
    report = _analyse(whole)
    assert report["driving"]["vehicles"] == 6 and report["driving"]["trips_written"] > 6
    assert report["driving"]["road_pieces"] > 0
    stored = _trips(whole)
    assert _analyse(whole)["vehicles"] == 0  # nothing new: nothing to do
    _store(split, run, 0, cut, 1)
    _analyse(split)
    _store(split, run, cut, 2**62, 2)
    _analyse(split)
    assert _trips(split) == stored
    # The trips and their limits: most moving time is on a road with a known limit.
    known = sum(t[10]["limit_known_s"] for t in stored)
    moving = sum((t[2] - t[1]).total_seconds() for t in stored)
    assert known > 0.8 * moving
    assert all(t[11] == "driving-1" for t in stored)

    listed = runner.invoke(app, ["trips", "--json", "--limit", "1000"], env={"FLEET_DATABASE_URL": whole})
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    assert len(doc["trips"]) == len(stored)
    by_vehicle = {v["vehicle_id"]: v for v in doc["vehicles"]}
    for vid in {t[0] for t in stored}:
        mine = [t for t in stored if t[0] == vid]
        dist = sum(t[3] for t in mine)
        assert by_vehicle[vid]["score"] == pytest.approx(sum(t[9] * t[3] for t in mine) / dist, abs=1e-3)
    assert np.isfinite([v["score"] for v in doc["vehicles"]]).all()


def test_the_driving_step_cut_from_the_detectors_read_stores_the_trips_of_its_own_read(
    pg_server_url: str, run: SimulatedRun
) -> None:
    """With detectors, the job reads the telemetry once and cuts the driving step's rows from that
    read; without, the driving step reads its window itself: the same trips."""
    lines = parse_road_geojson(network_geojson(run.sim.network))
    own = migrated_fresh_database(pg_server_url, "fleet_driving_own")
    shared = migrated_fresh_database(pg_server_url, "fleet_driving_shared")
    for url in (own, shared):
        with psycopg.connect(url) as conn:
            import_road_lines(conn, lines)
        _store(url, run, 0, 2**62, 1)
    alone = _analyse(own)
    with psycopg.connect(shared) as conn:
        report = run_analysis(conn, default_detectors(), settle_s=0.0).as_dict()
    assert report["driving"] == alone["driving"] and report["driving"]["trips_written"] > 6
    assert report["rows_read"] >= report["driving"]["rows_read"] > 0
    assert _trips(shared) == _trips(own)


def test_local_time_is_the_home_centres_else_the_owners_else_utc(pg_server_url: str) -> None:
    from analytics.driving_job import _utc_offsets_s

    url = migrated_fresh_database(pg_server_url, "fleet_driving_zones")
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO service_centres (service_centre_id, name, time_zone) VALUES ('C1', 'c', 'Etc/GMT-1')"
        )
        conn.execute(
            "INSERT INTO owners (owner_id, name, time_zone)"
            " VALUES ('O1', 'o', 'Asia/Tokyo'), ('O2', 'p', 'Nowhere/X')"
        )
        conn.execute(
            "INSERT INTO vehicles (vehicle_id, service_centre_id, owner_id) VALUES ('A', 'C1', 'O1'),"
            " ('B', NULL, 'O1'), ('C', NULL, NULL), ('D', NULL, 'O2')"
        )
        offsets = _utc_offsets_s(conn, ["A", "B", "C", "D", "E"], 1_764_201_600 * S)
    assert offsets.tolist() == [3600.0, 9 * 3600.0, 0.0, 0.0, 0.0]
