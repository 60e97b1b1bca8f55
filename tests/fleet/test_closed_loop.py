"""The closed loop end to end (`fleet simulate` on the embedded PostgreSQL and broker, ingest in the
process, the backend on the simulation's clock): the fleet firmware test finds the bug, the remedy
engine opens a campaign, the campaign step offers the cure in waves through the broker, the
simulated vehicles install it and report, the bug's code stops on the patched version and its
alarms clear; a tyre leak gets a booked visit that repairs it. With every install failing, the
campaign pauses itself at the error threshold. Nothing here is mocked: the numbers come from the
run's summary and ground truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.postgres]

SCENARIO = """
name = "loop-test"
seed = {seed}
vehicles = {vehicles}
duration_s = {duration_s}
speedup = inf
ev_share = 0.0
batch_interval_s = 60.0
parked_sample_interval_s = 300.0
mean_parking_s = 900.0
backend_every_s = 900.0

[city]
blocks = 4
block_m = 200.0

[network]
outage_vehicle_share = 0.0
duplicate_batch_probability = 0.0
clock_skew_sd_s = 0.5
large_clock_skew_share = 0.0

[ota]
download_s = [30.0, 120.0]
install_s = [60.0, 180.0]
download_failure_rate = 0.0
install_failure_rate = {install_failure_rate}
rollback_rate = 0.0
consent_probability = 1.0
consent_delay_s = [30.0, 300.0]

[visits]
no_show_probability = 0.0

[[faults]]
kind = "firmware_bug"
vehicles = {buggy}
onset_s = 0.0
params = {{ version = "4.2.0", dtc = "P0606", rate_per_h = 12.0 }}
{extra}
"""

TYRE_LEAK = """
[[faults]]
kind = "tyre_slow_leak"
vehicles = 1
onset_s = 0.0
params = { rate_kpa_per_h = 60.0 }
"""


def simulate(tmp_path: Path, **values: object) -> tuple[dict, dict]:
    """Run `fleet simulate` on the scenario; its --json summary and the ground truth."""
    scenario = tmp_path / "loop.toml"
    scenario.write_text(SCENARIO.format(**values))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env.update(HOME=str(tmp_path), FLEET_DATA_DIR=str(tmp_path / "data"))
    report = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "simulate", str(scenario), "--report-dir", str(report), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    return summary, json.loads((report / "ground_truth.json").read_text())


def test_the_loop_patches_the_firmware_bug_in_waves_and_a_visit_repairs_a_leak(tmp_path: Path) -> None:
    summary, truth = simulate(
        tmp_path, seed=11, vehicles=16, duration_s=21600.0, install_failure_rate=0.0, buggy=6, extra=TYRE_LEAK
    )
    loop = summary["closed_loop"]
    assert loop["backend_errors"] == 0 and loop["backend_steps"] >= 20
    # The fleet firmware test found the buggy version; the cure is the one the run's repository holds.
    issues = summary["analysis"]["software_issues"]
    assert [(i["ecu"], i["version"], i["code"]) for i in issues] == [("ECM", "4.2.0", "P0606")]
    # A campaign ran in waves; every report the vehicles sent was accepted by the report step.
    assert loop["campaigns"]["waves_opened"] >= 2 and loop["campaigns"]["paused"] == []
    assert set(loop["reports_judged"]) == {"accepted"}
    # Every offer went through the broker to the simulator's listener, and none was malformed.
    listener = loop["listener"]
    assert listener["offers"] >= loop["offers_sent"] > 0 and listener["invalid_offers"] == 0
    assert loop["reports_judged"]["accepted"] == loop["loop"]["reports"] > 0
    # The vehicles installed: each committed install changed the vehicle's software.
    patched = {f["vehicle_id"]: f["patched_at_s"] for f in truth["faults"] if f["kind"] == "firmware_bug"}
    done = {v: t for v, t in patched.items() if t is not None}
    assert len(done) == loop["vehicles_patched"] == loop["loop"]["committed"] >= 3
    changes = truth["software_changes"]
    assert all(c["after"] == "4.2.1" and c["source"].startswith("ota:") for c in changes)
    # On the patched version the bug's code never comes back, and stored codes clear.
    cleared = 0
    for vehicle_id, t_patch in done.items():
        sets = [s for s in truth["dtc_sets"].get(vehicle_id, []) if s["t_s"] > t_patch]
        raised = [
            b
            for a, b in zip(sets, sets[1:], strict=False)
            if "P0606" in b["codes"] and "P0606" not in a["codes"]
        ]
        assert raised == [], vehicle_id
        cleared += any("P0606" not in s["codes"] for s in sets)
    assert cleared >= 1
    # The firmware alarms of the patched vehicles cleared.
    alarms = summary["analysis"]["alarms"]["firmware_bug"]
    assert alarms["raised"] >= len(done) and alarms["active"] == len(patched) - len(done)
    delay = loop["remedy_delay_s"]["firmware_bug"]
    assert delay["remedied"] >= len(done) and delay["median_onset_to_remedy_s"] is not None
    # The tyre leak got a booking; the owner came; the workshop repaired it: the fault stopped.
    (leak,) = [f for f in truth["faults"] if f["kind"] == "tyre_slow_leak"]
    assert leak["repaired_by"] == "visit" and leak["repaired_at_s"] < summary["duration_s"]
    visits = [v for v in truth["visits"] if v["vehicle_id"] == leak["vehicle_id"]]
    assert visits and visits[0]["showed_up"] and visits[0]["repaired"] == "tyre_slow_leak"
    assert loop["visits_booked"] >= 1 and loop["visits_made"] >= 1
    # Each visit held is recorded in its booking: completed when the owner came, else a no-show;
    # a booking cancelled before its visit (the fault cleared, or it was rescheduled) is withdrawn.
    recorded = loop["bookings_recorded"]
    assert loop["loop"]["visits_cancelled"] == recorded["withdrawn"]
    assert (recorded["completed"], recorded["no_show"], recorded["unmatched"]) == (
        loop["visits_made"],
        loop["visits_no_show"],
        0,
    )
    # Owners were told, on the simulation's clock, within the outbox's rules.
    notices = loop["notifications"]
    assert notices["notifications"] >= 1 and notices["sent"] + sum(notices["suppressed"].values()) >= 1


def test_a_campaign_whose_installs_fail_pauses_at_the_error_threshold(tmp_path: Path) -> None:
    summary, truth = simulate(
        tmp_path, seed=11, vehicles=16, duration_s=10800.0, install_failure_rate=1.0, buggy=6, extra=""
    )
    loop = summary["closed_loop"]
    assert loop["backend_errors"] == 0
    assert loop["loop"]["failed"] >= 1 and loop["loop"]["committed"] == 0 == loop["vehicles_patched"]
    (paused,) = loop["campaigns"]["paused"]
    assert "error threshold" in paused["reason"] or "cap" in paused["reason"]
    assert loop["campaigns"]["finished"] == 0
    assert truth["software_changes"] == []
    assert all(o["state"] == "failed" for o in truth["ota"]["offers"])
