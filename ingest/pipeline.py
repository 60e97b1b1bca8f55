"""The pure part of ingest: raw MQTT messages in, accepted batches and dead letters out.

Owns: decoding (telemetry a chunk of frames at a time, `contract.wire_v1_batch`) and the ordered
chain of checks an accepted batch must pass. Leaves MQTT to
`ingest.service` and SQL to `ingest.store`. Three kinds of message arrive: telemetry batches (wire
format v1), DTC reports (`contract.dtc` JSON), vehicle status (`contract.status`) and OTA update
reports (`contract.update`: shape only; `ota.reports` verifies their signatures later). Every
message ends up in exactly one of `accepted`, `dtcs`, `statuses`, `updates`, `duplicates` or
`dead`: nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from contract import topics, wire_v1, wire_v1_batch
from contract.batch import TelemetryBatch
from contract.dtc import DtcReport, parse_dtc_message
from contract.errors import DeadLetterReason, DecodeError
from contract.status import StatusReport, parse_status_message
from contract.update import UpdateReport, parse_update_report
from contract.wire_v1_batch import FrameBlock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message as it came off the broker. `retained`: the broker replayed its stored copy on
    subscribe (MQTT retain flag), so the message is not news."""

    topic: str
    payload: bytes
    received_at_ns: int
    retained: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    vehicle_id: str | None
    reason: DeadLetterReason
    detail: str
    payload: bytes
    received_at_ns: int
    retained: bool = False  # from a retained replay: stored only if this payload is not stored yet


@dataclass(frozen=True, slots=True)
class Accepted:
    """A telemetry batch that passed the checks. `source`: the batch decode it came from and its
    frame there, so that a flush can take its rows from the decoded block without a per-batch copy."""

    envelope: Envelope
    batch: TelemetryBatch
    source: tuple[FrameBlock, int] | None = field(default=None, repr=False, compare=False)


def dead_letter(envelope: Envelope, reason: DeadLetterReason, detail: str) -> DeadLetter:
    """A dead letter for `envelope`, keeping its raw bytes and the topic's vehicle id if any."""
    parsed = topics.parse_topic(envelope.topic)
    return DeadLetter(
        topic=envelope.topic,
        vehicle_id=parsed[0] if parsed else None,
        reason=reason,
        detail=detail,
        payload=envelope.payload,
        received_at_ns=envelope.received_at_ns,
        retained=envelope.retained,
    )


@dataclass(frozen=True, slots=True)
class AcceptedDtc:
    envelope: Envelope
    report: DtcReport


@dataclass(frozen=True, slots=True)
class AcceptedStatus:
    envelope: Envelope
    vehicle_id: str  # from the topic, which the broker ACL vouches for
    report: StatusReport


@dataclass(frozen=True, slots=True)
class AcceptedUpdate:
    envelope: Envelope
    report: UpdateReport


@dataclass
class Triage:
    """The outcome of every message of a flush, by kind. `add` is the one way in, so that the
    in-flush dedupe of (vehicle, seq) and the flush's memory estimate hold on every path (the one-by-one
    retry included) and no message kind can be forgotten when outcomes are merged."""

    accepted: list[Accepted] = field(default_factory=list)
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    dtcs: list[AcceptedDtc] = field(default_factory=list)
    statuses: list[AcceptedStatus] = field(default_factory=list)
    updates: list[AcceptedUpdate] = field(default_factory=list)
    consumed: int = 0  # how many of the given envelopes were examined; the rest wait for a later flush
    rows: int = 0
    signals: set[str] = field(default_factory=set, repr=False)
    _seen: set[tuple[str, int]] = field(default_factory=set, repr=False)

    @property
    def memory_bytes(self) -> int:
        return flush_memory_bytes(self.rows, len(self.signals))

    def add(self, outcome: Outcome) -> None:
        if isinstance(outcome, Accepted):
            key = (outcome.batch.vehicle_id, outcome.batch.seq)
            if key in self._seen:
                self.duplicates += 1
                return
            self._seen.add(key)
            self.accepted.append(outcome)
            self.rows += outcome.batch.n_rows
            self.signals.update(outcome.batch.columns)
        elif isinstance(outcome, AcceptedDtc):
            self.dtcs.append(outcome)
        elif isinstance(outcome, AcceptedStatus):
            self.statuses.append(outcome)
        elif isinstance(outcome, AcceptedUpdate):
            self.updates.append(outcome)
        else:
            self.dead.append(outcome)

    def outcomes(self) -> list[Outcome]:
        """Every outcome (not the in-flush duplicates, which are only counted)."""
        return [*self.accepted, *self.dtcs, *self.statuses, *self.updates, *self.dead]


