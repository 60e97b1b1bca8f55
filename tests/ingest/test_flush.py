"""The pure half of the write path: COPY encoding, validation, last-known state. No I/O."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import SIGNALS, TelemetryBatch, wire_v1
from contract.signals import BY_PATH
from ingest.copy_binary import COPY_HEADER, PG_EPOCH_US, encode_copy_binary, rows_from_batches
from ingest.flush import prepare_flush
from ingest.latest_state import latest_signals
from ingest.pipeline import Envelope, triage
from ingest.validation import ValidationPolicy

NOW_NS = 1_764_000_000 * 10**9
SPEED, COOLANT = (
    BY_PATH["Vehicle.Speed"],
    BY_PATH["Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"],
)


def parse_copy(data: bytes) -> set[tuple]:
    """Rows of a COPY BINARY stream as tuples (ts_us, vehicle, value or None per signal)."""
    assert data.startswith(COPY_HEADER) and data.endswith(b"\xff\xff")
    pos, rows = len(COPY_HEADER), set()
    while True:
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if n == -1:
            return rows
        fields = []
        for _ in range(n):
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            fields.append(None if length == -1 else data[pos : pos + length])
            pos += max(length, 0)
        ts = struct.unpack(">q", fields[0])[0] + PG_EPOCH_US
        values = []
        for signal, raw in zip(SIGNALS, fields[2:], strict=True):
            fmt = {1: ">f", 2: ">d", 3: ">B"}[int(signal.wire_type)]
            values.append(None if raw is None else float(struct.unpack(fmt, raw)[0]))
        rows.add((ts, fields[1].decode(), *values))


def batch(
    vehicle: str, seq: int, n: int, *, start_ns: int = NOW_NS - 10**9, step_ns: int = 10**6, **cols
) -> TelemetryBatch:
    ts = start_ns + np.arange(n, dtype=np.int64) * step_ns
    return TelemetryBatch(
        vehicle, seq, ts, {BY_PATH[p].vss_path: np.asarray(v, float) for p, v in cols.items()}
    )


def envelope(b: TelemetryBatch, received_ns: int = NOW_NS) -> Envelope:
    return Envelope(f"fleet/v1/{b.vehicle_id}/telemetry", wire_v1.encode(b), received_ns)


def expected_rows(batches: list[TelemetryBatch]) -> set[tuple]:
    out = set()
    for b in batches:
        for i in range(b.n_rows):
            vals = []
            for s in SIGNALS:
                col = b.columns.get(s.vss_path)
                v = (
                    None
                    if col is None or np.isnan(col[i])
                    else float(np.asarray(col[i], s.wire_type.numpy_dtype))
                )
                vals.append(v)
            out.add((int(b.ts_ns[i]) // 1000, b.vehicle_id, *vals))
    return out


def test_copy_stream_holds_exactly_the_rows_with_few_layouts() -> None:
    batches = [
        batch("V1", 1, 5, **{"Vehicle.Speed": [1, 2, 3, 4, 5]}),
        batch(
            "VEH-22", 1, 3, **{"Vehicle.Speed": [7, np.nan, 9], "Vehicle.ADAS.ABS.IsEngaged": [1, 0, np.nan]}
        ),
    ]
    assert parse_copy(encode_copy_binary(rows_from_batches(batches))) == expected_rows(batches)


def test_copy_stream_with_many_layouts_uses_the_masked_fallback_and_is_exact() -> None:
    rng = np.random.default_rng(3)
    columns = {}
    for s in SIGNALS:
        values = rng.uniform(0, 1, 400).astype(s.wire_type.numpy_dtype).astype(float)
        if s.wire_type == 3:
            values = np.round(values)
        values[rng.random(400) < 0.5] = np.nan
        columns[s.vss_path] = values
    many = TelemetryBatch("MANY", 1, NOW_NS + np.arange(400, dtype=np.int64) * 1000, columns)
    assert parse_copy(encode_copy_binary(rows_from_batches([many]))) == expected_rows([many])


def test_out_of_range_values_become_null_and_the_payload_is_quarantined() -> None:
    good = batch("V1", 1, 3, **{"Vehicle.Speed": [10, 20, 30]})
    hot = batch("V2", 1, 3, **{"Vehicle.Speed": [10, 20, 30], COOLANT.vss_path: [90, 250, -51]})
    prepared = prepare_flush(triage([envelope(good), envelope(hot)]))
    assert [a.batch.vehicle_id for a in prepared.accepted] == ["V1", "V2"]
    assert list(prepared.quarantine) == [1]
    letter = prepared.quarantine[1]
    assert letter.reason == "out_of_range" and "coolant_temp_c: 2 value(s)" in letter.detail
    assert letter.payload == envelope(hot).payload  # the raw bytes are kept
    coolant = prepared.block.values[COOLANT.vss_path]
    np.testing.assert_array_equal(coolant[3:], [90, np.nan, np.nan])
    np.testing.assert_array_equal(prepared.block.values[SPEED.vss_path], [10, 20, 30, 10, 20, 30])


def test_batches_outside_the_time_window_are_dead_lettered_whole() -> None:
    policy = ValidationPolicy(max_future_s=60, max_past_s=3600)
    future = batch("F", 1, 2, start_ns=NOW_NS + 120 * 10**9, **{"Vehicle.Speed": [1, 2]})
    old = batch("O", 1, 2, start_ns=NOW_NS - 7200 * 10**9, **{"Vehicle.Speed": [1, 2]})
    fine = batch("N", 1, 2, start_ns=NOW_NS - 1800 * 10**9, **{"Vehicle.Speed": [1, 2]})
    prepared = prepare_flush(triage([envelope(future), envelope(old), envelope(fine)]), policy)
    assert [a.batch.vehicle_id for a in prepared.accepted] == ["N"]
    assert sorted(d.reason for d in prepared.dead) == ["timestamp_in_future", "timestamp_too_old"]
    assert prepared.block.n_rows == 2


def test_latest_signals_take_the_newest_present_value_per_signal() -> None:
    newer = batch(
        "V", 2, 2, start_ns=NOW_NS - 10**9, **{"Vehicle.Speed": [50, np.nan], COOLANT.vss_path: [80, 81]}
    )
    older = batch(
        "V",
        1,
        2,
        start_ns=NOW_NS - 5 * 10**9,
        **{"Vehicle.Speed": [10, 11], "Vehicle.CurrentLocation.Heading": [90, 91]},
    )
    prepared = prepare_flush(triage([envelope(newer), envelope(older)]))
    [(vehicle, newest, signals)] = latest_signals(prepared)
    assert vehicle == "V" and newest.timestamp() == (NOW_NS - 10**9 + 10**6) / 1e9
    assert signals[SPEED.vss_path]["value"] == 50  # row 0 of the newer batch; row 1 has no speed
    assert signals[COOLANT.vss_path]["value"] == 81
    assert signals["Vehicle.CurrentLocation.Heading"]["value"] == 91  # only the older batch had it


def test_only_batches_keeps_rows_and_quarantine_aligned() -> None:
    a = batch("A", 1, 2, **{"Vehicle.Speed": [1, 2]})
    b = batch("B", 1, 3, **{"Vehicle.Speed": [1, 2, 999]})
    prepared = prepare_flush(triage([envelope(a), envelope(b)]))
    only_b = prepared.only_batches(np.array([False, True]))
    assert [x.batch.vehicle_id for x in only_b.accepted] == ["B"]
    assert only_b.block.n_rows == 3 and list(only_b.row_batch) == [0, 0, 0]
    assert list(only_b.quarantine) == [0]
    assert parse_copy(only_b.copy_data) == {r for r in parse_copy(prepared.copy_data) if r[1] == "B"}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_copy_stream_is_exact_for_any_set_of_present_signals(data: st.DataObject) -> None:
    """Grouped layouts write each run of absent signals as one block of NULL lengths: check runs at
    the start, in the middle and at the end of the catalogue, across several vehicles."""
    batches = []
    for v in range(data.draw(st.integers(1, 3))):
        chosen = data.draw(st.sets(st.sampled_from([s.vss_path for s in SIGNALS]), max_size=len(SIGNALS)))
        n = data.draw(st.integers(1, 6))
        rng = np.random.default_rng(v)
        cols = {
            p: (np.round(rng.uniform(0, 1, n)) if BY_PATH[p].wire_type == 3 else rng.uniform(0, 100, n))
            for p in chosen
        }
        batches.append(batch(f"V{v}" * (v + 1), 1, n, **cols))
    assert parse_copy(encode_copy_binary(rows_from_batches(batches))) == expected_rows(batches)
