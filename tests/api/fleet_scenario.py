"""Random fleets for the fleet-query tests, and the reference answers computed directly from the raw
rows in plain Python (no aggregate, no last-state table, none of the code under test).

A scenario: vehicles of two fleets (petrol, electric, unknown powertrain, no model) driving and
standing for ~26 hours on a 30 s grid aligned to the epoch (so many samples fall exactly on bucket
edges), ~11% of the points missing, NULL fields, speeds whose averages hit exactly 1 km/h, batches
delivered out of order, and each vehicle's backlog after an outage held back as late data.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg

from contract import TelemetryBatch, topics, wire_v1
from ingest import TelemetryStore
from ingest.pipeline import Envelope, triage

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US = dt.timedelta(microseconds=1)
SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
FUEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
MODELS = {"m-ice": "ice", "m-bev": "bev", "m-unk": "unknown"}


@dataclass
class Scenario:
    fleet_vehicles: dict[str, list[tuple[str, str | None]]]  # fleet -> [(vehicle, model)]
    on_time: list[TelemetryBatch] = field(default_factory=list)
    late: list[TelemetryBatch] = field(default_factory=list)
    end: dt.datetime = EPOCH


def _grid_us(t: dt.datetime) -> int:
    return (t - EPOCH) // US


def make_scenario(seed: int, *, vehicles: int = 8, step_s: int = 30, hours: int = 26) -> Scenario:
    """Seeded: the same seed gives the same fleet and data (ending at about now)."""
    rng = random.Random(seed)
    now_us = time.time_ns() // 1000
    end_us = now_us - now_us % (step_s * 1_000_000) - 60_000_000  # a grid point a minute ago
    start_us = end_us - hours * 3_600_000_000
    models: list[str | None] = [*MODELS, None]
    fleets: dict[str, list[tuple[str, str | None]]] = {"fq-main": [], "fq-other": []}
    scenario = Scenario(fleets, end=EPOCH + end_us * US)
    for i in range(vehicles):
        fleet = "fq-main" if i < vehicles - 2 else "fq-other"
        model = models[i % len(models)]
        vid = f"FQ{seed}-{i}"
        fleets[fleet].append((vid, model))
        offset_us = 0 if i % 3 else rng.randrange(1, step_s) * 1_000_000  # some off the grid
        ts = np.arange(start_us + offset_us, end_us, step_s * 1_000_000, dtype=np.int64)
        ts = ts[np.array([rng.random() >= 0.11 for _ in ts], bool)]  # ~11% missing points
        columns = _signals(rng, len(ts), electric=model == "m-bev")
        _batches(rng, vid, ts * 1000, columns, scenario)
    return scenario


def _signals(rng: random.Random, n: int, *, electric: bool) -> dict[str, np.ndarray]:
    speed = np.empty(n)
    i = 0
    while i < n:  # segments: driving, standing still, creeping around 1 km/h
        length = rng.randrange(5, 400)
        kind = rng.random()
        for j in range(i, min(n, i + length)):
            if kind < 0.5:
                speed[j] = rng.randrange(8, 480) / 4  # 2..120 km/h in quarters: exact sums
            elif kind < 0.8:
                speed[j] = 0.0
            else:
                speed[j] = rng.choice((0.5, 1.0, 1.5))  # averages of exactly 1 km/h happen
        i += length
    lat = 48.1 + np.cumsum([rng.uniform(-1e-3, 1e-3) for _ in range(n)])
    lon = 11.5 + np.cumsum([rng.uniform(-1e-3, 1e-3) for _ in range(n)])
    level = np.array([max(0.0, 60 - rng.randrange(0, 240) / 4 - j / max(n, 1) * 20) for j in range(n)])
    columns = {SPEED: speed, LAT: lat, LON: lon, SOC if electric else FUEL: level}
    for values in columns.values():  # NULL fields
        values[np.array([rng.random() < 0.05 for _ in range(n)], bool)] = np.nan
    return columns


def _batches(
    rng: random.Random, vid: str, ts_ns: np.ndarray, columns: dict[str, np.ndarray], scenario: Scenario
) -> None:
    cuts = [0]
    while cuts[-1] < len(ts_ns):
        cuts.append(min(len(ts_ns), cuts[-1] + rng.randrange(10, 80)))
    batches = [
        TelemetryBatch(vid, seq, ts_ns[a:b], {k: v[a:b] for k, v in columns.items()})
        for seq, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False), start=1)
    ]
    backlog: list[TelemetryBatch] = []
    if len(batches) >= 8:  # a backlog after an outage, sent after everything else
        outage = rng.randrange(len(batches) // 3, len(batches) - 3)
        backlog = batches[outage : outage + rng.randrange(2, 6)]
    rest = [b for b in batches if b not in backlog]
    for k in range(0, len(rest) - 1, 2):  # neighbouring batches swapped: out-of-order delivery
        if rng.random() < 0.3:
            rest[k], rest[k + 1] = rest[k + 1], rest[k]
    scenario.on_time.extend(rest)
    scenario.late.extend(backlog)


def register(conn: psycopg.Connection, scenario: Scenario) -> None:
    """The fleets, models and vehicles in the registry (before any data arrives)."""
    with conn.transaction():
        for model_id, powertrain in MODELS.items():
            conn.execute(
                "INSERT INTO vehicle_models (model_id, make, model, powertrain) VALUES (%s, 'T', %s, %s)"
                " ON CONFLICT DO NOTHING",
                (model_id, model_id, powertrain),
            )
        for fleet, members in scenario.fleet_vehicles.items():
            conn.execute(
                "INSERT INTO fleets (fleet_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (fleet, fleet)
            )
            for vid, model in members:
                conn.execute(
                    "INSERT INTO vehicles (vehicle_id, model_id, fleet_id) VALUES (%s, %s, %s)",
                    (vid, model, fleet),
                )


def deliver(store: TelemetryStore, batches: Sequence[TelemetryBatch], per_flush: int = 40) -> None:
    """Through ingest's real write path (ledger, rows, last-known state), in the given order."""
    for k in range(0, len(batches), per_flush):
        envelopes = [
            Envelope(topics.topic_for(b.vehicle_id, topics.TELEMETRY), wire_v1.encode(b), time.time_ns())
            for b in batches[k : k + per_flush]
        ]
        result = store.write(triage(envelopes))
        assert result.dead_letters == 0, result


