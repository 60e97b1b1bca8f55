"""Ingest with the batch decoder: a flush triaged in chunks of frames is what classifying each
message alone gives, and the last-known-state document is what a row-by-row scan gives. Pure."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import SIGNALS, TelemetryBatch, topics, wire_v1
from contract.timestamps import MAX_TS_US
from contract.wire_v1_batch import decode_frames
from ingest import pipeline
from ingest.flush import prepare_flush
from ingest.latest_state import _iso, iso_many
from ingest.pipeline import Accepted, Envelope, classify, triage
from tests.contract.test_wire_v1_batch import any_frame, valid_frames

NOW_NS = 1_700_000_000_000_000 * 1000 + 3_600 * 10**9  # an hour after the frames' T0


def _topic_for(payload: bytes, mismatch: bool) -> str:
    try:
        vehicle = wire_v1.decode(payload).vehicle_id
    except Exception:  # noqa: BLE001  # any topic will do for a bad frame
        vehicle = "VEH-1"
    return topics.topic_for("VEH-OTHER" if mismatch else vehicle, topics.TELEMETRY)


messages = st.lists(
    st.tuples(any_frame, st.booleans(), st.sampled_from(["telemetry", "telemetry", "status", "bad"])),
    max_size=20,
)


def _envelopes(drawn: list[tuple[bytes, bool, str]]) -> list[Envelope]:
    out = []
    for payload, mismatch, kind in drawn:
        if kind == "status":
            out.append(Envelope(topics.topic_for("VEH-1", topics.STATUS), b'{"state": "online"}', NOW_NS))
        elif kind == "bad":
            out.append(Envelope("fleet/v1/VEH-1/nonsense", payload, NOW_NS))
        else:
            out.append(Envelope(_topic_for(payload, mismatch), payload, NOW_NS))
    return out


def _same_outcome(a: object, b: object) -> bool:
    if isinstance(a, Accepted) and isinstance(b, Accepted):
        x, y = a.batch, b.batch
        return (
            a.envelope == b.envelope
            and (x.vehicle_id, x.seq, list(x.columns)) == (y.vehicle_id, y.seq, list(y.columns))
            and np.array_equal(x.ts_ns, y.ts_ns)
            and all(np.array_equal(x.columns[p], y.columns[p], equal_nan=True) for p in x.columns)
        )
    return a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.integers(1, 5), st.sampled_from([1, 200, 1 << 20]))
def test_triage_in_chunks_is_classify_one_by_one(
    drawn: list[tuple[bytes, bool, str]], chunk: int, body_bytes: int
) -> None:
    envelopes = _envelopes(drawn)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "DECODE_CHUNK_MESSAGES", chunk)
        mp.setattr(pipeline, "DECODE_CHUNK_BYTES", body_bytes)
        chunked = triage(envelopes)
    expected = pipeline.Triage()
    for envelope in envelopes:
        expected.add(classify(envelope))
    assert chunked.consumed == len(envelopes)
    assert chunked.duplicates == expected.duplicates
    got, want = chunked.outcomes(), expected.outcomes()
    assert len(got) == len(want)
    assert all(_same_outcome(a, b) for a, b in zip(got, want, strict=True))


@settings(max_examples=50, deadline=None)
@given(st.lists(any_frame, min_size=1, max_size=12), st.integers(1, 4000))
def test_a_body_budget_decodes_a_prefix(payloads: list[bytes], budget: int) -> None:
    whole, part = decode_frames(payloads), decode_frames(payloads, max_bytes=budget)
    assert 1 <= len(part) <= len(payloads)
    for i in range(len(part)):
        assert (part.errors[i] is None) == (whole.errors[i] is None)
        if part.errors[i] is None:
            a, b = part.batch(i), whole.batch(i)
            assert np.array_equal(a.ts_ns, b.ts_ns) and list(a.columns) == list(b.columns)


@given(st.lists(st.integers(0, MAX_TS_US) | st.integers(0, MAX_TS_US // 10**6).map(lambda s: s * 10**6)))
def test_iso_many_writes_what_isoformat_writes(ts_us: list[int]) -> None:
    assert iso_many(np.array(ts_us, np.int64)) == [_iso(t) for t in ts_us]


def _oracle(batches: list[TelemetryBatch]) -> list[dict]:
    """The last-known-state document, row by row in plain Python (values outside the catalogue
    range are stored as NULL, so they are no one's latest)."""
    by_path = {s.vss_path: s for s in SIGNALS}
    newest: dict[str, int] = {}
    latest: dict[str, dict[str, tuple[int, float]]] = {}
    for b in batches:
        for r, ts_ns in enumerate(b.ts_ns.tolist()):
            at = ts_ns // 1000
            newest[b.vehicle_id] = max(newest.get(b.vehicle_id, at), at)
            for path, values in b.columns.items():
                v = float(values[r])
                seen = latest.setdefault(b.vehicle_id, {}).get(path)
                in_range = by_path[path].min_value <= v <= by_path[path].max_value
                if in_range and (seen is None or at >= seen[0]):
                    latest[b.vehicle_id][path] = (at, v)

    def iso(at: int) -> str:
        return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=at)).isoformat()

    doc = []
    for v in sorted(newest):
        got = latest.get(v, {})
        s = {
            p.vss_path: {"value": got[p.vss_path][1], "ts": iso(got[p.vss_path][0])}
            for p in SIGNALS
            if p.vss_path in got
        }
        oldest = min((at for at, _ in got.values()), default=None)
        doc.append({"v": v, "t": iso(newest[v]), "s": s, "oldest": None if oldest is None else iso(oldest)})
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_frames(), min_size=1, max_size=15))
def test_the_last_known_state_document_is_a_row_by_row_scan(payloads: list[bytes]) -> None:
    envelopes = [Envelope(_topic_for(p, False), p, NOW_NS) for p in payloads]
    prepared = prepare_flush(triage(envelopes))
    assert prepared.params is not None
    batches = [a.batch for a in prepared.accepted]
    p = prepared.params
    document = [
        {"v": v, "t": t, "s": json.loads(s), "oldest": oldest}
        for v, t, s, oldest in zip(
            p.latest_vehicles, p.latest_ts_iso, p.latest_signals_json, p.latest_oldest_iso, strict=True
        )
    ]
    assert document == _oracle(batches)


def test_a_failing_batch_decoder_costs_speed_not_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the batch decoder: the chunk is decoded frame by frame, every message accounted for."""
    good = wire_v1.encode(
        TelemetryBatch("VEH-1", 1, np.array([NOW_NS - 10**9]), {"Vehicle.Speed": np.array([50.0])})
    )
    envelopes = [
        Envelope(topics.topic_for("VEH-1", topics.TELEMETRY), good, NOW_NS),
        Envelope(topics.topic_for("VEH-1", topics.TELEMETRY), b"FP\x01", NOW_NS),
    ]

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug in the batch decoder")

    monkeypatch.setattr(pipeline.wire_v1_batch, "decode_frames", broken)
    triaged = triage(envelopes)
    assert triaged.consumed == 2 and len(triaged.accepted) == 1
    assert [d.reason for d in triaged.dead] == ["truncated"]
    assert triaged.accepted[0].source is None
