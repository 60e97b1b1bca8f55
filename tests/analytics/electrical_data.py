"""Hand-built and random telemetry for the electrical, coolant and sensor detector tests: columns
from per-vehicle lists (seconds), random drive/park histories for the hypothesis properties, and
the helpers that compare findings across shifted or split runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from analytics.columns import TelemetryColumns, VehicleParams
from analytics.findings import Finding

S = 1_000_000_000
T0_NS = 1_764_237_600 * S
VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"
RPM = "Vehicle.Powertrain.CombustionEngine.Speed"
SPEED = "Vehicle.Speed"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
ODOMETER = "Vehicle.TraveledDistance"
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
TYRE_FL = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
Detector = Callable[[TelemetryColumns, VehicleParams], list[Finding]]


def columns(vehicles: Sequence[tuple[Sequence[float], Mapping[str, Sequence[float]]]]) -> TelemetryColumns:
    """One (times in seconds after T0, {path: values}) per vehicle, ids V0, V1..."""
    vehicle = np.concatenate([np.full(len(t), k, np.int32) for k, (t, _) in enumerate(vehicles)])
    ts = np.concatenate([T0_NS + np.round(np.asarray(t, float) * S).astype(np.int64) for t, _ in vehicles])
    paths = sorted({p for _, sig in vehicles for p in sig})
    values = {
        p: np.concatenate(
            [np.asarray(sig[p], float) if p in sig else np.full(len(t), np.nan) for t, sig in vehicles]
        )
        for p in paths
    }
    cols = TelemetryColumns(tuple(f"V{k}" for k in range(len(vehicles))), vehicle, ts, values)
    cols.check()
    return cols


def params(is_ev: Sequence[bool]) -> VehicleParams:
    n = len(is_ev)
    return VehicleParams(
        np.array(is_ev, bool), np.where(np.array(is_ev), 0, 4).astype(np.int64), np.full(n, 240.0)
    )


def random_fleet(
    seed: int, n_vehicles: int = 3, max_rows: int = 400
) -> tuple[TelemetryColumns, VehicleParams]:
    """Drives and parks with random faults mixed in: voltages from healthy to failing, coolant from
    cold to boiling, signals that stick or drop out for a while; 1 s rows while running, sparse
    (30 s to 2 h) while parked."""
    rng = np.random.default_rng(seed)
    is_ev = rng.random(n_vehicles) < 0.3
    out = []
    for k in range(n_vehicles):
        n = int(rng.integers(2, max_rows))
        running = np.repeat(rng.random(n // 10 + 1) < 0.6, 10)[:n]
        dt = np.where(running, 1.0, rng.choice([30.0, 30.0, 600.0, 7200.0], n))
        t = np.cumsum(dt)
        speed = np.where(running, rng.uniform(0, 90, n), 0.0)
        level = np.repeat(rng.choice([8.7, 9.6, 11.8, 12.2, 12.5, 12.7, 13.1, 14.1], n // 20 + 1), 20)[:n]
        volts = level + rng.normal(0, 0.03, n)
        volts = np.where(running & (level < 12.0) & (rng.random(n) < 0.5), 14.1, volts)
        coolant = np.repeat(rng.choice([20.0, 85.0, 95.0, 105.0, 115.0, 125.0], n // 30 + 1), 30)[:n]
        coolant = coolant + rng.normal(0, 0.2, n)
        rpm = np.where(running, 800 + rng.normal(0, 20, n), 0.0)
        odo = 1000 + np.cumsum(speed * dt / 3600)
        lat = 48.0 + np.cumsum(speed * dt / 3.6 / 111_320)
        lon = np.full(n, 11.5) + rng.normal(0, 1e-6, n)
        tyre = 240 + rng.normal(0, 0.5, n)
        sig = {VOLTAGE: volts, SPEED: speed, ODOMETER: odo, LAT: lat, LON: lon, TYRE_FL: tyre}
        if not is_ev[k]:
            sig[RPM], sig[COOLANT] = rpm, coolant
        for path in (TYRE_FL, VOLTAGE, RPM):  # a stretch stuck or missing
            if path in sig and rng.random() < 0.5:
                a = int(rng.integers(0, n))
                b = int(rng.integers(a, n + 1))
                x = sig[path].copy()
                x[a:b] = x[a] if rng.random() < 0.5 else np.nan
                sig[path] = x
        out.append((t, sig))
    return columns(out), params(list(is_ev))


def shifted(cols: TelemetryColumns, shift_ns: int) -> TelemetryColumns:
    return dataclasses.replace(cols, ts_ns=cols.ts_ns + shift_ns)


def rows(cols: TelemetryColumns, keep: np.ndarray) -> TelemetryColumns:
    return TelemetryColumns(
        cols.vehicle_ids, cols.vehicle[keep], cols.ts_ns[keep], {p: v[keep] for p, v in cols.values.items()}
    )


def final_states(findings: list[Finding]) -> dict[tuple[str, str], str]:
    """The newest state per (vehicle, fault)."""
    out: dict[tuple[str, str], str] = {}
    for f in findings:
        out[(f.vehicle_id, f.fault)] = f.state.value
    return out


def shift_finding(f: Finding, shift_ns: int) -> Finding:
    evidence = {k: (v + shift_ns if k.endswith("_ns") else v) for k, v in f.evidence.items()}
    return dataclasses.replace(
        f,
        at_ns=f.at_ns + shift_ns,
        since_ns=None if f.since_ns is None else f.since_ns + shift_ns,
        evidence=evidence,
    )
