"""Preparing a flush never lets one message cost another: pure tests, no I/O.

Each hostile class is mixed into a flush with valid telemetry, DTC and status messages of other
vehicles; every valid message must come out accepted and the hostile one dead-lettered with its own
reason. A property test checks that every message of any mix is accounted for exactly once, also
when preparation itself raises on one of them.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import SIGNALS, TelemetryBatch, WireType, topics, wire_v1
from ingest.flush import PreparedFlush, prepare_flush
from ingest.pipeline import Envelope, Triage, flush_memory_bytes, triage
from ingest.preparation import prepare_isolated
from tests.hostile_messages import HOSTILE, Message, now_us, telemetry_batch, valid_set
from tests.malformed_payloads import MALFORMED


def envelopes(messages: list[Message]) -> list[Envelope]:
    received = time.time_ns()
    return [Envelope(m.topic, m.payload, received, m.retained) for m in messages]


def outcome_vehicles(prepared: PreparedFlush) -> tuple[set[str], set[str], set[str]]:
    return (
        {a.batch.vehicle_id for a in prepared.accepted},
        {d.report.vehicle_id for d in prepared.dtcs},
        {s.vehicle_id for s in prepared.statuses},
    )


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_message_costs_no_valid_one(name: str) -> None:
    valid = valid_set("P")
    hostile = HOSTILE[name]("P-HOSTILE")
    mixed = envelopes([*valid.messages[:4], hostile.message, *valid.messages[4:]])
    prepared, consumed = prepare_isolated(mixed, prepare_flush)
    assert consumed == len(mixed) == prepared.n_envelopes
    telemetry, dtcs, statuses = outcome_vehicles(prepared)
    assert (telemetry, dtcs, statuses) == (set(valid.rows), set(valid.dtcs), set(valid.statuses))
    assert [(d.reason, d.payload) for d in prepared.dead] == [(hostile.reason, hostile.message.payload)]


def test_a_bug_on_one_message_dead_letters_it_and_keeps_every_other_kind() -> None:
    """The one-by-one retry used to keep telemetry only: DTC and status messages were acknowledged
    and lost. Now every outcome goes through `Triage.add`."""
    valid = valid_set("BUG")
    boom = telemetry_batch("BOOM", 1, 2, now_us())
    boom_message = Message(topics.topic_for("BOOM", topics.TELEMETRY), wire_v1.encode(boom))
    junk = Message(topics.topic_for("JUNK", topics.TELEMETRY), b"not a frame")
    repeat = valid.messages[0]

    def exploding(triaged: Triage) -> PreparedFlush:
        if any(a.batch.vehicle_id == "BOOM" for a in triaged.accepted):
            raise RuntimeError("boom")
        return prepare_flush(triaged)

    mixed = envelopes([*valid.messages, boom_message, junk, repeat])
    prepared, consumed = prepare_isolated(mixed, exploding)
    assert consumed == len(mixed) == prepared.n_envelopes
    assert outcome_vehicles(prepared) == (set(valid.rows), set(valid.dtcs), set(valid.statuses))
    assert sorted(d.reason for d in prepared.dead) == ["bad_magic", "internal_error"]
    assert prepared.duplicates == 1  # the in-flush dedupe holds on the retry path too


def test_preparation_stops_at_the_decoded_size_cap_and_keeps_order() -> None:
    start = now_us()
    batches = [telemetry_batch(f"CAP-{i}", 1, 1000, start) for i in range(5)]
    frames = [Message(topics.topic_for(b.vehicle_id, topics.TELEMETRY), wire_v1.encode(b)) for b in batches]
    one = flush_memory_bytes(1000, 1)  # 1000 rows of one signal
    mixed = envelopes(frames)
    prepared, consumed = prepare_isolated(mixed, prepare_flush, max_memory_bytes=int(2.5 * one))
    assert consumed == 2 and prepared.n_envelopes == 2
    assert [a.batch.vehicle_id for a in prepared.accepted] == ["CAP-0", "CAP-1"]
    alone, consumed_alone = prepare_isolated(mixed[2:], prepare_flush, max_memory_bytes=one // 2)
    assert consumed_alone == 1 and len(alone.accepted) == 1  # a frame bigger than the cap goes alone


def test_the_cap_counts_the_union_of_signals_of_a_flush() -> None:
    """A one-row frame with many signals widens every row of the flush's block to that many columns."""
    start = now_us()
    narrow = telemetry_batch("NARROW", 1, 1000, start)
    paths = [s.vss_path for s in SIGNALS if s.wire_type is not WireType.BOOL]
    wide = TelemetryBatch("WIDE", 1, np.array([start * 1000]), {p: np.ones(1) for p in paths})
    messages = [
        Message(topics.topic_for(b.vehicle_id, topics.TELEMETRY), wire_v1.encode(b)) for b in (narrow, wide)
    ]
    triaged = triage(envelopes(messages))
    assert triaged.memory_bytes == flush_memory_bytes(1001, len(paths))
    capped = triage(envelopes(messages), max_memory_bytes=flush_memory_bytes(1001, 2))
    assert capped.consumed == 1  # the wide frame waits for the next flush


