"""Property tests of the pure kernels: motion, powertrain, GPS noise and the fleet batcher."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.fleet_publishing import FleetBatcher, SequenceCounter
from simulators.faults import draw_faults, fault_levels
from simulators.models import draw_models
from simulators.motion import PARKED, RoadContext, initial_motion, step_motion
from simulators.powertrain import (
    ATMOSPHERE_KPA,
    KELVIN,
    TYRE_REFERENCE_C,
    initial_powertrain,
    step_powertrain,
)
from simulators.roads import city_grid
from simulators.sampling import GPS_SIGMA_M, step_gps_error

NET = city_grid(blocks=4, block_m=150.0, ring_nodes=12)
NO_HAZARDS = RoadContext(np.zeros(NET.n_edges, dtype=bool), np.zeros(NET.n_nodes, dtype=bool))
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 60), steps=st.integers(1, 40), dt_s=st.sampled_from([0.5, 1.0, 2.0]))
def test_motion_keeps_vehicles_on_the_road_and_speed_consistent(
    seed: int, n: int, steps: int, dt_s: float
) -> None:
    rng = np.random.default_rng(seed)
    state = initial_motion(NET, rng, n, 0.8, 30.0)
    max_accel = np.full(n, 2.5)
    for k in range(steps):
        step = step_motion(
            state,
            NET,
            NO_HAZARDS,
            max_accel,
            rng,
            t_unix_s=1.7e9 + k * dt_s,
            dt_s=dt_s,
            utc_offset_h=0.0,
            mean_parking_s=30.0,
        )
        new = step.state
        np.testing.assert_allclose(new.speed_ms, state.speed_ms + step.accel_ms2 * dt_s, atol=1e-9)
        assert (new.speed_ms >= 0).all() and (step.distance_m >= 0).all()
        assert (new.offset_m >= -1e-9).all() and (new.offset_m <= NET.edge_length_m[new.edge] + 1e-9).all()
        assert (new.speed_ms[new.mode == PARKED] == 0).all()
        assert (step.accel_ms2 >= -9.0 - 1e-9).all() and (step.accel_ms2 <= 2.5 + 1e-9).all()
        moved = new.edge != state.edge
        one_hop = moved & (step.distance_m < NET.edge_length_m.min())
        assert (NET.edge_src[new.edge[one_hop]] == NET.edge_dst[state.edge[one_hop]]).all()
        state = new


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 50), ambient_c=st.floats(-20, 40))
def test_powertrain_odometer_tyres_and_energy(seed: int, n: int, ambient_c: float) -> None:
    rng = np.random.default_rng(seed)
    params = draw_models(rng, n, 0.5)
    state = initial_powertrain(rng, params, ambient_c)
    levels = fault_levels(draw_faults(rng, (), params.is_ev, 100.0), 0.0)
    speed = np.zeros(n)
    for _ in range(30):
        new_speed = np.clip(speed + rng.uniform(-3, 2, n), 0, 35)
        accel = new_speed - speed
        running = rng.random(n) < 0.9
        new_speed, accel = np.where(running, new_speed, 0.0), np.where(running, accel, -speed)
        step = step_powertrain(
            state,
            params,
            levels,
            rng,
            speed_ms=new_speed,
            prev_speed_ms=speed,
            accel_ms2=accel,
            distance_m=(speed + new_speed) / 2,
            running=running,
            cranking=np.zeros(n, dtype=bool),
            night_charging=np.zeros(n, dtype=bool),
            ambient_c=ambient_c,
            dt_s=1.0,
        )
        new = step.state
        assert (new.odometer_km >= state.odometer_km).all()
        assert ((new.soc_pct >= 0) & (new.soc_pct <= 100) & (new.fuel_pct >= 0) & (new.fuel_pct <= 100)).all()
        no_regen = params.is_ev & (accel >= 0)
        assert (new.soc_pct[no_regen] <= state.soc_pct[no_regen]).all()
        assert (new.fuel_pct <= state.fuel_pct).all()
        # Gay-Lussac on absolute pressure (the tyre pressures are gauge).
        warming = (new.tyre_temp_c + KELVIN) / (TYRE_REFERENCE_C + KELVIN)
        absolute = (new.tyre_cold_kpa + ATMOSPHERE_KPA) * warming
        expected = absolute - ATMOSPHERE_KPA
        np.testing.assert_allclose(step.tyre_kpa, expected)
        assert (new.pad_mm <= state.pad_mm).all()
        assert (step.engine_rpm[params.is_ev | ~running] == 0).all()
        state, speed = new, new_speed


def test_gps_error_is_stationary_at_about_four_metres() -> None:
    rng = np.random.default_rng(0)
    err = rng.normal(0, GPS_SIGMA_M, (2, 5000))
    for _ in range(200):
        err = step_gps_error(err, rng)
    horizontal_rms = float(np.sqrt((err**2).sum(axis=0).mean()))
    assert 3.5 < horizontal_rms < 4.5


def _reference_cut(ids, ts, steps, offsets):  # noqa: ANN001, ANN202
    """What cut() must return, written the slow, obvious way: per vehicle, per signal."""
    out = []
    for v, vid in enumerate(ids):
        cols = {p: np.array([s[v] for s in col]) for p, col in steps.items()}
        cols = {p: c for p, c in cols.items() if not np.isnan(c).all()}
        if not cols:
            continue
        rows = np.zeros(len(ts), dtype=bool)
        for c in cols.values():
            rows |= ~np.isnan(c)
        out.append((vid, np.array(ts)[rows] + offsets[v], {p: c[rows] for p, c in cols.items()}))
    return out


PATHS = ("Vehicle.Speed", "Vehicle.TraveledDistance", "Vehicle.ADAS.ABS.IsEngaged")


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 6), steps=st.integers(1, 6))
def test_fleet_batcher_cut_matches_the_per_vehicle_definition(
    data: st.DataObject, n: int, steps: int
) -> None:
    ids = [f"V{i}" for i in range(n)]
    offsets = np.array(
        data.draw(st.lists(st.integers(-(10**9), 10**9), min_size=n, max_size=n)), dtype=np.int64
    )
    batcher = FleetBatcher(ids, SequenceCounter(), clock_offsets_ns=offsets)
    ts = [10**18 + k * 10**9 for k in range(steps)]
    recorded: dict[str, list[np.ndarray]] = {p: [] for p in PATHS}
    for t in ts:
        values = {}
        for p in PATHS:
            present = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
            col = np.where(present, np.arange(n, dtype=np.float64) % 2, np.nan)
            values[p] = col
            recorded[p].append(col)
        batcher.add(t, values)
    batches = batcher.cut()
    expected = _reference_cut(ids, ts, recorded, offsets)
    assert [b.vehicle_id for b in batches] == [e[0] for e in expected]
    seqs = [b.seq for b in batches]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for b, (_, e_ts, e_cols) in zip(batches, expected, strict=True):
        np.testing.assert_array_equal(b.ts_ns, e_ts)
        assert set(b.columns) == set(e_cols)
        for p, c in e_cols.items():
            np.testing.assert_array_equal(b.columns[p], c)
    assert len(batcher) == 0 and batcher.cut() == []