Outcome = Accepted | AcceptedDtc | AcceptedStatus | AcceptedUpdate | DeadLetter


# Measured (tracemalloc, prepared flushes of 1, 12 and 46 signals): a prepared flush holds about
# 290 B per row plus 16 B per row and signal, and peaks ~90 B/row higher while it is prepared. Most
# of it is the COPY stream, which writes every catalogue column (4 bytes for a NULL), the rest the
# decoded batches and the row block (8 bytes per row and signal of the flush's signal union).
ROW_BYTES = 400
ROW_SIGNAL_BYTES = 20


def flush_memory_bytes(rows: int, signals: int) -> int:
    """An upper estimate of what a prepared flush of `rows` rows holds in memory, where `signals`
    is the union of its batches' signals (the row block has a slot per row for each)."""
    return rows * (ROW_BYTES + ROW_SIGNAL_BYTES * signals)


# A check sees the envelope and its decoded batch and raises DecodeError to reject it.
Check = Callable[[Envelope, TelemetryBatch], None]


def check_topic_matches_payload(envelope: Envelope, batch: TelemetryBatch) -> None:
    """The broker ACL vouches for the topic's vehicle id, so the payload must claim the same one."""
    _check_topic(envelope.topic, topics.TELEMETRY, batch.vehicle_id)


def _check_topic(topic: str, kind: str, vehicle_id: str) -> None:
    parsed = topics.parse_topic(topic)
    if parsed is None or parsed[1] != kind:
        raise DecodeError(DeadLetterReason.BAD_TOPIC, f"{topic!r} is not a {kind} topic")
    if parsed[0] != vehicle_id:
        raise DecodeError(
            DeadLetterReason.TOPIC_MISMATCH, f"payload vehicle {vehicle_id!r} published on {topic!r}"
        )


CHECKS: tuple[Check, ...] = (check_topic_matches_payload,)


# Telemetry frames are decoded a chunk at a time (`contract.wire_v1_batch`): at most this many
# messages, and frames whose inflated bodies and decoded arrays come to about this many bytes (or a
# quarter of the flush's memory cap), so that a cut at the memory cap wastes little decoding and a
# chunk of frames that inflate or decode to wide sparse rows holds a bounded amount of memory.
DECODE_CHUNK_MESSAGES = 2048
DECODE_CHUNK_BYTES = 16 << 20


