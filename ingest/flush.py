"""One flush, prepared for storage without touching the database: the CPU half of the write path.

Owns: turning a triage (decoded, checked batches) into what one transaction needs -- the validated
rows as a columnar block, its COPY bytes, the last known value of every signal per vehicle (found
by `ingest.latest_state`), and the dead letters. Pure: no I/O, so the service can prepare flush k+1
on one core while PostgreSQL stores flush k on the other.

The ledger decides inside the transaction which batches are new; preparing assumes all are (the
normal case) and `only_batches` re-derives the block for the rare flush that carried redeliveries.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from contract.errors import DeadLetterReason
from ingest.copy_binary import RowBlock, encode_copy_binary, rows_from_batches, rows_from_frames
from ingest.latest_state import _dt, _iso, iso_many, latest_state
from ingest.pipeline import (
    Accepted,
    AcceptedDtc,
    AcceptedStatus,
    AcceptedUpdate,
    DeadLetter,
    Triage,
    dead_letter,
)
from ingest.validation import ValidationPolicy, null_out_of_range, time_window_violations


@dataclass(frozen=True)
class PreparedFlush:
    """Everything one storage transaction needs. Row i of `block` belongs to `accepted[row_batch[i]]`."""

    accepted: tuple[Accepted, ...]
    block: RowBlock
    row_batch: np.ndarray
    quarantine: dict[int, DeadLetter]  # accepted index -> raw payload of a batch with nulled values
    dead: tuple[DeadLetter, ...]
    duplicates: int  # repeats of a (vehicle, seq) inside this flush
    copy_data: bytes | bytearray = field(repr=False, default=b"")
    params: StorageParams | None = field(repr=False, default=None)
    dtcs: tuple[AcceptedDtc, ...] = ()  # DTC reports that passed the checks
    statuses: tuple[AcceptedStatus, ...] = ()  # the newest status message per vehicle
    superseded_statuses: int = 0  # older status messages of a vehicle in this flush (not stored)
    updates: tuple[AcceptedUpdate, ...] = ()  # OTA update reports that passed the checks

    @property
    def n_envelopes(self) -> int:
        """How many messages this flush accounts for: each is stored, dead-lettered, a duplicate or
        a superseded status, exactly once."""
        return (
            len(self.accepted)
            + len(self.dead)
            + self.duplicates
            + len(self.dtcs)
            + len(self.statuses)
            + self.superseded_statuses
            + len(self.updates)
        )

    def only_batches(self, keep: np.ndarray) -> PreparedFlush:
        """The same flush restricted to the accepted batches where `keep` (bool per batch) is True."""
        index = np.flatnonzero(keep)
        remap = np.full(len(self.accepted), -1)
        remap[index] = np.arange(index.shape[0])
        rows = keep[self.row_batch]
        block = self.block.take(rows)
        subset = PreparedFlush(
            accepted=tuple(self.accepted[i] for i in index.tolist()),
            block=block,
            row_batch=remap[self.row_batch[rows]],
            quarantine={int(remap[i]): d for i, d in self.quarantine.items() if keep[i]},
            dead=self.dead,
            duplicates=self.duplicates,
            copy_data=encode_copy_binary(block),
            dtcs=self.dtcs,
            statuses=self.statuses,
            superseded_statuses=self.superseded_statuses,
            updates=self.updates,
        )
        return replace(subset, params=storage_params(subset))


@dataclass(frozen=True)
class StorageParams:
    """The SQL parameters of a flush, computed while the previous flush is being written.

    Ledger lists are per accepted batch (times in Unix µs); `ledger_order` sorts them by (vehicle,
    seq) so that concurrent workers insert keys in one order and cannot deadlock. The last-known
    state is per vehicle: its newest row time, its `{vss_path: {"value", "ts"}}` object as JSON
    text, and the time of its oldest latest value (None: no value)."""

    vehicle_ids: list[str]
    seqs: list[int]
    first_ts_us: list[int]
    last_ts_us: list[int]
    n_rows: list[int]
    n_samples: list[int]
    ledger_order: list[int]
    latest_vehicles: list[str]
    latest_ts: list[dt.datetime]
    latest_ts_iso: list[str]
    latest_signals_json: list[str]
    latest_oldest_iso: list[str | None]


def storage_params(prepared: PreparedFlush) -> StorageParams:
    """Ledger rows, vehicles' last-seen times and the last-known-state documents of a flush."""
    batches = [a.batch for a in prepared.accepted]
    present = np.zeros(prepared.block.n_rows)
    for column in prepared.block.values.values():
        present += ~np.isnan(column)
    samples = np.bincount(prepared.row_batch, weights=present, minlength=len(batches)).astype(np.int64)
    latest = latest_state(prepared)
    ts_us = prepared.block.ts_us
    starts = np.cumsum([0, *(b.n_rows for b in batches)])[:-1].astype(np.int64)
    ends = starts + np.array([b.n_rows for b in batches], np.int64) - 1
    return StorageParams(
        vehicle_ids=[b.vehicle_id for b in batches],
        seqs=[b.seq for b in batches],
        first_ts_us=ts_us[starts].tolist() if batches else [],
        last_ts_us=ts_us[ends].tolist() if batches else [],
        n_rows=[b.n_rows for b in batches],
        n_samples=samples.tolist(),
        ledger_order=sorted(range(len(batches)), key=lambda i: (batches[i].vehicle_id, batches[i].seq)),
        latest_vehicles=latest.names,
        latest_ts=[_dt(t) for t in latest.newest_us.tolist()],
        latest_ts_iso=iso_many(latest.newest_us),
        latest_signals_json=latest.documents(),
        latest_oldest_iso=latest.oldest_iso(),
    )


