"""The batch decoder (`contract.wire_v1_batch.decode_frames`) against `wire_v1.decode`, frame by frame.

Property: on random flushes mixing valid frames (raw and zlib, dense and sparse columns), every
malformed payload of the codec tests, every hostile telemetry class of the hardening suite, and
valid frames damaged at random (a byte changed, cut short, bytes appended, then maybe recompressed),
the batch decoder gives exactly what decoding each frame alone gives: the same batch (vehicle, seq,
times, columns in frame order, values with NaN where absent), or the same DecodeError (reason and
detail), in the same order. Its own verdict (before `decode` fills in a rejected frame's detail)
must already have `decode`'s reason.
"""

from __future__ import annotations

import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import SIGNALS, DecodeError, EncodeError, TelemetryBatch, WireType, wire_v1
from contract.wire_v1_batch import batch_verdicts, decode_frames
from tests.hostile_messages import HOSTILE
from tests.malformed_payloads import MALFORMED

T0_US = 1_700_000_000_000_000
HOSTILE_FRAMES = [
    h.message.payload
    for h in (make("HOSTILE-1") for make in HOSTILE.values())
    if h.message.topic.endswith("/telemetry")
]
MALFORMED_FRAMES = [payload for payload, _ in MALFORMED.values()]


@st.composite
def valid_frames(draw: st.DrawFn) -> bytes:
    n_rows = draw(st.integers(1, 20))
    deltas = draw(st.lists(st.integers(1, 2_000_000), min_size=n_rows - 1, max_size=n_rows - 1))
    ts_us = T0_US + np.concatenate(([0], np.cumsum(np.array(deltas, np.int64))))
    signals = draw(st.lists(st.sampled_from(SIGNALS), min_size=1, max_size=6, unique=True))
    columns = {}
    for signal in signals:
        present = np.array(draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows)))
        if draw(st.booleans()):
            present[:] = True
        if signal.wire_type is WireType.BOOL:
            values = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n_rows, max_size=n_rows)))
        else:
            values = np.array(
                draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n_rows, max_size=n_rows))
            )
        columns[signal.vss_path] = np.where(present, values, np.nan)
    vehicle = draw(st.sampled_from(["VEH-1", "VEH-2", "veh.3", "V" * 64]))
    batch = TelemetryBatch(vehicle, draw(st.integers(0, wire_v1.MAX_SEQ)), ts_us * 1000, columns)
    try:
        return wire_v1.encode(batch, compress=draw(st.booleans()))
    except EncodeError:  # no present value at all: send the frame the encoder refuses anyway
        return wire_v1.encode(TelemetryBatch(vehicle, 1, ts_us[:1] * 1000, {"Vehicle.Speed": np.ones(1)}))


@st.composite
def damaged_frames(draw: st.DrawFn) -> bytes:
    """A valid frame, damaged in its uncompressed form, then maybe compressed again."""
    raw = wire_v1.encode(wire_v1.decode(draw(valid_frames())), compress=False)
    body = bytearray(raw[wire_v1.HEADER.size :])
    how = draw(st.sampled_from(["flip", "cut", "append", "flip2"]))
    if how in ("flip", "flip2"):
        for _ in range(1 if how == "flip" else 2):
            at = draw(st.integers(0, len(body) - 1))
            body[at] = draw(st.integers(0, 255))
    elif how == "cut":
        del body[draw(st.integers(0, len(body) - 1)) :]
    else:
        body += draw(st.binary(min_size=1, max_size=9))
    if draw(st.booleans()):
        packed = zlib.compress(bytes(body))
        return wire_v1.HEADER.pack(wire_v1.MAGIC, 1, wire_v1.FLAG_ZLIB, len(packed)) + packed
    return wire_v1.HEADER.pack(wire_v1.MAGIC, 1, 0, len(body)) + bytes(body)


any_frame = st.one_of(
    valid_frames(),
    damaged_frames(),
    st.sampled_from(MALFORMED_FRAMES),
    st.sampled_from(HOSTILE_FRAMES),
    st.binary(max_size=40),
)


def assert_same(payloads: list[bytes]) -> None:
    block = decode_frames(payloads)
    verdicts = batch_verdicts(payloads)
    assert len(block) == len(payloads)
    for i, payload in enumerate(payloads):
        try:
            expected = wire_v1.decode(payload)
        except DecodeError as exc:
            error = block.errors[i]
            assert error is not None, f"frame {i}: decode says {exc.reason}, the batch decoder accepts it"
            assert (verdicts[i], error.reason, error.detail) == (exc.reason, exc.reason, exc.detail)
            continue
        assert block.errors[i] is None and verdicts[i] is None, f"frame {i}: {block.errors[i]}"
        got = block.batch(i)
        assert (got.vehicle_id, got.seq) == (expected.vehicle_id, expected.seq)
        assert got.ts_ns.dtype == expected.ts_ns.dtype and np.array_equal(got.ts_ns, expected.ts_ns)
        assert list(got.columns) == list(expected.columns)
        for path, values in expected.columns.items():
            assert got.columns[path].dtype == np.float64
            assert np.array_equal(got.columns[path], values, equal_nan=True), path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_frame, max_size=25))
def test_a_flush_decodes_as_its_frames_do_one_by_one(payloads: list[bytes]) -> None:
    assert_same(payloads)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(damaged_frames(), min_size=1, max_size=10))
def test_damaged_frames_get_decode_s_verdict(payloads: list[bytes]) -> None:
    assert_same(payloads)


def test_every_known_hostile_and_malformed_frame_among_valid_ones() -> None:
    valid = [
        wire_v1.encode(
            TelemetryBatch(
                f"VEH-{i}", i, (T0_US + np.arange(3) * 1000) * 1000, {"Vehicle.Speed": np.ones(3)}
            ),
            compress=bool(i % 2),
        )
        for i in range(4)
    ]
    mixed = [frame for bad in [*MALFORMED_FRAMES, *HOSTILE_FRAMES] for frame in (valid[0], bad)] + valid
    assert_same(mixed)
    block = decode_frames(mixed)
    n_bad = len(MALFORMED_FRAMES) + len(HOSTILE_FRAMES)
    assert all(block.errors[2 * i] is None for i in range(n_bad)), "a bad frame cost a valid one"
    assert all(e is None for e in block.errors[-4:])


def test_an_empty_flush() -> None:
    block = decode_frames([])
    assert len(block) == 0 and block.ts_ns.size == 0 and block.values == {}
