"""`fleet bench ota` end to end at a small size: the agent's real path installs the published
artifact (the bench raises otherwise), and a small campaign runs to its end through Mosquitto,
ingest and PostgreSQL, every report stored and judged."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from localservers.mosquitto import find_mosquitto


@pytest.mark.skipif(find_mosquitto() is None, reason="needs the mosquitto binary")
def test_the_ota_bench_installs_and_rolls_a_small_campaign_out() -> None:
    result = CliRunner().invoke(
        app, ["bench", "ota", "--size-mb", "2", "--repeats", "1", "--vehicles", "40", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    install = report["install"]
    assert install["artifact_bytes"] == 2 << 20 and install["repeats"] == 1
    ratio = install["verify_and_install_s"] / install["floor_sha256sum_plus_cp_s"]
    assert abs(install["ratio_to_floor"] - ratio) <= 0.05 * ratio + 0.01  # both rounded in the report
    rollout = report["rollout"]
    assert rollout["campaign"] == {"status": "finished", "reason": "", "members_by_state": {"committed": 40}}
    assert rollout["offers_published"] == 40
    assert (
        rollout["reports_published_by_fleet"] == rollout["reports_stored"] == rollout["reports_judged"] == 160
    )
    assert rollout["dead_letters"] == {}
    assert 0 < rollout["max_backlog"] <= 160 and isinstance(rollout["kept_up"], bool)
    assert "reports/s" in rollout["kept_up_detail"]
