"""Scoring against hand-made ground truths: what counts as a hit, a false alarm, a miss, a repeat."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.findings import Finding, FindingState, Severity
from analytics.scoring import AlarmRecord, findings_to_alarms, score_faults, split_fault

S = 10**9
START = 1_000 * S


def _truth(*faults: dict[str, Any], duration_s: float = 3600.0) -> dict[str, Any]:
    return {"start_ts_ns": START, "duration_s": duration_s, "faults": list(faults)}


def _fault(
    vid: str, kind: str, onset_s: float, repaired_s: float | None = None, **params: Any
) -> dict[str, Any]:
    return {
        "vehicle_id": vid,
        "kind": kind,
        "onset_ts_ns": START + int(onset_s * S),
        "repaired_at_ts_ns": None if repaired_s is None else START + int(repaired_s * S),
        "params": params,
    }


def _alarm(vid: str, fault: str, at_s: float) -> AlarmRecord:
    return AlarmRecord(vid, fault, START + int(at_s * S))


def test_hits_misses_false_alarms_and_delays_per_kind() -> None:
    truth = _truth(
        _fault("A", "tyre_slow_leak", 100.0),
        _fault("B", "tyre_slow_leak", 200.0),
        _fault("C", "tyre_slow_leak", 300.0),
        _fault("D", "brake_pad_wear", 0.0),
    )
    alarms = [
        _alarm("A", "tyre_slow_leak", 160.0),  # 60 s late
        _alarm("B", "tyre_slow_leak", 1200.0),  # 1000 s late
        _alarm("E", "tyre_slow_leak", 50.0),  # healthy vehicle
        _alarm("D", "tyre_slow_leak", 500.0),  # right vehicle, wrong kind
        _alarm("A", "tyre_slow_leak", 900.0),  # re-raised: a repeat, not a false alarm
    ]
    score = score_faults(truth, alarms)
    leak = score["tyre_slow_leak"]
    assert (leak["faults"], leak["true_positives"], leak["false_positives"], leak["false_negatives"]) == (
        3,
        2,
        2,
        1,
    )
    assert leak["repeats"] == 1 and leak["alarms"] == 4
    assert leak["precision"] == pytest.approx(0.5) and leak["recall"] == pytest.approx(2 / 3)
    assert leak["delay_s_median"] == pytest.approx(530.0)
    assert leak["delay_s_p90"] == pytest.approx(60.0 + 0.9 * 940.0)
    assert leak["missed_vehicles"] == ["C"] and leak["false_alarm_vehicles"] == ["D", "E"]
    pads = score["brake_pad_wear"]
    assert pads["recall"] == 0.0 and pads["precision"] is None and pads["delay_s_median"] is None


def test_alarms_before_onset_or_after_repair_are_false_and_the_run_end_bounds_open_faults() -> None:
    truth = _truth(
        _fault("A", "charging_fault", 100.0, repaired_s=600.0),
        _fault("B", "charging_fault", 100.0),
        duration_s=1000.0,
    )
    score = score_faults(
        truth,
        [
            _alarm("A", "charging_fault", 99.0),
            _alarm("A", "charging_fault", 601.0),
            _alarm("B", "charging_fault", 1000.0),
        ],
    )["charging_fault"]
    assert (score["true_positives"], score["false_positives"], score["false_negatives"]) == (1, 2, 1)
    assert score["delay_s_median"] == pytest.approx(900.0)
    late = score_faults(truth, [_alarm("B", "charging_fault", 1000.5)])["charging_fault"]
    assert late["true_positives"] == 0 and late["false_positives"] == 1


def test_sensor_alarms_match_on_kind_and_named_signal() -> None:
    truth = _truth(
        _fault("A", "sensor_stuck", 10.0, signal="Vehicle.Speed"),
        _fault("B", "sensor_stuck", 10.0, signal="Vehicle.Speed"),
        _fault("C", "sensor_dropout", 10.0, signal="Vehicle.Speed"),
    )
    score = score_faults(
        truth,
        [
            _alarm("A", "sensor_stuck:Vehicle.Speed", 20.0),
            _alarm("B", "sensor_stuck:Vehicle.LowVoltageBattery.CurrentVoltage", 20.0),  # wrong signal
            _alarm("C", "sensor_dropout", 30.0),  # no signal named: the kind decides
        ],
    )
    assert score["sensor_stuck"]["true_positives"] == 1 and score["sensor_stuck"]["false_positives"] == 1
    assert score["sensor_dropout"]["recall"] == 1.0 and score["sensor_dropout"]["precision"] == 1.0


def test_dtc_alarms_are_not_scored_and_misfire_is_scored_by_its_own_kind() -> None:
    truth = _truth(_fault("A", "misfire", 10.0, cylinder=2, dtc="P0302"))
    score = score_faults(
        truth, [_alarm("A", "dtc:P0302", 20.0), _alarm("B", "dtc:P0420", 20.0), _alarm("A", "misfire", 40.0)]
    )
    assert set(score) == {"misfire"}
    assert score["misfire"]["true_positives"] == 1 and score["misfire"]["delay_s_median"] == pytest.approx(
        30.0
    )


def test_a_vehicle_with_two_faults_of_one_kind_gets_each_matched_once() -> None:
    truth = _truth(
        _fault("A", "tyre_slow_leak", 10.0, repaired_s=100.0), _fault("A", "tyre_slow_leak", 200.0)
    )
    score = score_faults(truth, [_alarm("A", "tyre_slow_leak", 50.0), _alarm("A", "tyre_slow_leak", 250.0)])
    leak = score["tyre_slow_leak"]
    assert leak["true_positives"] == 2 and leak["false_positives"] == 0
    assert leak["delay_s_median"] == pytest.approx(45.0)


def test_no_alarms_and_no_faults_give_empty_scores() -> None:
    assert score_faults(_truth(), []) == {}
    only_false = score_faults(_truth(), [_alarm("A", "tyre_slow_leak", 1.0)])["tyre_slow_leak"]
    assert only_false["precision"] == 0.0 and only_false["recall"] is None


def test_findings_to_alarms_keeps_the_first_raise_per_vehicle_and_fault() -> None:
    def f(vid: str, fault: str, state: FindingState, at_s: float) -> Finding:
        return Finding(vid, fault, state, START + int(at_s * S), Severity.MAJOR)

    alarms = findings_to_alarms(
        [
            f("A", "tyre_slow_leak", FindingState.CLEAR, 5.0),
            f("A", "tyre_slow_leak", FindingState.RAISE, 30.0),
            f("A", "tyre_slow_leak", FindingState.RAISE, 20.0),
            f("A", "brake_pad_wear", FindingState.RAISE, 10.0),
            f("B", "sensor_stuck:Vehicle.Speed", FindingState.RAISE, 40.0),
            f("B", "tyre_slow_leak", FindingState.CLEAR, 50.0),
        ]
    )
    assert alarms == [
        _alarm("A", "brake_pad_wear", 10.0),
        _alarm("A", "tyre_slow_leak", 20.0),
        _alarm("B", "sensor_stuck:Vehicle.Speed", 40.0),
    ]


def test_split_fault() -> None:
    assert split_fault("sensor_stuck:Vehicle.Speed") == ("sensor_stuck", "Vehicle.Speed")
    assert split_fault("misfire") == ("misfire", None)
    assert split_fault("dtc:P0420") == ("dtc", "P0420")


def test_recall_over_the_faults_that_showed_sets_apart_those_no_data_could_show() -> None:
    shown, hidden, unknown = (
        {**_fault(v, "charging_fault", 100.0), "symptom_s": s}
        for v, s in (("A", 3000.0), ("B", 20.0), ("C", None))
    )
    del unknown["symptom_s"]  # an older ground truth: counts as observable
    score = score_faults(_truth(shown, hidden, unknown), [_alarm("A", "charging_fault", 400.0)])[
        "charging_fault"
    ]
    assert score["recall"] == pytest.approx(1 / 3)
    assert (score["observable_faults"], score["recall_observable"]) == (2, 0.5)
    assert score["missed_symptom_s"] == {"B": 20.0, "C": None}
