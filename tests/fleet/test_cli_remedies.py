"""`fleet remedies`, `fleet bookings` and `fleet campaigns` against a real PostgreSQL: the engine
runs and reports, people's acts are checked and recorded, refused acts exit 2 with the reason."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from fleet.cli import app
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres
runner = CliRunner()


def test_campaign_acts_remedy_runs_and_listings(pg_server_url: str) -> None:
    url = migrated_fresh_database(pg_server_url, "cli_remedies")
    env = {"FLEET_DATABASE_URL": url, "COLUMNS": "200"}
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO campaigns (name, ecu, from_version, to_version, status)"
            " VALUES ('fix', 'ECM', '1', '2', 'proposed')"
        )
    done = runner.invoke(app, ["campaigns", "approve", "1", "--by", "alice", "--reason", "checked"], env=env)
    assert done.exit_code == 0 and "approved" in done.output
    refused = runner.invoke(app, ["campaigns", "resume", "1", "--by", "alice"], env=env)
    assert refused.exit_code == 2 and "cannot resume" in refused.output
    missing = runner.invoke(app, ["campaigns", "pause", "9", "--by", "alice"], env=env)
    assert missing.exit_code == 2 and "no campaign 9" in missing.output
    (listed,) = json.loads(runner.invoke(app, ["campaigns", "list", "--json"], env=env).output)
    assert (listed["campaign_id"], listed["status"]) == (1, "approved")
    report = json.loads(runner.invoke(app, ["remedies", "run", "--json"], env=env).output)
    assert report["decided"] == 0
    assert json.loads(runner.invoke(app, ["bookings", "list", "--json"], env=env).output) == []
    bad = runner.invoke(app, ["bookings", "complete", "5", "--by", "centre:x"], env=env)
    assert bad.exit_code == 2 and "not an open booking" in bad.output
    entries = json.loads(runner.invoke(app, ["remedies", "catalogue", "--json"], env=env).output)
    assert {"firmware-cure", "tyre-repair"} <= {e["name"] for e in entries}
