"""Every injected fault leaves the signature its ground truth describes, from its onset on."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.faults import LEAK_SHOWING_KPA, PAD_SERVICE_MM
from simulators.ground_truth import ground_truth
from simulators.sampling import BATTERY_12V, COOLANT, RPM, SPEED, TYRES
from tests.simulators.helpers import ALL_FAULTS, PATCH_S, Run, busy_scenario, run


@pytest.fixture(scope="module")
def faulty() -> Run:
    return run(busy_scenario(vehicles=200, duration_s=900.0, faults=ALL_FAULTS), patch_at_s=PATCH_S)


def _faults(r: Run, kind: str) -> list[tuple[int, float, dict]]:
    truth = ground_truth(r.sim)
    index = {vid: i for i, vid in enumerate(r.sim.vehicle_ids)}
    found = [
        (index[f["vehicle_id"]], f["onset_s"], f["params"]) for f in truth["faults"] if f["kind"] == kind
    ]
    assert found, kind
    return found


def _codes(r: Run, v: int) -> list[tuple[float, str]]:
    """When vehicle v stored a code, and which (its DTC messages with a non-empty set)."""
    return [(t, codes[0]) for t, vv, codes in r.dtcs if vv == v and codes]


def test_ground_truth_lists_every_fault(faulty: Run) -> None:
    truth = ground_truth(faulty.sim)
    assert len(truth["faults"]) == sum(f.vehicles for f in ALL_FAULTS)
    assert len({f["vehicle_id"] for f in truth["faults"]}) == len(truth["faults"])  # one fault per vehicle
    for f in truth["faults"]:
        assert f["onset_ts_ns"] == truth["start_ts_ns"] + round(f["onset_s"] * 1e9)


def test_failing_12v_battery_rests_low_and_dips_deep(faulty: Run) -> None:
    volts = faulty.signals[BATTERY_12V]
    off = ~faulty.running
    bad = {v for v, _, _ in _faults(faulty, "battery_12v_failing")}
    for v, onset, _ in _faults(faulty, "battery_12v_failing"):
        after = faulty.t_s >= onset
        rest = volts[after & off[:, v], v]
        assert rest.size and np.median(rest) < 12.0  # a failing battery rests below 12.0 V
        before = volts[~after & off[:, v], v]
        assert before.size == 0 or np.median(before) > 12.3
    healthy = [j for j in range(volts.shape[1]) if j not in bad and not np.isnan(volts[:, j]).all()]
    rest_healthy = np.concatenate([volts[off[:, j], j] for j in healthy])
    assert np.nanmedian(rest_healthy) > 12.4
    # Cranking: healthy engines dip to about 10 V; a failing battery goes below 9.5 V.
    dips_bad = [np.nanmin(volts[faulty.t_s >= o, v]) for v, o, _ in _faults(faulty, "battery_12v_failing")]
    assert min(dips_bad) < 9.5
    assert np.nanmin(volts[:, healthy]) > 9.5


def test_charging_fault_keeps_voltage_below_charging_and_raises_p0562(faulty: Run) -> None:
    volts, rpm = faulty.signals[BATTERY_12V], faulty.signals[RPM]
    for v, onset, params in _faults(faulty, "charging_fault"):
        running = rpm[:, v] > 0
        after = faulty.t_s >= onset
        assert np.nanmax(volts[after & running, v]) < 13.0
        assert np.nanmin(volts[~after & running & (faulty.t_s > 5), v]) > 13.5
        assert any(c == params["dtc"] and t >= onset for t, c in _codes(faulty, v))


def test_stuck_thermostat_overheats_and_raises_p0217(faulty: Run) -> None:
    coolant = faulty.signals[COOLANT]
    for v, onset, params in _faults(faulty, "thermostat_stuck"):
        assert np.nanmax(coolant[:, v]) > 105
        assert np.nanmax(coolant[faulty.t_s < onset, v]) < 95
        assert all(t >= onset for t, c in _codes(faulty, v))
        assert params["dtc"] in {c for _, c in _codes(faulty, v)}


def test_slow_leak_lowers_one_tyre_at_the_given_rate(faulty: Run) -> None:
    for v, onset, params in _faults(faulty, "tyre_slow_leak"):
        wheel = ("FL", "FR", "RL", "RR").index(params["wheel"])
        p = np.stack([faulty.signals[path][:, v] for path in TYRES])  # (4, steps)
        ok = ~np.isnan(p).any(axis=0)
        ratio = p[wheel, ok] / np.delete(p, wheel, axis=0)[:, ok].mean(axis=0)
        t = faulty.t_s[ok]
        drop = ratio[t < onset].mean() - ratio[-20:].mean()
        expected = params["rate_kpa_per_h"] * (t[-20:].mean() - onset) / 3600 / p[wheel, ok][0]
        assert drop == pytest.approx(expected, rel=0.35)


def test_brake_pad_wear_reaches_the_indicator_and_raises_c1a00(faulty: Run) -> None:
    for v, onset, params in _faults(faulty, "brake_pad_wear"):
        assert faulty.pad_mm[-1, v] < params["warn_below_mm"]
        first_warning = min(t for t, c in _codes(faulty, v) if c == params["dtc"])
        assert first_warning >= onset
        crossed = faulty.t_s[np.argmax(faulty.pad_mm[:, v] < params["warn_below_mm"])]
        assert first_warning == crossed


def test_stuck_sensor_flat_lines_and_dropout_goes_silent(faulty: Run) -> None:
    for v, onset, params in _faults(faulty, "sensor_stuck"):
        col = faulty.signals[params["signal"]][:, v]
        after = col[faulty.t_s >= onset]
        assert np.nanmax(after) == np.nanmin(after)
        assert np.nanmax(col[faulty.t_s < onset]) > np.nanmin(col[faulty.t_s < onset])
    for v, onset, params in _faults(faulty, "sensor_dropout"):
        col = faulty.signals[params["signal"]][:, v]
        assert np.isnan(col[faulty.t_s >= onset]).all()
        assert not np.isnan(col[faulty.t_s < onset]).all()
        assert not np.isnan(faulty.signals[SPEED][faulty.t_s >= onset, v]).all()  # the others still report


def test_misfire_raises_its_cylinder_code_after_onset(faulty: Run) -> None:
    for v, onset, params in _faults(faulty, "misfire"):
        codes = _codes(faulty, v)
        assert codes and all(t >= onset and c == params["dtc"] for t, c in codes)
        assert params["dtc"] in {f"P030{i}" for i in range(7)}
    misfire_codes = {c for _, _, codes in faulty.dtcs for c in codes if c.startswith("P030")}
    assert misfire_codes <= {p["dtc"] for _, _, p in _faults(faulty, "misfire")}


def test_firmware_bug_raises_its_code_on_the_buggy_version_until_patched(faulty: Run) -> None:
    faults = _faults(faulty, "firmware_bug")
    buggy = {v for v, _, _ in faults}
    hits = [(t, v) for t, v, codes in faulty.dtcs if "P0606" in codes]
    assert hits and {v for _, v in hits} <= buggy
    assert max(t for t, _ in hits) < PATCH_S
    versions = faulty.sim.firmware_versions()  # after the run: patched at PATCH_S
    assert {str(versions[v]) for v in buggy} == {"4.2.1"}
    truth = {f["vehicle_id"]: f for f in ground_truth(faulty.sim)["faults"] if f["kind"] == "firmware_bug"}
    assert {f["patched_at_s"] for f in truth.values()} == {PATCH_S}
    assert all(str(faulty.sim.faults.firmware_version[v]) == "4.2.0" for v in buggy)


def test_healthy_vehicles_raise_no_codes(faulty: Run) -> None:
    assert {v for _, v, _ in faulty.dtcs} <= set(np.flatnonzero(faulty.sim.faults.kind >= 0).tolist())


def test_symptom_time_counts_when_each_fault_could_show(faulty: Run) -> None:
    truth = {f["vehicle_id"]: f for f in ground_truth(faulty.sim)["faults"]}
    index = {vid: i for i, vid in enumerate(faulty.sim.vehicle_ids)}
    dt = faulty.sim.dt_s
    for vid, f in truth.items():
        v, active = index[vid], faulty.t_s >= f["onset_s"]
        running, moving = faulty.running[:, v], faulty.signals[SPEED][:, v] > 5.0
        if f["kind"] == "tyre_slow_leak":  # once it has taken 2 kPa off the tyre
            lost_kpa = f["params"]["rate_kpa_per_h"] * (faulty.t_s - f["onset_s"]) / 3600.0
            assert f["symptom_s"] == pytest.approx(dt * (active & (lost_kpa >= LEAK_SHOWING_KPA)).sum())
        elif f["kind"] == "brake_pad_wear":  # while the pads are under 3 mm: thin pads from the start
            assert 0 < f["symptom_s"] <= dt * active.sum()
            if f["params"]["start_mm"] < PAD_SERVICE_MM:
                assert f["symptom_s"] == pytest.approx(dt * active.sum())
        elif f["kind"] == "misfire":  # while running, from the first misfire (its first code) on
            first = min((t for t, vv, cs in faulty.dtcs if vv == v and cs), default=np.inf)
            assert f["symptom_s"] == pytest.approx(dt * (running & (faulty.t_s >= first)).sum())
        elif f["kind"] == "charging_fault":
            assert f["symptom_s"] == pytest.approx(dt * (active & running).sum())
        elif f["kind"] == "battery_12v_failing":
            assert f["symptom_s"] == pytest.approx(dt * (active & ~running).sum())
        elif f["kind"] == "thermostat_stuck":  # while the coolant is over the regulated band
            assert f["symptom_s"] <= dt * (active & running).sum()
            if any(c == "P0217" for _, vv, cs in faulty.dtcs if vv == v for c in cs):  # over 110 °C
                assert f["symptom_s"] > 0
        elif f["kind"].startswith("sensor_"):  # while moving (the speed signal itself may be the one hit)
            assert 0 <= f["symptom_s"] <= dt * active.sum()
            if f["params"]["signal"] != SPEED:
                assert abs(f["symptom_s"] - dt * (active & moving).sum()) <= 0.05 * dt * active.sum() + 5


def test_a_traction_battery_sensor_fault_goes_only_to_an_electric_vehicle() -> None:
    from simulators.faults import draw_faults
    from simulators.scenario import FaultSpec

    is_ev = np.arange(40) % 4 == 0
    soc = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
    plan = draw_faults(
        np.random.default_rng(1), (FaultSpec("sensor_stuck", 10, params={"signal": soc}),), is_ev, 60.0
    )
    assert is_ev[plan.kind >= 0].all() and (plan.kind >= 0).sum() == 10


def test_a_stuck_sensor_shows_once_a_healthy_one_reads_a_step_away() -> None:
    from simulators.faults import SENSOR_RESOLUTION, draw_faults, stuck_departed
    from simulators.scenario import FaultSpec

    path = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
    spec = FaultSpec("sensor_stuck", 3, onset_s=0.0, params={"signal": path})
    plan = draw_faults(np.random.default_rng(2), (spec,), np.zeros(3, dtype=bool), 60.0)
    frozen = np.array([50.0, 50.0, np.nan])  # the third has not been read since its onset
    step = SENSOR_RESOLUTION[path]
    healthy = {path: np.array([50.0 - 0.9 * step, 50.0 - 1.1 * step, 40.0])}
    assert stuck_departed(plan, 10.0, healthy, frozen).tolist() == [False, True, False]


def test_a_repaired_leak_is_inflated_again_by_what_it_lost() -> None:
    from simulators.engine import FleetSimulation
    from simulators.roads import city_grid
    from simulators.scenario import FaultSpec

    leak = FaultSpec(
        "tyre_slow_leak", 1, onset_s=100.0, repaired_at_s=400.0, params={"rate_kpa_per_h": 360.0, "wheel": 1}
    )
    scenario = busy_scenario(vehicles=20, duration_s=500.0, faults=(leak,))
    sim = FleetSimulation(scenario, city_grid(blocks=scenario.city.blocks), 1_764_237_600.0)
    v = int(np.flatnonzero(sim.faults.kind >= 0)[0])
    before = float(sim.powertrain.tyre_cold_kpa[1, v])
    lowest = before
    for _ in range(500):
        sim.step()
        lowest = min(lowest, float(sim.powertrain.tyre_cold_kpa[1, v]))
    assert lowest == pytest.approx(before - 30.0, abs=0.2)  # 360 kPa/h for 300 s
    assert float(sim.powertrain.tyre_cold_kpa[1, v]) == pytest.approx(before, abs=1e-6)
    # Shown once 2 kPa were gone (20 s after the onset) until the repair.
    assert ground_truth(sim)["faults"][0]["symptom_s"] == pytest.approx(280.0, abs=2.0)
