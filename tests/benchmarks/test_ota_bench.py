"""`fleet bench ota` end to end at a small size: the agent's real path installs the published
artifact (the bench raises otherwise) and the report names the floor it is compared with."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fleet.cli import app


def test_the_ota_bench_installs_and_reports_against_its_floor() -> None:
    result = CliRunner().invoke(app, ["bench", "ota", "--size-mb", "2", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["artifact_bytes"] == 2 << 20 and report["repeats"] == 1
    assert report["verify_and_install_s"] > 0 and report["floor_sha256sum_plus_cp_s"] > 0
    ratio = report["verify_and_install_s"] / report["floor_sha256sum_plus_cp_s"]
    assert abs(report["ratio_to_floor"] - ratio) <= 0.05 * ratio + 0.01  # both rounded in the report
