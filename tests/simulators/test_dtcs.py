"""Stored DTCs: each vehicle's set is kept, sent whole when it changes, and cleared the way its
fault says (a repair at once, a healed misfire or a patched firmware bug after clean drive cycles)."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.engine import FleetSimulation
from simulators.ground_truth import current_dtc_sets, ground_truth
from simulators.roads import city_grid
from simulators.scenario import FaultSpec
from tests.simulators.helpers import START_UNIX_S, Run, busy_scenario, run

FIX_S = 200.0
REPAIR_S = 300.0
CLEARING_FAULTS = (
    FaultSpec("misfire", 6, onset_s=0.0, params={"rate_per_h": 30.0, "clear_cycles": 1}),
    FaultSpec("misfire", 2, onset_s=0.0, repaired_at_s=REPAIR_S, params={"rate_per_h": 3600.0}),
    FaultSpec("brake_pad_wear", 2, onset_s=0.0, repaired_at_s=REPAIR_S, params={"start_mm": 1.9}),
    FaultSpec("firmware_bug", 4, onset_s=0.0, params={"rate_per_h": 600.0, "clear_cycles": 2}),
)


@pytest.fixture(scope="module")
def clearing() -> Run:
    return run(busy_scenario(vehicles=120, duration_s=1500.0, faults=CLEARING_FAULTS), patch_at_s=FIX_S)


def _timeline(r: Run, v: int) -> list[tuple[float, tuple[str, ...]]]:
    return [(t, codes) for t, vv, codes in r.dtcs if vv == v]


def _vehicles(r: Run, kind: str, *, repaired: bool) -> list[tuple[int, dict]]:
    truth = ground_truth(r.sim)
    index = {vid: i for i, vid in enumerate(r.sim.vehicle_ids)}
    found = [
        (index[f["vehicle_id"]], f)
        for f in truth["faults"]
        if f["kind"] == kind and (f["repaired_at_s"] is not None) == repaired
    ]
    assert found, kind
    return found


def _cycle_ends(r: Run, v: int) -> np.ndarray:
    """Times at which vehicle v parked (a drive cycle ended); every vehicle starts on the road."""
    was = np.concatenate([[True], r.running[:-1, v]])
    return r.t_s[was & ~r.running[:, v]]


def _cycle_starts(r: Run, v: int) -> np.ndarray:
    was = np.concatenate([[True], r.running[:-1, v]])
    return r.t_s[~was & r.running[:, v]]


def test_each_message_is_a_change_of_the_whole_set(clearing: Run) -> None:
    faulty = set(np.flatnonzero(clearing.sim.faults.kind >= 0).tolist())
    assert {v for _, v, _ in clearing.dtcs} <= faulty
    for v in {v for _, v, _ in clearing.dtcs}:
        sets = [codes for _, codes in _timeline(clearing, v)]
        assert sets[0] != ()  # a vehicle first reports when a code is stored
        assert all(a != b for a, b in zip(sets, sets[1:], strict=False))
        assert set(sets) <= {(str(clearing.sim.faults.dtc_code[v]),), ()}


def test_a_repair_clears_the_code_at_once_and_replaces_worn_pads(clearing: Run) -> None:
    first_after = clearing.t_s[np.argmax(clearing.t_s >= REPAIR_S)]
    for kind in ("misfire", "brake_pad_wear"):
        for v, fault in _vehicles(clearing, kind, repaired=True):
            timeline = _timeline(clearing, v)
            assert timeline[-1] == (first_after, ()), (kind, timeline)
            assert timeline[-2][1] == (fault["params"]["dtc"],) and timeline[-2][0] < REPAIR_S
    for v, _ in _vehicles(clearing, "brake_pad_wear", repaired=True):
        before, after = clearing.t_s < REPAIR_S, clearing.t_s >= REPAIR_S
        assert clearing.pad_mm[before, v].max() < 2.0 and clearing.pad_mm[after, v].min() > 10.0


def test_a_misfire_code_heals_after_clean_drive_cycles(clearing: Run) -> None:
    clears = 0
    for v, fault in _vehicles(clearing, "misfire", repaired=False):
        ends = _cycle_ends(clearing, v)
        timeline = _timeline(clearing, v)
        for (t_raised, raised), (t_cleared, cleared) in zip(timeline[::2], timeline[1::2], strict=False):
            assert raised == (fault["params"]["dtc"],) and cleared == ()
            assert t_cleared in ends  # codes heal when a drive cycle ends
            cycles_between = ((ends > t_raised) & (ends <= t_cleared)).sum()
            assert cycles_between >= 1 + fault["params"]["clear_cycles"]  # the raising cycle is not clean
            clears += 1
    assert clears > 0


def test_a_patched_firmware_bug_clears_after_its_clean_cycles(clearing: Run) -> None:
    cleared = 0
    for v, fault in _vehicles(clearing, "firmware_bug", repaired=False):
        timeline = _timeline(clearing, v)
        assert all(t < FIX_S for t, codes in timeline if codes)  # the patch stops the bug
        # Clean cycles start after the patch; the code goes when the n-th of them ends.
        starts, ends = _cycle_starts(clearing, v), _cycle_ends(clearing, v)
        n = fault["params"]["clear_cycles"]
        clean_ends = [ends[ends > s][0] for s in starts[starts >= FIX_S] if (ends > s).any()]
        if timeline and timeline[-1][1] == ():
            assert timeline[-1][0] == clean_ends[n - 1]
            cleared += 1
        else:
            assert len(clean_ends) < n
    assert cleared > 0


def test_ground_truth_records_every_vehicles_set_over_time(clearing: Run) -> None:
    truth = ground_truth(clearing.sim)
    newest: dict[str, list[str]] = {}
    for _, v, codes in clearing.dtcs:
        newest[clearing.sim.vehicle_ids[v]] = list(codes)
    assert current_dtc_sets(truth) == newest
    assert any(codes == [] for codes in newest.values()) and any(newest.values())
    stored = clearing.sim.dtcs.stored
    assert {clearing.sim.vehicle_ids[v] for v in np.flatnonzero(stored)} == {
        vid for vid, codes in newest.items() if codes
    }
    for timeline in truth["dtc_sets"].values():
        for entry in timeline:
            assert entry["ts_ns"] == truth["start_ts_ns"] + round(entry["t_s"] * 1e9)


def test_a_repair_before_the_onset_is_refused() -> None:
    sc = busy_scenario(vehicles=10, faults=(FaultSpec("misfire", 1, onset_s=50.0, repaired_at_s=50.0),))
    with pytest.raises(ValueError, match="repaired_at_s"):
        FleetSimulation(sc, city_grid(blocks=3), START_UNIX_S)
