"""DRAFT of a wire format v2, for measurement only: nothing sends it and ingest cannot read it.

Why: v1 sends every value as float32/float64 and then zlib, which costs about 3.3 bytes per sample
on noisy, quantised signals (`fleet bench agent`), above the 2-byte target. Real signals come off
the bus already quantised (a DBC scale factor, an OBD formula), so sending the integer step count
loses nothing, and consecutive steps are small numbers that compress well.

Layout (little-endian; the 8-byte v1 frame header with version = 2 and FLAG_ZLIB):
    body   := id_len u8, vehicle_id, seq u64, n_rows u32, n_columns u16, ts0 i64,
              ts_width u8, zigzag(delta-of-delta of µs timestamps) as ts_width-byte ints,
              columns
    column := signal_id u16, presence u8 (+ bitmap as in v1), width u8,
              first i64 (quantised), zigzag(diff of quantised values) as width-byte ints
Quantised value = round(value / resolution) with a per-signal resolution the catalogue would have
to carry (`RESOLUTIONS` below is the proposal). Booleans use resolution 1. The decoder is exact
for values on the resolution grid and within resolution/2 otherwise.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from contract.batch import TelemetryBatch
from contract.signals import BY_ID, BY_PATH
from edge_agent.sources.simulated import PROPOSED

VERSION = 2
HEADER = struct.Struct("<2sBBI")

# Proposed `resolution` per catalogue signal (units as in the catalogue).
RESOLUTIONS: dict[str, float] = {
    "Vehicle.Speed": 0.01,
    "Vehicle.CurrentLocation.Latitude": 1e-7,
    "Vehicle.CurrentLocation.Longitude": 1e-7,
    "Vehicle.CurrentLocation.Heading": 0.01,
    "Vehicle.Powertrain.CombustionEngine.Speed": 0.25,
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature": 0.1,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 0.001,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 0.1,
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": 0.1,
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure": 0.1,
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure": 0.1,
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure": 0.1,
    "Vehicle.TraveledDistance": 0.001,
    "Vehicle.Acceleration.Longitudinal": 0.01,
    "Vehicle.Acceleration.Lateral": 0.01,
    "Vehicle.Acceleration.Vertical": 0.01,
    "Vehicle.ADAS.ABS.IsEngaged": 1.0,
    "Vehicle.ADAS.TCS.IsEngaged": 1.0,
    "Vehicle.Powertrain.FuelSystem.RelativeLevel": 100 / 255,
    # and for the signals proposed for the catalogue (see edge_agent.sources.simulated.PROPOSED)
    **{path: resolution for path, (resolution, _noise) in PROPOSED.items()},
}


def _zigzag(x: np.ndarray) -> np.ndarray:
    return ((x << 1) ^ (x >> 63)).astype(np.uint64)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.uint64)
    return ((z >> np.uint64(1)).astype(np.int64)) ^ -((z & np.uint64(1)).astype(np.int64))


def _packed(z: np.ndarray) -> bytes:
    top = int(z.max()) if z.size else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    return bytes([width]) + z.astype(f"<u{width}").tobytes()


def _unpacked(buf: memoryview, pos: int, count: int) -> tuple[np.ndarray, int]:
    width = buf[pos]
    end = pos + 1 + width * count
    return np.frombuffer(buf[pos + 1 : end], dtype=f"<u{width}").astype(np.uint64), end


def encode(batch: TelemetryBatch) -> bytes:
    """Encode (draft). Raises KeyError for a signal without a proposed resolution."""
    ts_us = np.asarray(batch.ts_ns, dtype=np.int64) // 1000
    dd = np.diff(np.diff(ts_us), prepend=0) if ts_us.size > 1 else np.empty(0, dtype=np.int64)
    vid = batch.vehicle_id.encode()
    parts = [
        bytes([len(vid)]),
        vid,
        struct.pack("<QIHq", batch.seq, batch.n_rows, len(batch.columns), ts_us[0]),
    ]
    parts.append(_packed(_zigzag(dd.astype(np.int64))))
    for path, values in batch.columns.items():
        present = ~np.isnan(values)
        q = np.round(values[present] / RESOLUTIONS[path]).astype(np.int64)
        head = struct.pack("<HB", BY_PATH[path].signal_id, 0 if present.all() else 1)
        bitmap = b"" if present.all() else np.packbits(present, bitorder="little").tobytes()
        first = int(q[0]) if q.size else 0
        parts += [head, bitmap, struct.pack("<q", first), _packed(_zigzag(np.diff(q)))]
    body = zlib.compress(b"".join(parts), 9)
    return HEADER.pack(b"FP", VERSION, 1, len(body)) + body


def decode(frame: bytes) -> TelemetryBatch:
    """Decode (draft; no validation beyond what a round-trip test needs)."""
    buf = memoryview(zlib.decompress(frame[HEADER.size :]))
    id_len = buf[0]
    vid = bytes(buf[1 : 1 + id_len]).decode()
    pos = 1 + id_len
    seq, n_rows, n_cols, ts0 = struct.unpack_from("<QIHq", buf, pos)
    pos += struct.calcsize("<QIHq")
    z, pos = _unpacked(buf, pos, max(n_rows - 1, 0))
    deltas = np.cumsum(_unzigzag(z)) if z.size else np.empty(0, dtype=np.int64)
    ts_us = np.concatenate(([ts0], ts0 + np.cumsum(deltas))).astype(np.int64)
    columns = {}
    for _ in range(n_cols):
        sid, mode = struct.unpack_from("<HB", buf, pos)
        pos += 3
        path = BY_ID[sid].vss_path
        if mode:
            nbytes = (n_rows + 7) // 8
            present = np.unpackbits(np.frombuffer(buf[pos : pos + nbytes], dtype=np.uint8), bitorder="little")
            present = present[:n_rows].astype(bool)
            pos += nbytes
        else:
            present = np.ones(n_rows, dtype=bool)
        (first,) = struct.unpack_from("<q", buf, pos)
        pos += 8
        count = int(present.sum())
        z, pos = _unpacked(buf, pos, max(count - 1, 0))
        q = np.concatenate(([first], first + np.cumsum(_unzigzag(z)))) if count else np.empty(0)
        col = np.full(n_rows, np.nan)
        col[present] = q[:count] * RESOLUTIONS[path]
        columns[path] = col
    return TelemetryBatch(vid, seq, ts_us * 1000, columns)
