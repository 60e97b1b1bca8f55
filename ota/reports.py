"""Verifying the vehicles' update reports: signature, nonce, and no replay.

Owns: the verdict on a stored report (`judge`, pure) and the shell that reads a report ingest
stored, judges it against its offer and the vehicle's key, and records the verdict
(`verify_stored_report`, `verify_pending`). Only an `accepted` report may be taken as the truth
about what a vehicle runs; the campaign controller reads those. Leaves storing the reports to
ingest (which checks their shape only) and the keys to `ota.vehicle_keys`.

A report is accepted when, in this order:
1. it names an offer we sent (`unknown_offer`) to this vehicle (`wrong_vehicle`);
2. it is signed by the vehicle's active key (`unknown_key`, `bad_signature`);
3. it carries that offer's nonce (`nonce_mismatch`) and ECU (`wrong_ecu`);
4. it is not older than the offer (`stale`: vehicle time before the offer's issue time, less
   CLOCK_SKEW_US);
5. its seq is above the last accepted one of the offer (`replay`): each (nonce, seq) counts once.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.errors import DecodeError
from contract.timestamps import UNIX_EPOCH
from contract.update import UpdateReport, parse_update_report
from ota.vehicle_keys import active_keys

CLOCK_SKEW_US = 300 * 1_000_000  # a vehicle's clock may be this far behind the server's
ACCEPTED = "accepted"
VERDICTS = (
    ACCEPTED,
    "unknown_offer",
    "wrong_vehicle",
    "unknown_key",
    "bad_signature",
    "nonce_mismatch",
    "wrong_ecu",
    "stale",
    "replay",
    "malformed",
)


class ReportRejected(Exception):
    """The report is not to be believed; `verdict` says why (one of VERDICTS but `accepted`)."""

    def __init__(self, report_id: int, verdict: str) -> None:
        super().__init__(f"update report {report_id} refused: {verdict}")
        self.report_id = report_id
        self.verdict = verdict


@dataclass(frozen=True)
class OfferRecord:
    """What a report is checked against: the offer as recorded, and its newest accepted seq."""

    offer_id: str
    vehicle_id: str
    nonce: str
    ecu: str
    issued_at_us: int
    last_seq: int = 0


def signature_valid(public_key: bytes, signature: bytes, signed_bytes: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `signed_bytes` by `public_key` (raw)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, signed_bytes)
    except (InvalidSignature, ValueError):
        return False
    return True


def judge(report: UpdateReport, offer: OfferRecord | None, keys: Mapping[str, bytes]) -> str:
    """The verdict on one report (module docstring): `accepted` or why not. Pure."""
    if offer is None or offer.offer_id != report.offer_id:
        return "unknown_offer"
    if offer.vehicle_id != report.vehicle_id:
        return "wrong_vehicle"
    public_key = keys.get(report.key_id)
    if public_key is None:
        return "unknown_key"
    if not signature_valid(public_key, report.signature, report.signed_bytes):
        return "bad_signature"
    if not hmac.compare_digest(offer.nonce.encode(), report.nonce.encode()):
        return "nonce_mismatch"
    if offer.ecu != report.ecu:
        return "wrong_ecu"
    if report.ts_us < offer.issued_at_us - CLOCK_SKEW_US:
        return "stale"
    if report.seq <= offer.last_seq:
        return "replay"
    return ACCEPTED


def verify_stored_report(conn: psycopg.Connection, report_id: int) -> UpdateReport:
    """Judge the stored report `report_id` once and record the verdict; an accepted report moves
    its offer's `last_seq` and `state`. A report judged before keeps its verdict. Returns the
    report when accepted. Raises ReportRejected with the verdict otherwise, LookupError for an
    unknown report id, psycopg.Error from the database."""
    with conn.transaction():
        row = conn.execute(
            "SELECT vehicle_id, offer_id, payload, verdict FROM update_reports"
            " WHERE report_id = %s FOR UPDATE",
            (report_id,),
        ).fetchone()
        if row is None:
            raise LookupError(f"no update report {report_id}")
        vehicle_id, offer_id, payload, verdict = row
        report: UpdateReport | None
        try:
            report = parse_update_report(bytes(payload))
        except DecodeError:
            report = None
        if verdict is None:
            verdict = _judge_stored(conn, report, vehicle_id, offer_id)
            conn.execute(
                "UPDATE update_reports SET verdict = %s, verified_at = now() WHERE report_id = %s",
                (verdict, report_id),
            )
            if verdict == ACCEPTED and report is not None:
                conn.execute(
                    "UPDATE update_offers SET last_seq = %s, state = %s WHERE offer_id = %s",
                    (report.seq, report.state, offer_id),
                )
    if verdict != ACCEPTED or report is None:
        raise ReportRejected(report_id, verdict)
    return report


def _judge_stored(
    conn: psycopg.Connection, report: UpdateReport | None, vehicle_id: str, offer_id: str
) -> str:
    if report is None or report.vehicle_id != vehicle_id:
        return "malformed"
    row = conn.execute(
        "SELECT offer_id, vehicle_id, nonce, ecu, issued_at, last_seq FROM update_offers"
        " WHERE offer_id = %s FOR UPDATE",
        (offer_id,),
    ).fetchone()
    offer = None
    if row is not None:
        issued: dt.datetime = row[4]
        issued_us = (issued - UNIX_EPOCH) // dt.timedelta(microseconds=1)
        offer = OfferRecord(row[0], row[1], row[2], row[3], issued_us, row[5])
    return judge(report, offer, active_keys(conn, vehicle_id))


def verify_pending(conn: psycopg.Connection, limit: int = 1000) -> dict[str, int]:
    """Judge up to `limit` reports not judged yet, each offer's in seq order; the count of each
    verdict. Raises psycopg.Error from the database."""
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT report_id FROM update_reports WHERE verdict IS NULL"
            " ORDER BY offer_id, seq, report_id LIMIT %s",
            (limit,),
        ).fetchall()
    ]
    counts: dict[str, int] = {}
    for report_id in ids:
        try:
            verify_stored_report(conn, report_id)
            verdict = ACCEPTED
        except ReportRejected as exc:
            verdict = exc.verdict
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts
