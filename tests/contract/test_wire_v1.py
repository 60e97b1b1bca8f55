"""Wire format v1: round trip (hypothesis), and every malformed payload gets its specific reason."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import SIGNALS, DeadLetterReason, DecodeError, EncodeError, TelemetryBatch, WireType, wire_v1
from contract.signals import BY_PATH
from contract.timestamps import MAX_TS_US
from tests.malformed_payloads import GOOD_SPEED, MALFORMED, body, frame

vehicle_ids = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)


@st.composite
def batches(draw: st.DrawFn) -> TelemetryBatch:
    n = draw(st.integers(1, 300))
    start_us = draw(st.integers(0, 2**52))
    deltas = draw(st.lists(st.integers(1, 2**32 - 1), min_size=n - 1, max_size=n - 1))
    ts_us = np.cumsum([start_us, *deltas], dtype=np.int64)
    chosen = draw(st.lists(st.sampled_from(SIGNALS), unique=True, max_size=len(SIGNALS)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    columns = {}
    for signal in chosen:
        if signal.wire_type is WireType.BOOL:
            values = rng.integers(0, 2, n).astype(np.float64)
        else:
            values = rng.uniform(signal.min_value, signal.max_value, n)
        mode = draw(st.sampled_from(["all", "none", "some"]))
        if mode == "none":
            values[:] = np.nan
        elif mode == "some":
            values[rng.random(n) < 0.5] = np.nan
        columns[signal.vss_path] = values
    if not any((~np.isnan(v)).any() for v in columns.values()):  # a batch must carry a value
        speed = np.full(n, np.nan)
        speed[draw(st.integers(0, n - 1))] = 42.0
        columns["Vehicle.Speed"] = speed
    return TelemetryBatch(draw(vehicle_ids), draw(st.integers(0, 2**63 - 1)), ts_us * 1000, columns)


def _filled_rows(batch: TelemetryBatch) -> np.ndarray:
    filled = np.zeros(batch.n_rows, dtype=bool)
    for values in batch.columns.values():
        filled |= ~np.isnan(values)
    return filled


def _as_sent(path: str, values: np.ndarray) -> np.ndarray:
    """What the receiver must see: values rounded to the signal's wire type, NaN kept."""
    present = ~np.isnan(values)
    out = np.full(values.shape, np.nan)
    out[present] = values[present].astype(BY_PATH[path].wire_type.numpy_dtype)
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), compress=st.booleans())
def test_round_trip_preserves_every_sample(batch: TelemetryBatch, compress: bool) -> None:
    """Every value comes back (rounded to its wire type); rows without any value carry nothing and
    are dropped by the decoder."""
    decoded = wire_v1.decode(wire_v1.encode(batch, compress=compress))
    filled = _filled_rows(batch)
    assert decoded.vehicle_id == batch.vehicle_id
    assert decoded.seq == batch.seq
    np.testing.assert_array_equal(decoded.ts_ns, batch.ts_ns[filled])
    assert set(decoded.columns) == set(batch.columns)
    for path, values in batch.columns.items():
        np.testing.assert_array_equal(decoded.columns[path], _as_sent(path, values)[filled])
    assert decoded.n_samples == batch.n_samples


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_decoder(payload: bytes) -> None:
    try:
        wire_v1.decode(payload)
    except DecodeError as exc:
        assert isinstance(exc.reason, DeadLetterReason)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), data=st.data())
def test_flipped_or_cut_payloads_decode_or_fail_cleanly(batch: TelemetryBatch, data: st.DataObject) -> None:
    payload = bytearray(wire_v1.encode(batch, compress=data.draw(st.booleans())))
    if data.draw(st.booleans()):
        payload = payload[: data.draw(st.integers(0, len(payload) - 1))]
    else:
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(DecodeError):
        wire_v1.decode(bytes(payload))


# --- hand-built malformed payloads: tests/malformed_payloads.py -----------------------------------


def test_hand_built_frame_is_valid() -> None:
    batch = wire_v1.decode(frame(body(GOOD_SPEED)))
    assert batch.columns["Vehicle.Speed"].tolist() == [10.0, 12.5]
    assert (np.diff(batch.ts_ns) == 1_000_000).all()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_payload_is_rejected_with_its_reason(name: str) -> None:
    payload, reason = MALFORMED[name]
    with pytest.raises(DecodeError) as caught:
        wire_v1.decode(payload)
    assert caught.value.reason is reason, caught.value


def test_encoder_refuses_what_the_decoder_would_reject() -> None:
    ts = np.array([1, 2], dtype=np.int64) * 1_000_000
    with pytest.raises(EncodeError):
        wire_v1.encode(TelemetryBatch("VEH-1", 1, ts, {"Vehicle.Speed": np.array([1.0, np.inf])}))
    with pytest.raises(EncodeError):
        wire_v1.encode(TelemetryBatch("VEH-1", 1, ts, {"Vehicle.Nope": np.array([1.0, 2.0])}))
    with pytest.raises(EncodeError):
        wire_v1.encode(TelemetryBatch("VEH-1", 1, ts[::-1].copy(), {"Vehicle.Speed": np.array([1.0, 2.0])}))
    with pytest.raises(EncodeError):
        wire_v1.encode(TelemetryBatch("bad id!", 1, ts, {}))


