"""`fleet query` and `fleet maintain` through the real CLI against a real PostgreSQL: the JSON
answer is the query module's, late data is aggregated by `fleet maintain` (or by the query itself),
and fleet-operator tokens name registry fleets."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner, Result

from api.fleet_queries import FleetQuery, run_query
from fleet.cli import app
from ingest import TelemetryStore
from tests.api import fleet_scenario as fs

pytestmark = pytest.mark.postgres
runner = CliRunner()


def fleet(url: str, *args: str) -> Result:
    return runner.invoke(app, list(args), env={"FLEET_DATABASE_URL": url})


@pytest.fixture(scope="module")
def scenario(pg_url: str) -> fs.Scenario:
    scenario = fs.make_scenario(31, vehicles=5, hours=6)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        fs.register(conn, scenario)
    return scenario


def test_query_answers_as_json_and_as_a_table(pg_url: str, scenario: fs.Scenario) -> None:
    store = TelemetryStore(pg_url)
    try:
        store.ensure_partitions()
        fs.deliver(store, scenario.on_time)
        maintained = fleet(pg_url, "maintain", "--json")
        fs.deliver(store, scenario.late)
    finally:
        store.close()
    assert maintained.exit_code == 0, maintained.output
    assert "10-minute: " in json.loads(maintained.stdout)["summary"]
    until = scenario.end.isoformat()
    for query in FleetQuery:
        got = fleet(pg_url, "query", query.value, "--fleet", "fq-main", "--until", until, "--json")
        assert got.exit_code == 0, got.output
        doc = json.loads(got.stdout)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            direct = run_query(conn, query, "fq-main", until=scenario.end)
            members = scenario.fleet_vehicles["fq-main"]
            expected = fs.reference(
                query.value, members, fs.raw_rows(conn, [v for v, _ in members]), scenario.end
            )
        assert doc["query"] == query.value and len(doc["items"]) == len(direct.rows) == len(expected)
        if query is FleetQuery.LONG_DRIVING:
            assert [(i["vehicle_id"], i["driving_buckets"]) for i in doc["items"]] == expected
    table = fleet(pg_url, "query", "daily-activity", "--fleet", "fq-main", "--days", "2")
    assert table.exit_code == 0 and "daily-activity of fleet fq-main" in table.stdout
    assert "vehicles_driving" in table.stdout and "m-bev" in table.stdout


def test_query_refuses_unknown_fleets_names_and_times(pg_url: str, scenario: fs.Scenario) -> None:
    unknown = fleet(pg_url, "query", "low-fuel", "--fleet", "fq-nowhere")
    assert unknown.exit_code == 1 and "fleet 'fq-nowhere' not found" in unknown.stderr
    assert fleet(pg_url, "query", "high-load", "--fleet", "fq-main").exit_code == 2
    assert fleet(pg_url, "query", "low-fuel", "--fleet", "fq-main", "--until", "yesterday").exit_code == 2


def test_fleet_operator_tokens(pg_url: str, scenario: fs.Scenario) -> None:
    typo = fleet(pg_url, "token", "create", "fq-op-typo", "--role", "fleet_operator", "--fleet", "fq-mian")
    assert typo.exit_code == 1 and "no fleet 'fq-mian' in the registry" in typo.stderr
    made = fleet(
        pg_url,
        "token",
        "create",
        "fq-op",
        "--role",
        "fleet_operator",
        "--fleet",
        "fq-main",
        "--fleet",
        "fq-other",
        "--json",
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["fleet_ids"] == ["fq-main", "fq-other"]
    listed = json.loads(fleet(pg_url, "token", "list", "--json").stdout)
    assert [t["fleet_ids"] for t in listed if t["name"] == "fq-op"] == [["fq-main", "fq-other"]]