hostile_classes = st.sampled_from(sorted(HOSTILE))
malformed_frames = st.sampled_from(sorted(MALFORMED))


@settings(max_examples=40, deadline=None)
@given(
    picks=st.lists(
        st.one_of(
            st.tuples(st.just("valid"), st.integers(0, 6)),
            st.tuples(st.just("hostile"), hostile_classes),
            st.tuples(st.just("malformed"), malformed_frames),
        ),
        max_size=25,
    ),
    explode_on=st.one_of(st.none(), st.integers(0, 24)),
    cap=st.one_of(st.none(), st.integers(1, 200_000)),
)
def test_every_message_of_any_mix_is_accounted_for_once(
    picks: list[tuple[str, object]], explode_on: int | None, cap: int | None
) -> None:
    valid = valid_set("MIX")
    messages = []
    for kind, which in picks:
        if kind == "valid":
            messages.append(valid.messages[int(which)])  # type: ignore[call-overload]
        elif kind == "hostile":
            messages.append(HOSTILE[str(which)](f"MIX-H{len(messages)}").message)
        else:
            payload, _ = MALFORMED[str(which)]
            messages.append(Message(topics.topic_for(f"MIX-M{len(messages)}", topics.TELEMETRY), payload))
    mixed = envelopes(messages)
    culprit = mixed[explode_on].payload if explode_on is not None and explode_on < len(mixed) else None

    def prepare(triaged: Triage) -> PreparedFlush:
        if culprit is not None and any(a.envelope.payload == culprit for a in triaged.accepted):
            raise RuntimeError("a bug on this message")
        return prepare_flush(triaged)

    prepared, consumed = prepare_isolated(mixed, prepare, max_memory_bytes=cap)
    assert prepared.n_envelopes == consumed
    assert 1 <= consumed <= len(mixed) or consumed == len(mixed) == 0


@pytest.mark.parametrize(
    ("signals", "rows_per_frame", "sparse"), [(1, 5000, False), (12, 2000, False), (46, 20_000, True)]
)
def test_the_memory_estimate_bounds_what_a_prepared_flush_holds(
    signals: int, rows_per_frame: int, sparse: bool
) -> None:
    """The cap is only as good as the estimate: measure the prepared flush with tracemalloc (numpy
    reports its buffers to it) for narrow, typical and sparse-wide frames."""
    import tracemalloc

    paths = [s.vss_path for s in SIGNALS if s.wire_type is WireType.FLOAT32][:signals]
    rng = np.random.default_rng(signals)
    start = now_us() - 900_000_000
    messages = []
    for v in range(4):
        ts_ns = (start + np.arange(rows_per_frame, dtype=np.int64) * 1000) * 1000
        columns = {p: rng.uniform(0, 100, rows_per_frame) for p in paths}
        if sparse:
            for k, p in enumerate(paths):
                columns[p][np.arange(rows_per_frame) % len(paths) != k] = np.nan
        batch = TelemetryBatch(f"MEM-{v}", 1, ts_ns, columns)
        messages.append(Message(topics.topic_for(batch.vehicle_id, topics.TELEMETRY), wire_v1.encode(batch)))
    mixed = envelopes(messages)
    tracemalloc.start()
    try:
        prepared, _ = prepare_isolated(mixed, prepare_flush)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = flush_memory_bytes(prepared.block.n_rows, len(prepared.block.values))
    assert held < peak <= estimate, (held, peak, estimate)
