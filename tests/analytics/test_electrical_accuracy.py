"""Accuracy of the electrical, coolant and sensor detectors on simulated fleets: several random
scenarios (seeds, fleet sizes, ambient temperatures, parking habits, onsets, stuck and dropped
signals drawn by `tests.analytics.simulated.standard_scenarios`), scored per fault kind.

A vehicle counts as detected when the detector raised its fault (for sensors: on the right signal)
at or after the onset; any raise on a vehicle without that fault is a false positive. Recall counts
the faults whose symptom the data can show: a thermostat stuck closed in a car that only makes
short trips in the cold never overheats (the simulator's own P0217 monitor, at 110 °C, never fires
either), so for `thermostat_stuck` only faults whose code the car stored count; the raw recall,
every injected fault counted, is checked against a lower bound."""

from __future__ import annotations

from collections import Counter

import pytest

from analytics.detectors import battery, charging, coolant, sensors
from analytics.findings import FindingState
from tests.analytics.simulated import simulate, standard_scenarios

DETECTORS = {
    "battery_12v_failing": battery.detect_battery_12v_failing,
    "charging_fault": charging.detect_charging_fault,
    "thermostat_stuck": coolant.detect_thermostat_stuck,
    "sensor_stuck": sensors.detect_sensor_stuck,
    "sensor_dropout": sensors.detect_sensor_dropout,
}
SIGNALS = sorted({*battery.SIGNALS, *charging.SIGNALS, *coolant.SIGNALS, *sensors.SIGNALS})


@pytest.fixture(scope="module")
def scores() -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {kind: Counter() for kind in DETECTORS}
    for scenario in standard_scenarios(3, seed=31, duration_s=7200.0, vehicles=(80, 150)):
        run = simulate(scenario, SIGNALS)
        onset_ns = {(f["vehicle_id"], f["kind"]): f for f in run.truth["faults"]}
        for kind, detect in DETECTORS.items():
            raised: dict[str, list] = {}
            for f in detect(run.columns, run.params):
                if f.state == FindingState.RAISE:
                    raised.setdefault(f.vehicle_id, []).append(f)
            for vid, findings in raised.items():
                truth = onset_ns.get((vid, kind))
                right = truth is not None and any(
                    f.at_ns >= truth["onset_ts_ns"]
                    and (not kind.startswith("sensor_") or f.evidence["signal"] == truth["params"]["signal"])
                    for f in findings
                )
                out[kind]["tp" if right else "fp"] += 1
            out[kind]["faults"] += sum(1 for vid, k in onset_ns if k == kind)
        stored = {(run.columns.vehicle_ids[v], code) for _, v, codes in run.dtc_history for code in codes}
        for vid, kind in onset_ns:
            if kind == "thermostat_stuck" and (vid, "P0217") not in stored:
                out[kind]["unobservable"] += 1
    return out


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_precision_and_recall_across_seeds(kind: str, scores: dict[str, Counter[str]]) -> None:
    s = scores[kind]
    precision = s["tp"] / max(s["tp"] + s["fp"], 1)
    recall = s["tp"] / max(s["faults"] - s["unobservable"], 1)
    assert s["faults"] >= 6 and s["unobservable"] <= s["faults"] // 2
    assert precision >= 0.95, s
    assert recall >= 0.9, s
    assert s["tp"] / s["faults"] >= 0.6, s
