"""One flush, prepared for storage without touching the database: the CPU half of the write path.

Owns: turning a triage (decoded, checked batches) into what one transaction needs -- the validated
rows as a columnar block, its COPY bytes, the last known value of every signal per vehicle, and
the dead letters. Pure: no I/O, so the service can prepare flush k+1 on one core while PostgreSQL
stores flush k on the other.

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
from contract.signals import SIGNALS
from ingest.copy_binary import RowBlock, encode_copy_binary, rows_from_batches, rows_from_frames
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
    latest = _latest(prepared)
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


def latest_signals(prepared: PreparedFlush) -> list[tuple[str, dt.datetime, dict]]:
    """Per vehicle: its newest row time and, per signal, the newest present value with its time.

    The result is the `vehicle_latest` shape: {vss_path: {"value": v, "ts": iso8601}}. (The store
    sends the same objects as JSON text, `_Latest.documents`.)"""
    latest = _latest(prepared)
    signals: list[dict] = [{} for _ in latest.names]
    for found in latest.found:
        iso = latest.iso
        for c, value, k in zip(
            found.codes.tolist(), found.values.tolist(), found.instant.tolist(), strict=True
        ):
            signals[c][found.path] = {"value": value, "ts": iso[k]}
    return [
        (name, _dt(t), signals[i])
        for i, (name, t) in enumerate(zip(latest.names, latest.newest_us.tolist(), strict=True))
    ]


@dataclass(frozen=True)
class _Found:
    """One signal's newest present value of each vehicle that has one: vehicle codes, values and
    the index of their time in `_Latest.iso`."""

    path: str
    codes: np.ndarray
    values: np.ndarray
    instant: np.ndarray


@dataclass(frozen=True)
class _Latest:
    """A flush's last-known state: vehicles (sorted), each one's newest row time (Unix µs), and per
    signal the newest present values; `iso` holds each distinct time of those values once."""

    names: list[str]
    newest_us: np.ndarray
    found: list[_Found]
    iso: list[str]
    first_instant: np.ndarray  # per vehicle, the index in `iso` of its oldest latest value (len(iso): none)

    def documents(self) -> list[str]:
        """Each vehicle's signals object as JSON text: what `json.dumps` writes for the
        `latest_signals` dict (key order aside, which jsonb does not keep), without building it.
        Values are Python floats (`repr`, as `json` writes them; they are finite); paths are the
        catalogue's (letters, digits and dots: nothing to escape)."""
        pairs: list[list[str]] = [[] for _ in self.names]
        iso = self.iso
        for found in self.found:
            template = '"' + found.path + '":{"value":%r,"ts":"%s"}'
            for c, value, k in zip(
                found.codes.tolist(), found.values.tolist(), found.instant.tolist(), strict=True
            ):
                pairs[c].append(template % (value, iso[k]))
        return ["{" + ",".join(p) + "}" for p in pairs]

    def oldest_iso(self) -> list[str | None]:
        iso = self.iso
        return [iso[k] if k < len(iso) else None for k in self.first_instant.tolist()]


def _latest(prepared: PreparedFlush) -> _Latest:
    """The newest present row of every vehicle per signal, found with numpy; each distinct time is
    formatted once (a flush's newest values share few instants: mostly each vehicle's last row)."""
    if not prepared.accepted:
        empty = np.zeros(0, np.int64)
        return _Latest([], empty, [], [], empty)
    names = sorted({a.batch.vehicle_id for a in prepared.accepted})
    code_of = {name: i for i, name in enumerate(names)}
    batch_code = np.array([code_of[a.batch.vehicle_id] for a in prepared.accepted], np.int64)
    code = batch_code[prepared.row_batch]
    ts_us = prepared.block.ts_us
    order = np.lexsort((ts_us, code))  # by vehicle, then time: the last row per vehicle is the newest
    newest_ts = np.full(len(names), np.iinfo(np.int64).min)
    np.maximum.at(newest_ts, code, ts_us)
    paths, found_code, found_row, found_value = [], [], [], []
    for signal in SIGNALS:
        column = prepared.block.column(signal.vss_path)
        if column is None:
            continue
        rows = order[~np.isnan(column[order])]
        if rows.size == 0:
            continue
        codes = code[rows]
        last = np.flatnonzero(np.r_[codes[1:] != codes[:-1], True])  # last row of each vehicle run
        paths.append(signal.vss_path)
        found_code.append(codes[last])
        found_row.append(rows[last])
        found_value.append(column[rows[last]])
    if not paths:
        return _Latest(names, newest_ts, [], [], np.zeros(len(names), np.int64))
    instants, which = np.unique(ts_us[np.concatenate(found_row)], return_inverse=True)
    which = which.reshape(-1)
    bounds = np.cumsum([0, *(c.shape[0] for c in found_code)])
    found = [
        _Found(path, codes, values, which[bounds[i] : bounds[i + 1]])
        for i, (path, codes, values) in enumerate(zip(paths, found_code, found_value, strict=True))
    ]
    first = np.full(len(names), instants.shape[0])
    np.minimum.at(first, np.concatenate(found_code), which)
    return _Latest(names, newest_ts, found, iso_many(instants), first)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _dt(ts_us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ts_us)


def _iso(ts_us: int) -> str:
    return _dt(ts_us).isoformat()


def iso_many(ts_us: np.ndarray) -> list[str]:
    """`_iso` of each time (Unix µs, inside the time domain), formatted by numpy: exactly what
    `datetime.isoformat` writes for UTC (no fraction when it is whole seconds, else six digits)."""
    at = np.asarray(ts_us, np.int64).astype("datetime64[us]")
    whole = np.datetime_as_string(at, unit="s")
    fraction = np.datetime_as_string(at, unit="us")
    text = np.where(at.astype(np.int64) % 1_000_000 == 0, whole, fraction)
    return [t + "+00:00" for t in text.tolist()]