def test_encoder_refuses_values_and_times_the_decoder_would_reject() -> None:
    ts = np.array([1, 2], dtype=np.int64) * 1_000_000
    with pytest.raises(EncodeError, match="FLOAT32"):  # finite in float64, infinite in float32
        wire_v1.encode(TelemetryBatch("VEH-1", 1, ts, {"Vehicle.Speed": np.array([1.0, 1e39])}))
    with pytest.raises(EncodeError, match="no present value"):
        wire_v1.encode(TelemetryBatch("VEH-1", 1, ts, {"Vehicle.Speed": np.array([np.nan, np.nan])}))
    with pytest.raises(EncodeError, match="1970"):
        wire_v1.encode(TelemetryBatch("VEH-1", 1, ts - 10_000_000_000, {"Vehicle.Speed": np.ones(2)}))
    # a float64 signal holds 1e39 on the wire; only ingest's catalogue range refuses it
    latitude = {"Vehicle.CurrentLocation.Latitude": np.array([1.0, 1e39])}
    wire_v1.encode(TelemetryBatch("VEH-1", 1, ts, latitude))


def test_a_body_that_compresses_beyond_the_inflation_ratio_is_refused_not_sent() -> None:
    n = 40_000  # 40k constant rows of 12 signals: a ~2 MB body that zlib shrinks ~800:1
    ts = (1_700_000_000_000_000 + np.arange(n, dtype=np.int64) * 1000) * 1000
    columns = {s.vss_path: np.full(n, 1.0) for s in SIGNALS[:12]}
    with pytest.raises(EncodeError, match="send smaller batches"):
        wire_v1.encode(TelemetryBatch("VEH-1", 1, ts, columns))
    small = TelemetryBatch("VEH-1", 1, ts[:600], {p: v[:600] for p, v in columns.items()})
    assert wire_v1.decode(wire_v1.encode(small)).n_rows == 600  # under 1 MiB any ratio is fine


def test_empty_rows_are_dropped_and_the_rest_is_kept() -> None:
    ts = np.array([1, 2, 3], dtype=np.int64) * 1_000_000_000_000
    batch = TelemetryBatch("VEH-1", 1, ts, {"Vehicle.Speed": np.array([1.0, np.nan, 3.0])})
    decoded = wire_v1.decode(wire_v1.encode(batch))
    assert decoded.ts_ns.tolist() == [ts[0], ts[2]]
    assert decoded.columns["Vehicle.Speed"].tolist() == [1.0, 3.0]


def test_the_ends_of_the_time_domain_decode() -> None:
    for ts_us in (0, MAX_TS_US):
        batch = TelemetryBatch("VEH-1", 1, np.array([ts_us * 1000]), {"Vehicle.Speed": np.ones(1)})
        assert wire_v1.decode(wire_v1.encode(batch)).ts_ns.tolist() == [ts_us * 1000]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whatever_the_encoder_accepts_the_decoder_accepts(data: st.DataObject) -> None:
    """Hostile-ish batches (huge, tiny, absent values; times near the domain's ends): encode either
    refuses with EncodeError or produces a frame that decodes."""
    n = data.draw(st.integers(1, 40))
    start = data.draw(st.sampled_from([0, 1_700_000_000_000_000, MAX_TS_US - 10**9, MAX_TS_US - n]))
    ts_us = start + np.arange(n, dtype=np.int64) * data.draw(st.sampled_from([1, 1000, 10**7]))
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e39, -1e39, 3.4e38]))
    chosen = data.draw(st.lists(st.sampled_from(SIGNALS), unique=True, max_size=6))
    columns = {s.vss_path: np.array(data.draw(st.lists(floats, min_size=n, max_size=n))) for s in chosen}
    batch = TelemetryBatch("VEH-1", 1, ts_us * 1000, columns)
    try:
        frame_bytes = wire_v1.encode(batch, compress=data.draw(st.booleans()))
    except EncodeError:
        return
    wire_v1.decode(frame_bytes)


def test_unsendable_flags_what_encode_would_refuse_and_nothing_else() -> None:
    paths = ["Vehicle.Speed", "Vehicle.CurrentLocation.Latitude", "Vehicle.ADAS.ABS.IsEngaged"]
    values = np.array([[1e39, 1e39, 1.0], [np.nan, np.inf, 2.0], [3.4e38, -5.0, 0.0]])
    assert wire_v1.unsendable(paths, values).tolist() == [
        [True, False, False],
        [False, True, True],
        [False, False, False],
    ]
    values[wire_v1.unsendable(paths, values)] = np.nan
    ts = np.arange(3, dtype=np.int64) * 10**9 + 10**15
    wire_v1.encode(TelemetryBatch("VEH-1", 1, ts, dict(zip(paths, values.T, strict=True))))