# ---- the reference: plain Python over the raw rows ----


@dataclass(frozen=True)
class Raw:
    ts_us: int
    speed: float | None
    lat: float | None
    lon: float | None
    fuel: float | None
    soc: float | None


def raw_rows(conn: psycopg.Connection, vehicles: Iterable[str]) -> dict[str, list[Raw]]:
    got: dict[str, list[Raw]] = defaultdict(list)
    rows = conn.execute(
        "SELECT vehicle_id, ts, speed_kmh, latitude_deg, longitude_deg, fuel_level_pct, traction_soc_pct"
        " FROM telemetry WHERE vehicle_id = ANY(%s)",
        (list(vehicles),),
    ).fetchall()
    for vid, ts, *values in rows:
        got[vid].append(Raw(_grid_us(ts), *values))
    return got


def _edge_us(until: dt.datetime) -> int:
    us = _grid_us(until)
    return us - us % 600_000_000


def _newest(rows: list[Raw], until_us: int, name: str) -> tuple[float, int] | None:
    best = None
    for r in rows:
        value = getattr(r, name)
        if value is not None and r.ts_us <= until_us and (best is None or r.ts_us > best[1]):
            best = (value, r.ts_us)
    return best


def _bucket_means(rows: list[Raw], lo_us: int, hi_us: int) -> dict[int, float]:
    sums: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        if r.speed is not None and lo_us <= r.ts_us < hi_us:
            sums[r.ts_us - r.ts_us % 600_000_000].append(r.speed)
    return {b: sum(v) / len(v) for b, v in sums.items()}


def reference(
    query: str,
    members: list[tuple[str, str | None]],
    raw: dict[str, list[Raw]],
    until: dt.datetime,
    days: int = 7,
) -> list[tuple]:
    """The answer of `query` as tuples comparable with the SQL rows (times in µs since the epoch)."""
    until_us = _grid_us(until)
    edge = _edge_us(until)
    out: list[tuple] = []
    if query == "last-location":
        for vid, _ in sorted(members):
            lat, lon = _newest(raw[vid], until_us, "lat"), _newest(raw[vid], until_us, "lon")
            if lat or lon:
                out.append((vid, *(lat or (None, None)), *(lon or (None, None))))
    elif query == "low-fuel":
        for vid, model in sorted(members):
            powertrain = MODELS.get(model) if model else None
            fuel, soc = _newest(raw[vid], until_us, "fuel"), _newest(raw[vid], until_us, "soc")
            use_soc = powertrain == "bev" or (powertrain not in ("ice", "hev", "phev") and fuel is None)
            level = soc if use_soc else fuel
            if level is not None and level[0] < 10:
                out.append((vid, "state_of_charge" if use_soc else "fuel_level", *level))
    elif query == "stationary":
        for vid, _ in sorted(members):
            mean = _bucket_means(raw[vid], edge - 600_000_000, edge).get(edge - 600_000_000)
            if mean is not None and mean < 1:
                out.append((vid, mean))
    elif query in ("long-driving", "long-daily"):
        hours, least = (4, 22) if query == "long-driving" else (24, 60)
        for vid, _ in sorted(members):
            means = _bucket_means(raw[vid], edge - hours * 3_600_000_000, edge)
            driving = sum(1 for m in means.values() if m > 1)
            if driving > least:
                out.append((vid, driving))
    elif query == "daily-activity":
        day_us = 86_400_000_000
        last_day = (edge - 600_000_000) - (edge - 600_000_000) % day_us
        first_day = last_day - (days - 1) * day_us
        per: dict[tuple[int, str | None], list[int]] = defaultdict(list)
        for vid, model in members:
            means = _bucket_means(raw[vid], first_day, edge)
            counts: dict[int, int] = defaultdict(int)
            for bucket, mean in means.items():
                if mean > 1:
                    counts[bucket - bucket % day_us] += 1
            for day, n in counts.items():
                per[(day, model)].append(n)
        models = sorted({m for _, m in members}, key=lambda m: (m is None, m or ""))
        for day in range(first_day, last_day + 1, day_us):
            for model in models:
                counts_of = per.get((day, model), [])
                out.append((day, model, len(counts_of), sum(counts_of)))
    return out
