"""`fleet bench autosave` does what it measures: a killed Mosquitto comes back with its last save."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fleet.cli import app

pytestmark = [pytest.mark.broker, pytest.mark.mosquitto]


def test_a_killed_broker_loses_what_it_acknowledged_since_its_last_save() -> None:
    command = ["bench", "autosave", "--setting", "60", "--setting", "changes:50", "--runs", "1"]
    result = CliRunner().invoke(app, [*command, "--messages", "400", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    by_setting = {r["setting"]: r for r in report["runs"]}
    never_saved, often_saved = by_setting["interval:60"], by_setting["changes:50"]
    # no save within the first minute: everything acknowledged before the kill is gone
    assert never_saved["saves_before_kill"] == 0
    assert never_saved["lost_acked"] == never_saved["acked_before_kill"] >= 100
    # a save every 50 queued messages: the loss is what came after the last one
    assert often_saved["saves_before_kill"] >= 1 and often_saved["db_bytes_at_kill"] > 0
    assert often_saved["lost_acked"] < often_saved["acked_before_kill"]
    assert often_saved["write_bytes_per_msg"] > never_saved["write_bytes_per_msg"]
