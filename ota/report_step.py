"""The report step: the vehicles' update reports, once verified, move their campaigns.

Owns `check_reports`: every report ingest stored and nobody judged yet is judged (signature,
nonce, replay: `ota.reports.judge`) and, when accepted, in the same transaction:
- moves the vehicle's campaign member (as `ota.controller.record_report` does), so waves advance,
  failed and rolled-back installs count toward the error threshold and the failure cap, and the
  health gate starts the soak at the commit;
- updates the vehicle's software inventory (`vehicle_software`, changes in `software_history`)
  from the report's `after`: the signed report is the truth about what runs, also after a
  rollback. An inventory entry reported later (a newer check-in) is left alone;
- adds the report to the audit register (`ota_audit`, one row per accepted report) and marks it
  applied (`applied_at`).
A report accepted without being applied (by `ota.reports.verify_pending`, `fleet ota
verify-reports`) is applied by the next step, in its offer's seq order.

The reports are taken in chunks (`chunk`, a few hundred), one transaction each: the chunk's
reports are claimed in (offer, seq) order with one `FOR UPDATE SKIP LOCKED` query, their offers
locked (`FOR UPDATE`, in offer order: two steps never deadlock on them), judged in memory
(`ota.report_batch`, pure) and the results written set-wise (one statement per table, arrays
unnested). Two steps at once therefore never judge a report twice; and since an offer's reports
must be judged in seq order (a lower seq judged later would be a replay), an offer with a report
still to judge before the chunk's (held by another step, or stored since) waits for a later chunk.
A refused report changes nothing but its verdict. The time recorded is the vehicle's, never
later than ingest's receipt (a clock ahead cannot stretch a soak). Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from contract.timestamps import UNIX_EPOCH
from ota.report_batch import Claimed, Entry, Outcome, fold_inventory, fold_members, judge_chunk
from ota.reports import ACCEPTED, OfferRecord

CHUNK = 500  # reports per transaction: measured in docs/benchmarks.md ("OTA", the server's half)
_PENDING = "(verdict IS NULL OR (verdict = 'accepted' AND applied_at IS NULL))"


@dataclass
class ReportStepReport:
    verdicts: dict[str, int] = field(default_factory=dict)  # verdict -> reports judged now
    recorded: int = 0  # accepted reports that moved a campaign member
    not_in_campaign: int = 0  # accepted reports of offers without a campaign, or of non-members
    inventory_updated: int = 0  # accepted reports that changed the vehicle's software inventory
    caught_up: int = 0  # reports accepted before (by `fleet ota verify-reports`) and applied now
    deferred: int = 0  # reports left for a later chunk: an earlier report of their offer was held

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Offer:
    record: OfferRecord
    campaign_id: int | None
    target: str


def check_reports(conn: psycopg.Connection, *, limit: int = 1000, chunk: int = CHUNK) -> ReportStepReport:
    """Judge and record up to `limit` reports not judged yet, each offer's in seq order, in
    transactions of `chunk` reports; reports accepted before but not applied (judged by
    `ota.reports.verify_pending` alone) are applied in the same order. Give it a connection
    outside a transaction (autocommit, or idle). Raises psycopg.Error."""
    out = ReportStepReport()
    passed: list[int] = []  # reports deferred by this call: not claimed again by it
    taken = 0
    while taken < limit:
        with conn.transaction():
            claimed = _claim(conn, min(chunk, limit - taken), passed)
            if not claimed:
                break
            passed += _step_chunk(conn, claimed, out)
        taken += len(claimed)
    return out


def _claim(conn: psycopg.Connection, n: int, passed: list[int]) -> list[Claimed]:
    rows = conn.execute(
        "SELECT report_id, vehicle_id, offer_id, seq, verdict, payload, received_at FROM update_reports"
        f" WHERE {_PENDING} AND report_id <> ALL(%s::bigint[]) ORDER BY offer_id, seq, report_id LIMIT %s"
        " FOR UPDATE SKIP LOCKED",
        (passed, n),
    ).fetchall()
    return [Claimed(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), r[6]) for r in rows]


def _step_chunk(conn: psycopg.Connection, claimed: list[Claimed], out: ReportStepReport) -> list[int]:
    """Judge and apply one claimed chunk; the ids of the reports deferred."""
    offer_ids = sorted({c.offer_id for c in claimed})
    offers = _lock_offers(conn, offer_ids)
    waiting = _offers_waiting(conn, offer_ids, claimed)
    deferred = [c.report_id for c in claimed if c.offer_id in waiting]
    claimed = [c for c in claimed if c.offer_id not in waiting]
    out.deferred += len(deferred)
    if not claimed:
        return deferred
    keys = _keys(conn, sorted({c.vehicle_id for c in claimed}))
    outcomes = judge_chunk(claimed, {k: o.record for k, o in offers.items()}, keys)
    applied = [o for o in outcomes if o.report is not None]
    for o in outcomes:
        if o.judged_now:
            out.verdicts[o.verdict] = out.verdicts.get(o.verdict, 0) + 1
        elif o.verdict == ACCEPTED:
            out.caught_up += 1
    remedies = _apply_members(conn, applied, offers, out)
    _apply_inventory(conn, applied, out)
    _audit(conn, applied, offers, remedies)
    _write_verdicts(conn, outcomes)
    return deferred


def _lock_offers(conn: psycopg.Connection, offer_ids: list[str]) -> dict[str, _Offer]:
    offers: dict[str, _Offer] = {}
    for offer_id, vehicle_id, nonce, ecu, issued, last_seq, campaign_id, target in conn.execute(
        "SELECT offer_id, vehicle_id, nonce, ecu, issued_at, last_seq, campaign_id, target FROM update_offers"
        " WHERE offer_id = ANY(%s) ORDER BY offer_id FOR UPDATE",
        (offer_ids,),
    ).fetchall():
        issued_us = (issued - UNIX_EPOCH) // dt.timedelta(microseconds=1)
        offers[offer_id] = _Offer(
            OfferRecord(offer_id, vehicle_id, nonce, ecu, issued_us, last_seq), campaign_id, target
        )
    return offers


def _offers_waiting(conn: psycopg.Connection, offer_ids: list[str], claimed: list[Claimed]) -> set[str]:
    """The offers with a report still to judge that is not in the chunk and comes before one of the
    chunk's (read after the offers are locked, so a step that held it has committed by now)."""
    mine = {c.report_id for c in claimed}
    last: dict[str, tuple[int, int]] = {}
    for c in claimed:
        last[c.offer_id] = max(last.get(c.offer_id, (0, 0)), (c.seq, c.report_id))
    waiting = set()
    for offer_id, seq, report_id in conn.execute(
        f"SELECT offer_id, seq, report_id FROM update_reports WHERE offer_id = ANY(%s) AND {_PENDING}",
        (offer_ids,),
    ).fetchall():
        if report_id not in mine and (seq, report_id) < last[offer_id]:
            waiting.add(offer_id)
    return waiting


