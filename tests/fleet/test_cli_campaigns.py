"""`fleet campaigns show` and `fleet campaigns set` against a real PostgreSQL: a change is written
and recorded with who made it; a refused change exits 2 with the reason and writes nothing."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from fleet.cli import app
from tests.conftest import migrated_fresh_database

pytestmark = pytest.mark.postgres
runner = CliRunner()


def test_settings_change_before_start_and_while_paused_and_never_while_running(pg_server_url: str) -> None:
    url = migrated_fresh_database(pg_server_url, "cli_campaigns")
    env = {"FLEET_DATABASE_URL": url, "COLUMNS": "200"}
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO campaigns (name, ecu, from_version, to_version, status)"
            " VALUES ('fix', 'ECM', '1', '2', 'proposed')"
        )
    args = ["campaigns", "set", "1", "--by", "alice", "--waves", "5,50,100"]
    args += ["--window", "22:00-05:00@Europe/Berlin", "--urgency", "forced_after"]
    args += ["--forced-after", "2027-01-15T00:00:00+00:00", "--no-consent", "--offer-timeout-s", "7200"]
    done = runner.invoke(app, [*args, "--reason", "night only", "--json"], env=env)
    assert done.exit_code == 0, done.output
    shown = json.loads(runner.invoke(app, ["campaigns", "show", "1", "--json"], env=env).output)
    assert shown["waves_pct"] == [5.0, 50.0, 100.0] and shown["offer_timeout_s"] == 7200.0
    assert shown["maintenance_window"] == {"start": "22:00", "end": "05:00", "timezone": "Europe/Berlin"}
    assert (shown["urgency"], shown["forced_after"], shown["consent_required"]) == (
        "forced_after", "2027-01-15T00:00:00+00:00", False,
    )  # fmt: skip
    with psycopg.connect(url) as conn:
        actor, reason = conn.execute(
            "SELECT actor, reason FROM campaign_history WHERE campaign_id = 1 ORDER BY at DESC LIMIT 1"
        ).fetchone() or ("", "")
        conn.execute("UPDATE campaigns SET status = 'running' WHERE campaign_id = 1")
    assert actor == "alice" and "waves_pct" in reason and "(night only)" in reason

    refused = runner.invoke(app, ["campaigns", "set", "1", "--by", "bob", "--soak-s", "60"], env=env)
    assert refused.exit_code == 2 and "pause it first" in refused.output
    assert runner.invoke(app, ["campaigns", "pause", "1", "--by", "bob"], env=env).exit_code == 0
    waves = runner.invoke(app, ["campaigns", "set", "1", "--by", "bob", "--waves", "100"], env=env)
    assert waves.exit_code == 2 and "only before the campaign starts" in waves.output
    bad = runner.invoke(app, ["campaigns", "set", "1", "--by", "bob", "--window", "25:00-05:00@UTC"], env=env)
    assert bad.exit_code == 2 and "HH:MM" in bad.output
    soak_args = ["campaigns", "set", "1", "--by", "bob", "--soak-s", "60", "--urgency", "soft"]
    soak = runner.invoke(app, soak_args, env=env)
    assert soak.exit_code == 0, soak.output
    shown = json.loads(runner.invoke(app, ["campaigns", "show", "1", "--json"], env=env).output)
    assert (shown["soak_s"], shown["urgency"], shown["forced_after"]) == (60.0, "soft", None)
    missing = runner.invoke(app, ["campaigns", "show", "9"], env=env)
    assert missing.exit_code == 2 and "no campaign 9" in missing.output
