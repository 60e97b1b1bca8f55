"""The registry in PostgreSQL: import is idempotent, keeps the good rows and names each bad one by
its line; export imports back to the same registry; migration 0010 keeps the data that predates it."""

from __future__ import annotations

import importlib
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from fleet.cli import app
from registry import export_rows, import_rows, read_registry_file
from registry.files import read_toml, write_toml
from tests.conftest import fresh_database

pytestmark = pytest.mark.postgres
EXAMPLE = Path(__file__).parents[2] / "deploy" / "registry.example.toml"
CSV_EXAMPLE = Path(__file__).parents[2] / "deploy" / "registry" / "vehicles.csv"
runner = CliRunner()
migrate_module = importlib.import_module("ingest.schema.migrate")

BAD_FILE = """\
[[fleets]]
fleet_id = "f1"
name = "Fleet one"

[[fleets]]
fleet_id = "f1"
name = "Fleet one again"

[[service_centres]]
service_centre_id = "sc-1"
name = "North"
lat = 59.3
lon = 18.1
skills = ["tyres"]
capacity_per_day = 5
opening_hours = "mon-fri 08:00-17:00"
time_zone = "Atlantis/Capital"

[[owners]]
owner_id = "o1"
name = "Ann"
time_zone = "Europe/Stockholm"

[[vehicles]]
vehicle_id = "V1"
fleet_id = "f1"
owner_id = "o1"

[[vehicles]]
vehicle_id = "V2"
fleet_id = "f1"
service_centre_id = "sc-1"

[[vehicles]]
vehicle_id = "V3"
vin = "ZFA31200000123456"

[[vehicles]]
vehicle_id = "V4"
vin = "ZFA31200000123456"
"""


def _snapshot(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return export_rows(conn)


def test_importing_the_example_twice_leaves_the_same_registry(registry_url: str) -> None:
    rows, problems = read_registry_file(EXAMPLE)
    with psycopg.connect(registry_url) as conn:
        first = import_rows(conn, rows, problems)
    once = _snapshot(registry_url)
    with psycopg.connect(registry_url) as conn:
        second = import_rows(conn, rows, problems)
    assert first.problems == [] and second.problems == []
    assert first.counts["vehicles"].inserted == 3 and first.rows_kept == len(rows)
    assert all(c.inserted == c.updated == 0 for c in second.counts.values())
    assert second.counts["vehicles"].unchanged == 3
    assert _snapshot(registry_url) == once
    assert [v["service_centre_id"] for v in once["vehicles"]] == [
        "sc-stockholm-1",
        "sc-berlin-ev",
        "sc-berlin-ev",
    ]


def test_bad_rows_are_named_by_line_and_the_good_rows_are_kept(registry_url: str) -> None:
    rows, problems = read_toml(BAD_FILE)
    with psycopg.connect(registry_url) as conn:
        report = import_rows(conn, rows, problems)
    refused = {(p.line, p.key): p.message for p in report.problems}
    assert set(refused) == {(5, "f1"), (9, "sc-1"), (29, "V2"), (38, "V4")}
    assert "first at line 1" in refused[(5, "f1")]
    assert "IANA time zone" in refused[(9, "sc-1")]
    assert "service_centre_id 'sc-1' is not in the registry" in refused[(29, "V2")]
    assert "belongs to vehicle 'V3'" in refused[(38, "V4")]
    kept = _snapshot(registry_url)
    assert [f["name"] for f in kept["fleets"]] == ["Fleet one"]
    assert [v["vehicle_id"] for v in kept["vehicles"]] == ["V1", "V3"]


def test_an_update_changes_only_what_differs_and_never_deletes(registry_url: str) -> None:
    rows, _ = read_registry_file(EXAMPLE)
    with psycopg.connect(registry_url) as conn:
        import_rows(conn, rows)
        moved = read_toml('[[vehicles]]\nvehicle_id = "VEH-0003"\nfleet_id = "rent-north"\n')[0]
        report = import_rows(conn, moved)
    assert report.counts["vehicles"].updated == 1
    after = {v["vehicle_id"]: v for v in _snapshot(registry_url)["vehicles"]}
    assert after["VEH-0003"] == {
        "vehicle_id": "VEH-0003",
        "fleet_id": "rent-north",
    }  # a row is the whole record
    assert len(after) == 3


def test_export_imports_back_to_the_same_registry(registry_url: str, pg_server_url: str) -> None:
    rows, _ = read_registry_file(EXAMPLE)
    with psycopg.connect(registry_url) as conn:
        import_rows(conn, rows)
        import_rows(conn, read_registry_file(CSV_EXAMPLE)[0])
    exported = _snapshot(registry_url)
    other = fresh_database(pg_server_url, "fleet_registry_copy")
    with psycopg.connect(other) as conn:
        migrate_module.migrate(conn)
        report = import_rows(conn, read_toml(write_toml(exported))[0])
    assert report.problems == [] and _snapshot(other) == exported
    assert len(exported["vehicles"]) == 5


def test_the_cli_imports_reports_and_exports(registry_url: str, tmp_path: Path) -> None:
    env = {"FLEET_DATABASE_URL": registry_url}
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_FILE)
    result = runner.invoke(app, ["registry", "import", str(bad), "--json"], env=env)
    assert result.exit_code == 1, result.output
    assert '"line": 29' in result.stdout
    result = runner.invoke(app, ["registry", "import", str(EXAMPLE)], env=env)
    assert result.exit_code == 0, result.output
    assert "vehicles: 3 added, 0 updated, 0 unchanged" in result.stdout
    result = runner.invoke(
        app, ["registry", "export", "--format", "csv", "-o", str(tmp_path / "out")], env=env
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["registry", "import", str(tmp_path / "out" / "vehicles.csv")], env=env)
    assert result.exit_code == 0 and "vehicles: 0 added, 0 updated, 5 unchanged" in result.stdout
    result = runner.invoke(app, ["registry", "import", str(tmp_path / "nothing.toml")], env=env)
    assert result.exit_code == 2


