"""The `fleet` CLI: help everywhere, and the demo end to end on the embedded servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from typer.testing import CliRunner

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
    assert summary["dead_letters"] == 0
    with psycopg.connect(pg_url) as conn:
        (stored,) = conn.execute(
            "SELECT count(*) FROM ingest_batches WHERE vehicle_id LIKE 'SIM-%%'"
        ).fetchone()
    assert stored >= summary["batches_published"]
