"""Wire format v1: round trip (hypothesis), and every malformed payload gets its specific reason."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import SIGNALS, DecodeError, DecodeReason, EncodeError, TelemetryBatch, WireType, wire_v1
from contract.signals import BY_PATH
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
    return TelemetryBatch(draw(vehicle_ids), draw(st.integers(0, 2**63 - 1)), ts_us * 1000, columns)


def _as_sent(path: str, values: np.ndarray) -> np.ndarray:
    """What the receiver must see: values rounded to the signal's wire type, NaN kept."""
    present = ~np.isnan(values)
    out = np.full(values.shape, np.nan)
    out[present] = values[present].astype(BY_PATH[path].wire_type.numpy_dtype)
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), compress=st.booleans())
def test_round_trip_preserves_every_sample(batch: TelemetryBatch, compress: bool) -> None:
    decoded = wire_v1.decode(wire_v1.encode(batch, compress=compress))
    assert decoded.vehicle_id == batch.vehicle_id
    assert decoded.seq == batch.seq
    np.testing.assert_array_equal(decoded.ts_ns, batch.ts_ns)
    assert set(decoded.columns) == set(batch.columns)
    for path, values in batch.columns.items():
        np.testing.assert_array_equal(decoded.columns[path], _as_sent(path, values))
    assert decoded.n_samples == batch.n_samples


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_decoder(payload: bytes) -> None:
    try:
        wire_v1.decode(payload)
    except DecodeError as exc:
        assert isinstance(exc.reason, DecodeReason)


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
