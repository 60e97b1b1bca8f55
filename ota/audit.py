"""The UNECE R156 audit register of every vehicle and update (table `ota_audit`, view
`ota_audit_register`, migration 0017; docs/ota.md §6).

Owns writing its rows, which happens in the transaction of what they record: `record_check` when
the campaign step checks a vehicle's compatibility (and offers the update, or not), `record_timeout`
when it finds that no report answered an offer in time (migration 0019), `record_report` when a
verified report is recorded. The table is append-only (a trigger refuses UPDATE, DELETE and
TRUNCATE). Owns reading the register (`register`): one entry per vehicle and update, with the
software before and after, the check, the result and the notices the owner got before and after
(the sent notifications of the member's remedy, read from `remedies.notifications`' tables by SQL).
Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from contract.update import UpdateOffer, UpdateReport
from ota.compatibility import Compatibility, TargetInfo


def record_check(
    conn: psycopg.Connection,
    *,
    vehicle_id: str,
    target: TargetInfo,
    check: Compatibility,
    before_version: str | None,
    at: dt.datetime,
    offer: UpdateOffer | None = None,
    campaign_id: int | None = None,
    remedy_id: int | None = None,
) -> None:
    """Record a compatibility check: `offered` with the offer made, `incompatible` without one."""
    conn.execute(
        "INSERT INTO ota_audit (at, event, vehicle_id, offer_id, campaign_id, remedy_id, ecu, target,"
        " target_version, target_sha256, target_hardware_ids, vehicle_hardware_id, compatible, compatibility,"
        " before_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            at, "offered" if offer is not None else "incompatible", vehicle_id,
            None if offer is None else offer.offer_id, campaign_id, remedy_id, target.ecu, target.name,
            target.version, target.sha256 or None, list(target.hardware_ids), check.hardware_id,
            check.compatible, check.detail, before_version,
        ),
    )  # fmt: skip


def record_report(
    conn: psycopg.Connection,
    report_id: int,
    report: UpdateReport,
    at: dt.datetime,
    *,
    campaign_id: int | None,
    remedy_id: int | None,
    target_name: str | None,
) -> None:
    """Record an accepted report (once per report: a second call for it adds nothing)."""
    conn.execute(
        "INSERT INTO ota_audit (at, event, vehicle_id, offer_id, campaign_id, remedy_id, ecu, target,"
        " target_version, target_sha256, seq, state, reason, before_version, before_sha256, after_version,"
        " after_sha256, report_id) VALUES (%s, 'report', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s) ON CONFLICT (report_id) DO NOTHING",
        (
            at, report.vehicle_id, report.offer_id, campaign_id, remedy_id, report.ecu, target_name,
            report.target.version, report.target.sha256, report.seq, report.state, report.reason,
            report.before.version, report.before.sha256, report.after.version, report.after.sha256, report_id,
        ),
    )  # fmt: skip


def record_timeout(
    conn: psycopg.Connection,
    *,
    vehicle_id: str,
    offer_id: str,
    campaign_id: int,
    remedy_id: int | None,
    ecu: str,
    target: str,
    target_version: str,
    at: dt.datetime,
    reason: str,
) -> None:
    """Record that an offer timed out: no report answered it in time (a late one still counts)."""
    conn.execute(
        "INSERT INTO ota_audit (at, event, vehicle_id, offer_id, campaign_id, remedy_id, ecu, target,"
        " target_version, reason) VALUES (%s, 'timed_out', %s, %s, %s, %s, %s, %s, %s, %s)",
        (at, vehicle_id, offer_id, campaign_id, remedy_id, ecu, target, target_version, reason),
    )


_REGISTER_COLUMNS = (
    "vehicle_id", "offer_id", "campaign_id", "remedy_id", "ecu", "target", "target_version", "target_sha256",
    "target_hardware_ids", "vehicle_hardware_id", "compatible", "compatibility", "checked_at", "published_at",
    "before_version", "before_sha256", "after_version", "after_sha256", "last_state", "last_report_at",
    "result", "result_at", "result_reason",
)  # fmt: skip


def register(
    conn: psycopg.Connection, *, vehicle_id: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """The register, newest check first (of one vehicle, or all): one entry per vehicle and update
    with `before` and `after` ({version, sha256}), the compatibility check and its result, the final
    `result` (committed, rolled_back, failed; in_progress; not_offered after a failed check) with its
    time, every accepted report (`reports`) and the notices (`notices_before`, `notices_after`:
    each notification of the member's remedy sent to the owner, by channel, before the result or at
    or after it)."""
    rows = conn.execute(
        f"SELECT {', '.join(_REGISTER_COLUMNS)} FROM ota_audit_register"
        " WHERE (%(v)s::text IS NULL OR vehicle_id = %(v)s) ORDER BY checked_at DESC, offer_id LIMIT %(n)s",
        {"v": vehicle_id, "n": limit},
    ).fetchall()
    found = [dict(zip(_REGISTER_COLUMNS, row, strict=True)) for row in rows]
    reports = _reports(conn, [r["offer_id"] for r in found if r["offer_id"]])
    notices = _notices(conn, [(r["vehicle_id"], r["remedy_id"]) for r in found if r["remedy_id"] is not None])
    entries = []
    for r in found:
        sent = notices.get((r["vehicle_id"], r["remedy_id"]), [])
        result_at = r["result_at"]
        entries.append(
            {
                "vehicle_id": r["vehicle_id"],
                "offer_id": r["offer_id"],
                "campaign_id": r["campaign_id"],
                "remedy_id": r["remedy_id"],
                "ecu": r["ecu"],
                "target": {"name": r["target"], "version": r["target_version"], "sha256": r["target_sha256"]},
                "compatibility": {
                    "checked_at": _iso(r["checked_at"]),
                    "ecu": r["ecu"],
                    "vehicle_hardware_id": r["vehicle_hardware_id"],
                    "target_hardware_ids": list(r["target_hardware_ids"] or []),
                    "compatible": r["compatible"],
                    "detail": r["compatibility"],
                },
                "published_at": _iso(r["published_at"]),
                "before": {"version": r["before_version"], "sha256": r["before_sha256"]},
                "after": {"version": r["after_version"], "sha256": r["after_sha256"]},
                "result": r["result"],
                "result_at": _iso(r["result_at"]),
                "result_reason": r["result_reason"],
                "reports": reports.get(r["offer_id"], []),
                "notices_before": [_notice(n) for n in sent if result_at is None or n[2] < result_at],
                "notices_after": [_notice(n) for n in sent if result_at is not None and n[2] >= result_at],
            }
        )
    return entries


_REPORT_KEYS = ("seq", "state", "reason", "at", "recorded_at", "before_version", "before_sha256",
                "after_version", "after_sha256", "report_id")  # fmt: skip


def _reports(conn: psycopg.Connection, offer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The accepted reports of each offer, in seq order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for offer_id, *row in conn.execute(
        f"SELECT offer_id, {', '.join(_REPORT_KEYS)} FROM ota_audit WHERE event = 'report'"
        " AND offer_id = ANY(%s) ORDER BY offer_id, seq, audit_id",
        (offer_ids,),
    ).fetchall():
        out.setdefault(offer_id, []).append({k: _iso(v) for k, v in zip(_REPORT_KEYS, row, strict=True)})
    return out


def _notices(
    conn: psycopg.Connection, keys: list[tuple[str, int]]
) -> dict[tuple[str, int], list[tuple[Any, ...]]]:
    """The sent deliveries of the notifications of each (vehicle, remedy), by time: (notification,
    channel, sent_at, remedy kind, subject)."""
    out: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
    if not keys:
        return out
    for vehicle_id, remedy_id, *notice in conn.execute(
        "SELECT n.vehicle_id, n.remedy_id, n.notification_id, d.channel, d.sent_at,"
        " n.facts->'remedy'->>'kind', d.message->>'subject' FROM notifications n"
        " JOIN notification_deliveries d ON d.notification_id = n.notification_id"
        " WHERE (n.vehicle_id, n.remedy_id) IN (SELECT * FROM unnest(%s::text[], %s::bigint[]))"
        " AND d.state = 'sent' ORDER BY d.sent_at, d.channel",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall():
        out.setdefault((vehicle_id, remedy_id), []).append(tuple(notice))
    return out


def _notice(n: tuple[Any, ...]) -> dict[str, Any]:
    notification_id, channel, sent_at, kind, subject = n
    return {
        "notification_id": notification_id,
        "channel": channel,
        "sent_at": _iso(sent_at),
        "remedy_kind": kind,
        "subject": subject,
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value
