"""`fleet notify`: the worker delivers once and reports, `list` and `counts` report as JSON, and a
bad setting is refused without showing its secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from typer.testing import CliRunner

from fleet.cli import app
from remedies.notifications import enqueue
from tests.remedies.conftest import OTA, Receiver, raise_alarm, seed_owner

pytestmark = pytest.mark.postgres
SECRET = "cli-test-secret-of-enough-length"


def fleet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")} | env
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", "notify", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["notify", "--help"])
    assert result.exit_code == 0
    for command in ("worker", "list", "counts"):
        assert command in result.output


def test_worker_once_list_and_counts(notify_db: str, receiver: Receiver) -> None:
    with psycopg.connect(notify_db) as conn:
        seed_owner(conn, "O-1", ("VEH-1",))
        n = enqueue(conn, "VEH-1", raise_alarm(conn, "VEH-1"), 3, OTA).notification_id
        conn.commit()
    env = {
        "FLEET_DATABASE_URL": notify_db,
        "FLEET_NOTIFY_WEBHOOK_URL": receiver.url,
        "FLEET_NOTIFY_WEBHOOK_SECRET": SECRET,
    }
    run = fleet(env, "worker", "--once", "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["sweep"] == {"stalled": 0, "due": 1, "deferred": 1}
    assert report["sent_by_channel"] == {"webhook": 1}
    assert report["suppressed"] == {"channel_off": 2}  # no SMTP settings, no broker URL: those are off
    assert [b["notification_id"] for b in receiver.bodies()] == [n]
    assert SECRET not in run.stdout + run.stderr

    listed = fleet(env, "list", "--vehicle", "VEH-1", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    (row,) = json.loads(listed.stdout)
    assert row["notification_id"] == n and row["remedy_id"] == 3
    assert {d["channel"]: d["state"] for d in row["deliveries"]} == {
        "email": "suppressed",
        "in_car": "suppressed",
        "webhook": "sent",
    }
    assert "example.org" not in listed.stdout and "+49" not in listed.stdout  # no addresses
    table = fleet(env, "list", "--owner", "O-1")
    assert f"#{n} " in table.stdout and "webhook: sent" in table.stdout

    counted = fleet(env, "counts", "--json")
    assert json.loads(counted.stdout)["reached"] == 1
    assert fleet(env, "list").returncode == 2  # neither --vehicle nor --owner

    bad = fleet(env | {"FLEET_NOTIFY_WEBHOOK_URL": "http://receiver.example/x"}, "worker", "--once")
    assert bad.returncode == 2 and "https" in bad.stderr and SECRET not in bad.stderr