def prepare_flush(triaged: Triage, policy: ValidationPolicy | None = None) -> PreparedFlush:
    """Validate the accepted batches as one block and encode it for COPY."""
    policy = policy or ValidationPolicy()
    accepted = list(triaged.accepted)
    dead = list(triaged.dead)
    dtcs = list(triaged.dtcs)
    if dtcs:
        at = np.array([d.report.ts_us * 1000 for d in dtcs], np.int64)
        received = np.array([d.envelope.received_at_ns for d in dtcs], np.int64)
        rejected = time_window_violations(at, at, received, policy)
        gone = {i for i, _, _ in rejected}
        dead.extend(dead_letter(dtcs[i].envelope, reason, detail) for i, reason, detail in rejected)
        dtcs = [d for i, d in enumerate(dtcs) if i not in gone]
    if accepted:
        firsts = np.array([int(a.batch.ts_ns[0]) for a in accepted], np.int64)
        lasts = np.array([int(a.batch.ts_ns[-1]) for a in accepted], np.int64)
        received = np.array([a.envelope.received_at_ns for a in accepted], np.int64)
        rejected = time_window_violations(firsts, lasts, received, policy)
        if rejected:
            gone = {i for i, _, _ in rejected}
            dead.extend(dead_letter(accepted[i].envelope, reason, detail) for i, reason, detail in rejected)
            accepted = [a for i, a in enumerate(accepted) if i not in gone]
    sources = [a.source for a in accepted if a.source is not None]
    if len(sources) == len(accepted):  # decoded in chunks: take the rows from the decoded blocks
        block = rows_from_frames(sources)
    else:
        block = rows_from_batches([a.batch for a in accepted])
    lengths = np.array([a.batch.n_rows for a in accepted], np.int64)
    row_batch = np.repeat(np.arange(len(accepted)), lengths)
    hits = null_out_of_range(block.values, row_batch)
    quarantine = {
        i: dead_letter(accepted[i].envelope, DeadLetterReason.OUT_OF_RANGE, detail)
        for i, detail in hits.items()
    }
    statuses = newest_statuses(triaged.statuses)
    prepared = PreparedFlush(
        accepted=tuple(accepted),
        block=block,
        row_batch=row_batch,
        quarantine=quarantine,
        dead=tuple(dead),
        duplicates=triaged.duplicates,
        copy_data=encode_copy_binary(block),
        dtcs=tuple(dtcs),
        statuses=statuses,
        superseded_statuses=len(triaged.statuses) - len(statuses),
        updates=tuple(triaged.updates),
    )
    return replace(prepared, params=storage_params(prepared))


