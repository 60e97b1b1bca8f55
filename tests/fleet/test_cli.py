"""The `fleet` CLI: help everywhere, the demo end to end on the embedded servers, and the token
commands against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psycopg
import pytest
from typer.testing import CliRunner, Result

from fleet.cli import app

runner = CliRunner()


def _command_paths(typer_app=app, prefix=()):  # noqa: ANN001, ANN202
    import typer.main

    group = typer.main.get_command(typer_app)
    stack = [(prefix, group)]
    while stack:
        path, cmd = stack.pop()
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append(((*path, name), sub))


@pytest.mark.parametrize("path", sorted(_command_paths()), ids=lambda p: " ".join(p) or "fleet")
def test_help_works_for_every_command(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_every_expected_command_exists() -> None:
    paths = {" ".join(p) for p in _command_paths()}
    assert {"demo", "ingest", "api", "migrate", "up", "token create", "creds vehicle"} <= paths


def run_demo(tmp_path, **fleet_env: str) -> dict:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update(HOME=str(tmp_path), **fleet_env)
    result = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "demo", "--vehicles", "15", "--duration", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.broker
@pytest.mark.postgres
def test_demo_on_embedded_servers_stores_every_published_sample(tmp_path) -> None:  # noqa: ANN001
    summary = run_demo(tmp_path)
    assert summary["vehicles"] == 15
    assert summary["samples_published"] > 0
    assert summary["samples_stored"] == summary["samples_published"]
    assert summary["dead_letters"] == 0
    assert summary["api_vehicles_visible"] == 15
    # The fleet is in the registry, reported its software, and each centre sees exactly its own.
    assert summary["vehicles_registered"] == summary["vehicles_with_software"] == 15
    assert summary["service_centres"] >= 3 and summary["api_centres_see_own_vehicles"] is True
    # The worn brake pads raise their code at once and are replaced half-way: two messages at least.
    assert summary["dtc_reports_stored"] == summary["dtc_messages"] >= 2


@pytest.mark.broker
@pytest.mark.postgres
def test_demo_uses_servers_given_by_environment(tmp_path, pg_url: str, mosquitto_broker) -> None:  # noqa: ANN001
    """With FLEET_DATABASE_URL and FLEET_MQTT_URL set, nothing embedded starts: the data lands in
    the given PostgreSQL through the given Mosquitto."""
    b = mosquitto_broker
    summary = run_demo(
        tmp_path,
        FLEET_DATABASE_URL=pg_url,
        FLEET_MQTT_URL=f"mqtt://{b.ingest.username}:{b.ingest.password}@{b.host}:{b.port}",
        FLEET_SIMULATOR_MQTT_URL=f"mqtt://{b.simulator.username}:{b.simulator.password}@{b.host}:{b.port}",
    )
    assert summary["samples_stored"] == summary["samples_published"] > 0
    assert summary["dtc_reports_stored"] == summary["dtc_messages"] >= 2
    assert summary["dead_letters"] == 0 and summary["api_centres_see_own_vehicles"] is True
    with psycopg.connect(pg_url) as conn:
        (stored,) = conn.execute(
            "SELECT count(*) FROM ingest_batches WHERE vehicle_id LIKE 'SIM-%%'"
        ).fetchone()
    assert stored >= summary["batches_published"]


def _token(url: str, *args: str) -> Result:
    """Run `fleet token ...` against the test database (nothing embedded starts)."""
    return runner.invoke(app, ["token", *args], env={"FLEET_DATABASE_URL": url})


def _name(tag: str) -> str:
    return f"{tag}-{time.time_ns()}"


@pytest.mark.postgres
def test_token_create_refuses_an_active_name_and_replace_rotates(pg_url: str) -> None:
    name = _name("desk")
    unknown = _token(pg_url, "create", name, "--role", "service_centre", "--centre", "sc-nowhere")
    assert unknown.exit_code == 1 and "no service centre 'sc-nowhere' in the registry" in unknown.stderr
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "INSERT INTO service_centres (service_centre_id, name) VALUES ('sc-1', 'One')"
            " ON CONFLICT DO NOTHING"
        )
    first = _token(pg_url, "create", name, "--role", "service_centre", "--centre", "sc-1", "--json")
    assert first.exit_code == 0, first.output
    created = json.loads(first.stdout)
    assert created["name"] == name and created["replaced"] == 0 and len(created["token"]) >= 43

    again = _token(pg_url, "create", name)
    assert again.exit_code == 1
    assert again.stdout == ""
    assert f"an active token is already called {name!r}" in again.stderr and "--replace" in again.stderr

    rotated = _token(pg_url, "create", name, "--role", "admin", "--replace", "--json")
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.stdout)["replaced"] == 1
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT role, revoked_at IS NULL FROM api_tokens WHERE name = %s ORDER BY created_at", (name,)
        ).fetchall()
    assert rows == [("service_centre", False), ("admin", True)]  # the old one revoked, one active


@pytest.mark.postgres
def test_token_revoke_of_an_unknown_or_revoked_name_fails_clearly(pg_url: str) -> None:
    unknown = _token(pg_url, "revoke", _name("nobody"))
    assert unknown.exit_code == 1
    assert "no token has that name" in unknown.stderr

    name = _name("temp")
    assert _token(pg_url, "create", name).exit_code == 0
    revoked = _token(pg_url, "revoke", name, "--json")
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout) == {"name": name, "revoked": 1}
    twice = _token(pg_url, "revoke", name)
    assert twice.exit_code == 1
    assert f"no active token called {name!r}: it was revoked at" in twice.stderr
    # A revoked token's name is free again.
    assert _token(pg_url, "create", name).exit_code == 0


@pytest.mark.postgres
@pytest.mark.parametrize(
    "args",
    [[""], [" padded"], ["x", "--role", "root"], ["x", "--centre", "c"]],
    ids=["empty", "padded", "bad-role", "admin-with-centre"],
)
def test_token_create_rejects_invalid_input_with_exit_2(pg_url: str, args: list[str]) -> None:
    result = _token(pg_url, "create", *args)
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr.startswith("invalid token:")


@pytest.mark.postgres
def test_token_list_shows_names_and_roles_but_never_secrets(pg_url: str) -> None:
    name = _name("listed")
    token = json.loads(_token(pg_url, "create", name, "--json").stdout)["token"]
    active = _token(pg_url, "list", "--json")
    assert active.exit_code == 0, active.output
    row = next(r for r in json.loads(active.stdout) if r["name"] == name)
    assert row["role"] == "admin" and row["revoked_at"] is None
    assert token not in active.stdout
    assert _token(pg_url, "revoke", name).exit_code == 0
    assert name not in _token(pg_url, "list", "--json").stdout
    every = json.loads(_token(pg_url, "list", "--all", "--json").stdout)
    assert next(r for r in every if r["name"] == name)["revoked_at"] is not None


def test_score_gives_a_table_and_json_with_each_miss_and_how_long_it_showed(tmp_path) -> None:  # noqa: ANN001
    s = 10**9
    faults = [
        {"vehicle_id": v, "kind": "charging_fault", "onset_ts_ns": 100 * s, "repaired_at_ts_ns": None,
         "params": {}, "symptom_s": shown}
        for v, shown in (("A", 3000.0), ("B", 17.0))
    ]  # fmt: skip
    truth = {"start_ts_ns": 0, "duration_s": 7200.0, "faults": faults, "hazards": []}
    (tmp_path / "ground_truth.json").write_text(json.dumps(truth))
    alarms = [{"vehicle_id": "A", "fault": "charging_fault", "raised_ts_ns": 400 * s}]
    (tmp_path / "alarms.json").write_text(json.dumps({"schema": "fleetpulse.alarms.v1", "alarms": alarms}))
    table = runner.invoke(app, ["score", "--report-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "charging_fault" in table.output and "B (showed 17 s)" in table.output
    doc = json.loads(runner.invoke(app, ["score", "--report-dir", str(tmp_path), "--json"]).output)
    charging = doc["faults"]["charging_fault"]
    assert (charging["recall"], charging["recall_observable"], charging["observable_faults"]) == (0.5, 1.0, 1)
    bad = runner.invoke(app, ["score", "--report-dir", str(tmp_path / "missing")])
    assert bad.exit_code == 2
