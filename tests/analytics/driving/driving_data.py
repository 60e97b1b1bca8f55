"""Synthetic drives for the driving kernels' tests: vehicles that alternate drives and stops (red
lights, queues, parking), with engine speed for combustion cars, the odometer, and harsh brakes at
known instants. Pure numpy from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.columns import TelemetryColumns
from analytics.driving.score import ACCEL_LAT, ACCEL_LONG, ENGINE_RPM, ODOMETER, SPEED

S = 1_000_000_000
T0 = 1_764_237_600 * S  # 2025-11-27 10:00 UTC+1


@dataclass(frozen=True)
class Fleet:
    columns: TelemetryColumns
    trips: list[tuple[int, int, int]]  # (vehicle, first moving ts, last moving ts)
    harsh_brakes: list[tuple[int, int]]  # (vehicle, ts of the first harsh sample)


def columns_of(
    vehicle: np.ndarray, ts_ns: np.ndarray, values: dict[str, np.ndarray], n_vehicles: int
) -> TelemetryColumns:
    order = np.lexsort((ts_ns, vehicle))
    cols = TelemetryColumns(
        tuple(f"V{i:03d}" for i in range(n_vehicles)),
        vehicle[order].astype(np.int32),
        ts_ns[order].astype(np.int64),
        {k: np.asarray(v, dtype=np.float64)[order] for k, v in values.items()},
    )
    cols.check()
    return cols


def random_fleet(seed: int, n_vehicles: int = 3, legs: int = 4, hz: float = 1.0) -> Fleet:
    """Each vehicle: `legs` drives at a steady cruise with gentle speed changes, separated by
    parking (engine off, sparse samples), with short light stops inside drives and now and then a
    harsh brake (0.5 g for 1.5 s). EVs (every third vehicle) have no engine speed."""
    rng = np.random.default_rng(seed)
    dt = 1.0 / hz
    vs, ts, speed, rpm, along, odo = [], [], [], [], [], []
    trips, brakes = [], []
    for v in range(n_vehicles):
        ev = v % 3 == 2
        t = float(rng.uniform(0, 600))
        km = float(rng.uniform(0, 50_000))
        for _ in range(legs):
            n = int(rng.integers(int(300 * hz), int(900 * hz)))
            cruise = rng.uniform(30.0, 90.0)
            spd = np.full(n, cruise)
            ramp = min(int(8 * hz), n // 4)
            spd[:ramp] = np.linspace(cruise / ramp, cruise, ramp)
            spd[-ramp:] = np.linspace(cruise, cruise / ramp, ramp)
            light = int(rng.integers(n // 3, n // 2))
            stop_n = int(rng.uniform(5, 40) * hz)
            spd[light : light + stop_n] = 0.0
            acc = np.zeros(n)
            harsh = int(rng.integers(2 * n // 3, n - 2 * ramp)) if rng.random() < 0.6 else -1
            if harsh > 0:
                k = max(int(1.5 * hz), 1)
                acc[harsh : harsh + k] = -0.5 * 9.80665
                brakes.append((v, T0 + round((t + harsh * dt) * S)))
            times = t + np.arange(n) * dt
            moving = np.flatnonzero(spd > 3.0)
            trips.append((v, T0 + round(times[moving[0]] * S), T0 + round(times[moving[-1]] * S)))
            dist = np.cumsum(spd * dt / 3600.0)
            vs.append(np.full(n, v))
            ts.append(times)
            speed.append(spd)
            rpm.append(np.full(n, np.nan) if ev else 800.0 + spd * 30.0 + rng.normal(0, 5, n))
            along.append(acc)
            odo.append(km + dist)
            km += float(dist[-1])
            t = float(times[-1]) + dt
            park = float(rng.uniform(200.0, 3000.0))  # sampled every 30 s, engine off
            p = np.arange(30.0, park, 30.0)
            vs.append(np.full(p.size, v))
            ts.append(t + p)
            speed.append(np.zeros(p.size))
            rpm.append(np.full(p.size, np.nan if ev else 0.0))
            along.append(np.zeros(p.size))
            odo.append(np.full(p.size, km))
            t += park
    vehicle = np.concatenate(vs)
    ts_ns = T0 + np.round(np.concatenate(ts) * S).astype(np.int64)
    values = {
        SPEED: np.concatenate(speed),
        ENGINE_RPM: np.concatenate(rpm),
        ACCEL_LONG: np.concatenate(along),
        ACCEL_LAT: np.zeros(ts_ns.size),
        ODOMETER: np.concatenate(odo),
    }
    return Fleet(columns_of(vehicle, ts_ns, values, n_vehicles), trips, brakes)