def _keys(conn: psycopg.Connection, vehicle_ids: list[str]) -> dict[str, dict[str, bytes]]:
    keys: dict[str, dict[str, bytes]] = {}
    for vehicle_id, key_id, public in conn.execute(
        "SELECT vehicle_id, key_id, public_key FROM vehicle_keys WHERE vehicle_id = ANY(%s)"
        " AND revoked_at IS NULL",
        (vehicle_ids,),
    ).fetchall():
        keys.setdefault(vehicle_id, {})[key_id] = bytes(public)
    return keys


def _apply_members(
    conn: psycopg.Connection, applied: list[Outcome], offers: dict[str, _Offer], out: ReportStepReport
) -> dict[tuple[int, str], int | None]:
    """Move the members the accepted reports are of; their remedies, by (campaign, vehicle)."""
    keyed = [
        (offers[o.report.offer_id].campaign_id, o.report, o.at)
        for o in applied
        if o.report is not None and o.at is not None
    ]
    pairs = sorted({(cid, r.vehicle_id) for cid, r, _ in keyed if cid is not None})
    members: dict[tuple[int, str], tuple[int | None, str]] = {}
    if pairs:
        for cid, vid, remedy_id, state in conn.execute(
            "SELECT campaign_id, vehicle_id, remedy_id, state FROM campaign_vehicles"
            " WHERE (campaign_id, vehicle_id) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))"
            " ORDER BY campaign_id, vehicle_id FOR UPDATE",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        ).fetchall():
            members[(cid, vid)] = (remedy_id, state)
    moves = [
        (cid, r.vehicle_id, r, at)
        for cid, r, at in keyed
        if cid is not None and members.get((cid, r.vehicle_id), (None, "excluded"))[1] != "excluded"
    ]
    out.recorded += len(moves)
    out.not_in_campaign += len(keyed) - len(moves)
    folded = fold_members(moves)
    if folded:
        conn.execute(
            "UPDATE campaign_vehicles cv SET state = m.state, reason = m.reason, updated_at = now(),"
            " committed_at = coalesce(m.committed_at, cv.committed_at)"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])"
            " AS m(cid, vid, state, reason, committed_at)"
            " WHERE cv.campaign_id = m.cid AND cv.vehicle_id = m.vid AND cv.state <> 'excluded'",
            (
                [m.campaign_id for m in folded], [m.vehicle_id for m in folded], [m.state for m in folded],
                [m.reason for m in folded], [m.committed_at for m in folded],
            ),
        )  # fmt: skip
    return {k: remedy_id for k, (remedy_id, _) in members.items()}