def triage(
    envelopes: Sequence[Envelope], checks: tuple[Check, ...] = CHECKS, max_memory_bytes: int | None = None
) -> Triage:
    """Decode and check each envelope; drop in-flight repeats of the same (vehicle, seq).

    With `max_memory_bytes`, stop before the telemetry batch that would take the flush's memory
    estimate past it (never before the first one): `consumed` says where, and the caller keeps the
    rest for the next flush. Wire bytes alone do not bound memory, since frames inflate."""
    out = Triage()
    chunk_bytes = DECODE_CHUNK_BYTES
    if max_memory_bytes is not None:
        chunk_bytes = max(1, min(chunk_bytes, max_memory_bytes // 4))
    start = 0
    while start < len(envelopes):
        chunk, decoded = _decode_chunk(envelopes[start : start + DECODE_CHUNK_MESSAGES], chunk_bytes)
        for envelope, frame in zip(chunk, decoded, strict=True):
            outcome = classify(envelope, checks, frame)
            if (
                max_memory_bytes is not None
                and isinstance(outcome, Accepted)
                and out.accepted
                and flush_memory_bytes(
                    out.rows + outcome.batch.n_rows, len(out.signals | set(outcome.batch.columns))
                )
                > max_memory_bytes
            ):
                return out
            out.add(outcome)
            out.consumed += 1
        start += len(chunk)
    return out


# A telemetry frame decoded in its chunk (its batch, and where it came from) or its error; None: not
# a telemetry message, or not decoded yet.
Decoded = tuple[TelemetryBatch, FrameBlock, int] | DecodeError | None


def _decode_chunk(
    envelopes: Sequence[Envelope], chunk_bytes: int
) -> tuple[Sequence[Envelope], list[Decoded]]:
    """The leading envelopes whose telemetry frames one batch decode took (at least one envelope),
    and each one's decoded frame. Should the batch decoder fail (a bug), every frame is left to
    `classify` to decode alone, so that the bug costs speed, never a message."""
    telemetry = [i for i, e in enumerate(envelopes) if _kind(e.topic) == topics.TELEMETRY]
    decoded: list[Decoded] = [None] * len(envelopes)
    if not telemetry:
        return envelopes, decoded
    try:
        block = wire_v1_batch.decode_frames([envelopes[i].payload for i in telemetry], chunk_bytes)
        for j, i in enumerate(telemetry[: len(block)]):
            error = block.errors[j]
            decoded[i] = error if error is not None else (block.batch(j), block, j)
    except Exception:
        log.exception("batch-decoding %d frames failed; decoding them one by one", len(telemetry))
        return envelopes, [None] * len(envelopes)
    if len(block) < len(telemetry):
        end = telemetry[len(block)]
        return envelopes[:end], decoded[:end]
    return envelopes, decoded


def _kind(topic: str) -> str:
    """The message kind `classify` routes `topic` to (anything not DTC, status or update is telemetry)."""
    for kind in (topics.DTC, topics.STATUS, topics.UPDATE):
        if topic.endswith("/" + kind):
            return kind
    return topics.TELEMETRY


def classify(envelope: Envelope, checks: tuple[Check, ...] = CHECKS, decoded: Decoded = None) -> Outcome:
    """One message's outcome. Never raises: bad bytes become a dead letter with their reason, and a
    bug on some input becomes an `internal_error` dead letter with the payload kept, so that one
    message can never cost another. `decoded`: the telemetry frame already decoded (a batch or its
    DecodeError); None decodes it here."""
    try:
        kind = _kind(envelope.topic)
        if kind == topics.DTC:
            return _classify_dtc(envelope)
        if kind == topics.STATUS:
            return _classify_status(envelope)
        if kind == topics.UPDATE:
            return _classify_update(envelope)
        if isinstance(decoded, DecodeError):
            raise decoded
        if decoded is None:
            batch, source = wire_v1.decode(envelope.payload), None
        else:
            batch, source = decoded[0], decoded[1:]
        for check in checks:
            check(envelope, batch)
        return Accepted(envelope, batch, source)
    except DecodeError as exc:
        return dead_letter(envelope, exc.reason, exc.detail)
    except Exception as exc:  # noqa: BLE001  # a bug: isolate it, keep the bytes
        log.exception("classifying a message on %r failed", envelope.topic[:200])
        return dead_letter(envelope, DeadLetterReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500])


def _classify_dtc(envelope: Envelope) -> AcceptedDtc:
    """A DTC report: decoded, and its vehicle must be its topic's (the ACL vouches for the topic).
    Repeats are left to the store, which keys reports on (vehicle, time, codes)."""
    report = parse_dtc_message(envelope.payload)
    _check_topic(envelope.topic, topics.DTC, report.vehicle_id)
    return AcceptedDtc(envelope, report)


def _classify_status(envelope: Envelope) -> AcceptedStatus:
    """A status message: the topic names the vehicle; a check-in that names one must agree."""
    parsed = topics.parse_topic(envelope.topic)
    if parsed is None or parsed[1] != topics.STATUS:
        raise DecodeError(DeadLetterReason.BAD_TOPIC, f"{envelope.topic!r} is not a {topics.STATUS} topic")
    report = parse_status_message(envelope.payload)
    _check_topic(envelope.topic, topics.STATUS, report.vehicle_id or parsed[0])
    return AcceptedStatus(envelope, parsed[0], report)


def _classify_update(envelope: Envelope) -> AcceptedUpdate:
    """An OTA update report: its shape checked, its vehicle its topic's. Its signature, nonce and
    seq are `ota.reports`' business; a redelivery is left to the store (keyed on the bytes)."""
    report = parse_update_report(envelope.payload)
    _check_topic(envelope.topic, topics.UPDATE, report.vehicle_id)
    return AcceptedUpdate(envelope, report)
