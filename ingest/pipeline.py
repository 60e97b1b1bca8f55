"""The pure part of ingest: raw MQTT messages in, accepted batches and dead letters out.

Owns: decoding and the ordered chain of checks an accepted batch must pass. Leaves MQTT to
`ingest.service` and SQL to `ingest.store`. Three kinds of message arrive: telemetry batches (wire
format v1), DTC reports (`contract.dtc` JSON) and vehicle status (`contract.status`). Every message
ends up in exactly one of `accepted`, `dtcs`, `statuses`, `duplicates` or `dead`: nothing is
dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from contract import topics, wire_v1
from contract.batch import TelemetryBatch
from contract.dtc import DtcReport, parse_dtc_message
from contract.errors import DecodeError, DecodeReason
from contract.status import StatusReport, parse_status_message


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
    reason: str
    detail: str
    payload: bytes
    received_at_ns: int


@dataclass(frozen=True, slots=True)
class Accepted:
    envelope: Envelope
    batch: TelemetryBatch


def dead_letter(envelope: Envelope, reason: str, detail: str) -> DeadLetter:
    """A dead letter for `envelope`, keeping its raw bytes and the topic's vehicle id if any."""
    parsed = topics.parse_topic(envelope.topic)
    return DeadLetter(
        topic=envelope.topic,
        vehicle_id=parsed[0] if parsed else None,
        reason=reason,
        detail=detail,
        payload=envelope.payload,
        received_at_ns=envelope.received_at_ns,
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


@dataclass
class Triage:
    accepted: list[Accepted] = field(default_factory=list)
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    dtcs: list[AcceptedDtc] = field(default_factory=list)
    statuses: list[AcceptedStatus] = field(default_factory=list)


# A check sees the envelope and its decoded batch and raises DecodeError to reject it.
Check = Callable[[Envelope, TelemetryBatch], None]


def check_topic_matches_payload(envelope: Envelope, batch: TelemetryBatch) -> None:
    """The broker ACL vouches for the topic's vehicle id, so the payload must claim the same one."""
    _check_topic(envelope.topic, topics.TELEMETRY, batch.vehicle_id)


def _check_topic(topic: str, kind: str, vehicle_id: str) -> None:
    parsed = topics.parse_topic(topic)
    if parsed is None or parsed[1] != kind:
        raise DecodeError(DecodeReason.BAD_TOPIC, f"{topic!r} is not a {kind} topic")
    if parsed[0] != vehicle_id:
        raise DecodeError(
            DecodeReason.TOPIC_MISMATCH, f"payload vehicle {vehicle_id!r} published on {topic!r}"
        )


CHECKS: tuple[Check, ...] = (check_topic_matches_payload,)


def triage(envelopes: Iterable[Envelope], checks: tuple[Check, ...] = CHECKS) -> Triage:
    """Decode and check each envelope; drop in-flight repeats of the same (vehicle, seq)."""
    out = Triage()
    seen: set[tuple[str, int]] = set()
    for envelope in envelopes:
        if envelope.topic.endswith("/" + topics.DTC):
            _triage_dtc(envelope, out)
            continue
        if envelope.topic.endswith("/" + topics.STATUS):
            _triage_status(envelope, out)
            continue
        try:
            batch = wire_v1.decode(envelope.payload)
            for check in checks:
                check(envelope, batch)
        except DecodeError as exc:
            out.dead.append(dead_letter(envelope, exc.reason.value, exc.detail))
            continue
        key = (batch.vehicle_id, batch.seq)
        if key in seen:
            out.duplicates += 1
            continue
        seen.add(key)
        out.accepted.append(Accepted(envelope, batch))
    return out


def _triage_dtc(envelope: Envelope, out: Triage) -> None:
    """A DTC report: decoded, and its vehicle must be its topic's (the ACL vouches for the topic).
    Repeats are left to the store, which keys reports on (vehicle, time, codes)."""
    try:
        report = parse_dtc_message(envelope.payload)
        _check_topic(envelope.topic, topics.DTC, report.vehicle_id)
    except DecodeError as exc:
        out.dead.append(dead_letter(envelope, exc.reason.value, exc.detail))
        return
    out.dtcs.append(AcceptedDtc(envelope, report))


def _triage_status(envelope: Envelope, out: Triage) -> None:
    """A status message: the topic names the vehicle; a check-in that names one must agree."""
    parsed = topics.parse_topic(envelope.topic)
    vehicle_id = parsed[0] if parsed is not None and parsed[1] == topics.STATUS else ""
    try:
        report = parse_status_message(envelope.payload)
        _check_topic(envelope.topic, topics.STATUS, report.vehicle_id or vehicle_id)
    except DecodeError as exc:
        out.dead.append(dead_letter(envelope, exc.reason.value, exc.detail))
        return
    out.statuses.append(AcceptedStatus(envelope, vehicle_id, report))
