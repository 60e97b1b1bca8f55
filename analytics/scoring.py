"""Detection scored against ground truth: per fault kind, precision, recall and detection delay.

Owns: what counts as a hit. It reads the simulator's ground-truth document (the parsed
`ground_truth.json`: `faults` with `vehicle_id`, `kind`, `onset_ts_ns`, `repaired_at_ts_ns`,
`params`; `start_ts_ns` and `duration_s`) and the alarms raised (`AlarmRecord`), and imports
nothing from the simulator. Producing alarms is the alarm store's job (or `findings_to_alarms`
for an in-memory run). Pure: no I/O.

Matching rules:
- An alarm's `fault` is `kind` or `kind:detail` (e.g. `sensor_stuck:Vehicle.Speed`). Its kind is
  the part before the first colon and must equal the truth's `kind`; when both the alarm has a
  detail and the truth names a signal (`params.signal`, sensor faults), they must be equal too.
- A true fault is detected (true positive) by the first matching alarm for its vehicle raised at
  or after its onset and no later than its repair (or the end of the run when never repaired).
  Further alarms that match an already detected fault are counted as `repeats`, not as false
  positives (re-raised alarms after a clear; the alarm store keeps one active per kind).
- Every other alarm of a scored kind is a false positive (wrong vehicle, before onset, after
  repair, wrong signal). A true fault without a matching alarm is a false negative.
- `dtc:<code>` alarms are not fault kinds and are not scored: the kinds whose evidence is a code
  (misfire, firmware_bug) are raised under those kind names directly.
- Precision is None when a kind raised no alarm, recall None when it has no true fault; delays
  (alarm time - onset, seconds) are None without a true positive.
- Recall is over every injected fault. A fault that never showed in its vehicle's data cannot be
  found by any detector (a charging fault whose car then parked for the rest of the run), so
  `recall_observable` is also given: over the faults whose symptom showed for at least
  `OBSERVABLE_MIN_SYMPTOM_S` (the truth's `symptom_s`, a generic measure per fault kind that knows
  nothing of the detectors; faults without it count as observable). Missed faults are listed with
  their `symptom_s`, so each miss can be told apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.findings import Finding, FindingState

UNSCORED_KINDS = frozenset({"dtc"})
OBSERVABLE_MIN_SYMPTOM_S = 600.0


@dataclass(frozen=True)
class AlarmRecord:
    """An alarm as raised: for which vehicle, which fault (`kind` or `kind:detail`), when (ns)."""

    vehicle_id: str
    fault: str
    raised_ns: int


def split_fault(fault: str) -> tuple[str, str | None]:
    """Kind and detail: `"sensor_stuck:Vehicle.Speed"` -> `("sensor_stuck", "Vehicle.Speed")`,
    `"misfire"` -> `("misfire", None)`."""
    kind, sep, detail = fault.partition(":")
    return kind, (detail if sep else None)


def findings_to_alarms(findings: Iterable[Finding]) -> list[AlarmRecord]:
    """The first RAISE per (vehicle, fault) as an alarm (for scoring an in-memory run, where no
    alarm store dedups), in time order."""
    first: dict[tuple[str, str], int] = {}
    for f in findings:
        if f.state is FindingState.RAISE:
            key = (f.vehicle_id, f.fault)
            if key not in first or f.at_ns < first[key]:
                first[key] = f.at_ns
    return sorted(
        (AlarmRecord(v, fault, at) for (v, fault), at in first.items()),
        key=lambda a: (a.raised_ns, a.vehicle_id, a.fault),
    )


def score_faults(truth: Mapping[str, Any], alarms: Sequence[AlarmRecord]) -> dict[str, dict[str, Any]]:
    """Per fault kind (every kind in the truth or among the alarms, `dtc` excepted): counts of
    true faults, alarms, true positives, false positives, false negatives and repeats; precision
    and recall; median and 90th-percentile detection delay in seconds; and the vehicle ids
    missed and falsely alarmed (for debugging). Raises KeyError when the truth lacks a field
    named in the module docstring."""
    end_ns = int(truth["start_ts_ns"]) + int(round(float(truth["duration_s"]) * 1e9))
    faults = list(truth["faults"])
    kinds = {f["kind"] for f in faults} | {split_fault(a.fault)[0] for a in alarms}
    kinds -= UNSCORED_KINDS
    by_vehicle: dict[tuple[str, str], list[int]] = {}
    for i, f in enumerate(faults):
        by_vehicle.setdefault((f["vehicle_id"], f["kind"]), []).append(i)
    detected_at: dict[int, int] = {}
    false_alarms: list[AlarmRecord] = []
    repeats: list[AlarmRecord] = []
    for alarm in sorted(alarms, key=lambda a: a.raised_ns):
        kind, detail = split_fault(alarm.fault)
        if kind in UNSCORED_KINDS:
            continue
        hit = None
        for i in by_vehicle.get((alarm.vehicle_id, kind), []):
            f = faults[i]
            signal = (f.get("params") or {}).get("signal")
            if detail is not None and signal is not None and detail != signal:
                continue
            until = f["repaired_at_ts_ns"] if f["repaired_at_ts_ns"] is not None else end_ns
            if f["onset_ts_ns"] <= alarm.raised_ns <= until:
                hit = i
                if i not in detected_at:
                    break
        if hit is None:
            false_alarms.append(alarm)
        elif hit in detected_at:
            repeats.append(alarm)
        else:
            detected_at[hit] = alarm.raised_ns
    return {kind: _kind_score(kind, faults, detected_at, false_alarms, repeats) for kind in sorted(kinds)}


def _kind_score(
    kind: str,
    faults: list[dict[str, Any]],
    detected_at: dict[int, int],
    false_alarms: list[AlarmRecord],
    repeats: list[AlarmRecord],
) -> dict[str, Any]:
    mine = [i for i, f in enumerate(faults) if f["kind"] == kind]
    hits = [i for i in mine if i in detected_at]
    fp = [a for a in false_alarms if split_fault(a.fault)[0] == kind]
    delays_s = np.array([(detected_at[i] - faults[i]["onset_ts_ns"]) / 1e9 for i in hits])
    tp = len(hits)
    observable = [
        i
        for i in mine
        if faults[i].get("symptom_s") is None or faults[i]["symptom_s"] >= OBSERVABLE_MIN_SYMPTOM_S
    ]
    return {
        "faults": len(mine),
        "alarms": tp + len(fp),
        "true_positives": tp,
        "false_positives": len(fp),
        "false_negatives": len(mine) - tp,
        "repeats": sum(split_fault(a.fault)[0] == kind for a in repeats),
        "precision": tp / (tp + len(fp)) if tp + len(fp) else None,
        "recall": tp / len(mine) if mine else None,
        "observable_faults": len(observable),
        "recall_observable": sum(i in detected_at for i in observable) / len(observable)
        if observable
        else None,
        "delay_s_median": float(np.median(delays_s)) if tp else None,
        "delay_s_p90": float(np.percentile(delays_s, 90)) if tp else None,
        "missed_vehicles": sorted(faults[i]["vehicle_id"] for i in mine if i not in detected_at),
        "missed_symptom_s": {
            faults[i]["vehicle_id"]: faults[i].get("symptom_s") for i in mine if i not in detected_at
        },
        "false_alarm_vehicles": sorted({a.vehicle_id for a in fp}),
    }