def dtc_document(dtcs: Sequence[AcceptedDtc]) -> str:
    """The DTC reports of a flush as one JSON document for `jsonb_to_recordset`."""
    return json.dumps(
        [
            {
                "v": d.report.vehicle_id,
                "t": _iso(d.report.ts_us),
                "c": d.report.codes,
                "av": d.report.agent_version,
                "sw": dict(d.report.software),
                "fw1": d.report.v1_firmware_version,
            }
            for d in dtcs
        ]
    )


def update_document(updates: Sequence[AcceptedUpdate]) -> str:
    """The OTA update reports of a flush as one JSON document (the payload as hex: the signature
    is verified over those exact bytes)."""
    return json.dumps(
        [
            {
                "v": u.report.vehicle_id,
                "o": u.report.offer_id,
                "seq": u.report.seq,
                "st": u.report.state,
                "r": u.report.reason,
                "t": _iso(u.report.ts_us),
                "ecu": u.report.ecu,
                "bv": u.report.before.version,
                "bs": u.report.before.sha256,
                "av": u.report.after.version,
                "as": u.report.after.sha256,
                "tv": u.report.target.version,
                "tsha": u.report.target.sha256,
                "k": u.report.key_id,
                "p": u.envelope.payload.hex(),
                "at": _iso(u.envelope.received_at_ns // 1000),
            }
            for u in updates
        ]
    )


def newest_statuses(statuses: list[AcceptedStatus]) -> tuple[AcceptedStatus, ...]:
    """One status per vehicle: the newest state, with the newest check-in's details (a bare
    `offline` after a check-in keeps what the check-in said, as the store does across flushes)."""
    newest: dict[str, AcceptedStatus] = {}
    for status in statuses:
        before = newest.get(status.vehicle_id)
        if before is not None and not status.report.details and before.report.details:
            report = replace(
                status.report,
                details=before.report.details,
                agent_version=before.report.agent_version,
                software=before.report.software,
            )
            status = replace(status, report=report)
        newest[status.vehicle_id] = status
    return tuple(newest[v] for v in sorted(newest))  # id order: concurrent upserts cannot deadlock


def status_document(statuses: Sequence[AcceptedStatus], *, retained: bool) -> str:
    """The status messages of a flush that are (or are not) retained replays, as one JSON document."""
    return json.dumps(
        [
            {
                "v": s.vehicle_id,
                "state": s.report.state,
                "d": s.report.details,
                "av": s.report.agent_version,
                "t": _iso(s.envelope.received_at_ns // 1000),
            }
            for s in statuses
            if s.envelope.retained == retained
        ]
    )


def software_document(statuses: Sequence[AcceptedStatus], *, retained: bool) -> str:
    """The software inventories that the flush's statuses report, one entry per (vehicle, ECU), as
    one JSON document. An empty inventory is one entry with no ECU, so that it still clears."""
    entries: list[dict[str, str | None]] = []
    for s in statuses:
        if s.envelope.retained != retained or s.report.software is None:
            continue
        at = _iso(s.envelope.received_at_ns // 1000)
        ecus: list[tuple[str | None, ...]] = [(e.ecu, e.version, e.hardware_id) for e in s.report.software]
        ecus = ecus or [(None, None, None)]
        entries += [{"v": s.vehicle_id, "t": at, "ecu": ecu, "ver": ver, "hw": hw} for ecu, ver, hw in ecus]
    return json.dumps(entries)