def _apply_inventory(conn: psycopg.Connection, applied: list[Outcome], out: ReportStepReport) -> None:
    reports = [(o.report, o.at) for o in applied if o.report is not None and o.at is not None]
    if not reports:
        return
    pairs = sorted({(r.vehicle_id, r.ecu) for r, _ in reports})
    stored = {
        (vid, ecu): Entry(version, hardware_id, at)
        for vid, ecu, version, hardware_id, at in conn.execute(
            "SELECT vehicle_id, ecu, software_version, hardware_id, reported_at FROM vehicle_software"
            " WHERE (vehicle_id, ecu) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
            " ORDER BY vehicle_id, ecu FOR UPDATE",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        ).fetchall()
    }
    fold = fold_inventory(stored, reports)
    out.inventory_updated += len(fold.changed)
    if fold.history:
        conn.execute(
            "INSERT INTO software_history (vehicle_id, ecu, software_version, hardware_id, reported_at)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])"
            " ON CONFLICT DO NOTHING",
            tuple(list(column) for column in zip(*fold.history, strict=True)),
        )
    entries = sorted(fold.entries.items())
    if entries:
        conn.execute(
            "INSERT INTO vehicle_software (vehicle_id, ecu, software_version, hardware_id, reported_at)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])"
            " ON CONFLICT (vehicle_id, ecu) DO UPDATE"
            " SET software_version = excluded.software_version, reported_at = excluded.reported_at",
            (
                [k[0] for k, _ in entries], [k[1] for k, _ in entries], [e.version for _, e in entries],
                [e.hardware_id for _, e in entries], [e.reported_at for _, e in entries],
            ),
        )  # fmt: skip


_AUDIT_COLUMNS = (
    "at", "vehicle_id", "offer_id", "campaign_id", "remedy_id", "ecu", "target", "target_version",
    "target_sha256", "seq", "state", "reason", "before_version", "before_sha256", "after_version",
    "after_sha256", "report_id",
)  # fmt: skip
_AUDIT_TYPES = (
    "timestamptz", "text", "text", "bigint", "bigint", "text", "text", "text", "text", "integer", "text",
    "text", "text", "text", "text", "text", "bigint",
)  # fmt: skip


def _audit(
    conn: psycopg.Connection,
    applied: list[Outcome],
    offers: dict[str, _Offer],
    remedies: dict[tuple[int, str], int | None],
) -> None:
    """One register row per accepted report, in the order applied (a second one for a report adds
    nothing)."""
    rows: list[tuple[Any, ...]] = []
    for o in applied:
        r = o.report
        if r is None:
            continue
        offer = offers[r.offer_id]
        cid = offer.campaign_id
        remedy_id = None if cid is None else remedies.get((cid, r.vehicle_id))
        rows.append((
            o.at, r.vehicle_id, r.offer_id, cid, remedy_id, r.ecu, offer.target, r.target.version,
            r.target.sha256, r.seq, r.state, r.reason, r.before.version, r.before.sha256, r.after.version,
            r.after.sha256, o.report_id,
        ))  # fmt: skip
    if not rows:
        return
    arrays = ", ".join(f"%s::{t}[]" for t in _AUDIT_TYPES)
    columns = ", ".join(_AUDIT_COLUMNS)
    conn.execute(
        f"INSERT INTO ota_audit (event, {columns}) SELECT 'report', {columns}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS a({columns}, n) ORDER BY n"
        " ON CONFLICT (report_id) DO NOTHING",
        _columns(rows),
    )


def _write_verdicts(conn: psycopg.Connection, outcomes: Sequence[Outcome]) -> None:
    """Each report's verdict and, when accepted, that it is applied; each offer's newest accepted
    seq and state. Written last, so that the times are those of the chunk's commit."""
    conn.execute(
        "UPDATE update_reports r SET verdict = v.verdict,"
        " verified_at = CASE WHEN v.judged THEN clock_timestamp() ELSE r.verified_at END,"
        " applied_at = CASE WHEN v.verdict = 'accepted' THEN clock_timestamp() END"
        " FROM unnest(%s::bigint[], %s::text[], %s::boolean[]) AS v(id, verdict, judged)"
        " WHERE r.report_id = v.id",
        ([o.report_id for o in outcomes], [o.verdict for o in outcomes], [o.judged_now for o in outcomes]),
    )
    newest: dict[str, tuple[int, str]] = {}
    for o in outcomes:
        if o.judged_now and o.report is not None:
            newest[o.report.offer_id] = (o.report.seq, o.report.state)
    if newest:
        ids = sorted(newest)
        conn.execute(
            "UPDATE update_offers o SET last_seq = v.seq, state = v.state"
            " FROM unnest(%s::text[], %s::integer[], %s::text[]) AS v(id, seq, state)"
            " WHERE o.offer_id = v.id",
            (ids, [newest[i][0] for i in ids], [newest[i][1] for i in ids]),
        )


def _columns(rows: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    return tuple(list(column) for column in zip(*rows, strict=True))