def test_migration_0010_keeps_the_data_that_predates_the_registry(
    pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_database(pg_server_url, "fleet_registry_upgrade")
    everything = migrate_module.available_migrations()
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: [m for m in everything if m[0] < 10])
    with psycopg.connect(url) as conn:
        migrate_module.migrate(conn)
        conn.execute(
            "INSERT INTO vehicles (vehicle_id, model, service_centre_id) VALUES"
            " ('OLD-1', 'Sedan', 'sc-a'), ('OLD-2', NULL, 'sc-a'), ('OLD-3', NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO dtc_reports (vehicle_id, ts, codes, firmware_version)"
            " VALUES ('OLD-1', now(), '{P0301}', '4.2.0')"
        )
        conn.execute(
            "INSERT INTO vehicle_status (vehicle_id, state, details, reported_at)"
            """ VALUES ('OLD-1', 'online', '{"agent_version": "0.0.9"}', now())"""
        )
        conn.commit()
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: everything)
    with psycopg.connect(url) as conn:
        assert 10 in migrate_module.migrate(conn).applied
        vehicles = conn.execute(
            "SELECT vehicle_id, model_id, service_centre_id FROM vehicles ORDER BY 1"
        ).fetchall()
        dtc = conn.execute(
            "SELECT codes, v1_firmware_version, agent_version FROM dtc_reports"
        ).fetchall()
        status = conn.execute("SELECT agent_version FROM vehicle_status").fetchall()
        centres = conn.execute("SELECT service_centre_id FROM service_centres").fetchall()
    assert vehicles == [("OLD-1", "Sedan", "sc-a"), ("OLD-2", None, "sc-a"), ("OLD-3", None, None)]
    assert centres == [("sc-a",)]
    assert status == [("0.0.9",)]
    assert dtc == [(["P0301"], "4.2.0", "")]  # v1's ambiguous field is kept as sent, under its own name
