"""The remedy engine's run: every active alarm without a remedy gets one, waiting patches look for
a cure, escalated alarms make their visits more urgent, cleared alarms resolve their remedies.

Works from state, not from a stream of changes, so it is idempotent and needs no watermark: a rerun
finds every alarm already handled (one remedy per alarm: a unique key) and changes nothing; two
runs at once cannot both decide an alarm. Shop visits are booked at once (`remedies.visits`); OTA
patches join the open campaign for their (ECU, from, to) versions, created `proposed` for an
operator to approve, or `approved` when the engine's policy approves campaigns itself. Rolling a
campaign out is the campaign controller's. Each scheduled remedy (a visit booked, a patch in an
approved campaign) queues its owner notification (`remedies.owner_notices`). Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from remedies import store
from remedies.catalogue import Catalogue
from remedies.engine import AlarmChange, decide, tightened
from remedies.owner_notices import notify_scheduled, notify_update_results, schedule_approved_patches
from remedies.visits import choose_slot, usual_parking_spot

BOOKING_ATTEMPTS = 5
MIN_NOTICE = dt.timedelta(hours=2)  # a visit is booked at least this far ahead


@dataclass
class RemedyReport:
    decided: int = 0
    visits_booked: int = 0
    visits_late: int = 0
    visits_unbookable: int = 0
    visits_moved: int = 0
    patches_proposed: int = 0
    patches_waiting: int = 0
    no_remedy: int = 0
    resolved: int = 0
    bookings_cancelled: int = 0
    campaigns_created: list[int] = field(default_factory=list)
    patches_scheduled: int = 0  # proposed patches whose campaign a person approved since
    notifications_queued: int = 0
    notifications_refused: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_remedies(
    conn: psycopg.Connection,
    catalogue: Catalogue,
    *,
    now: dt.datetime | None = None,
    auto_approve_campaigns: bool = False,
) -> RemedyReport:
    now = now or dt.datetime.now(dt.UTC)
    report = RemedyReport()
    for change in store.alarms_without_remedy(conn):
        with conn.transaction():
            _decide_one(conn, change, catalogue, now, auto_approve_campaigns, report)
    with conn.transaction():
        _release_waiting(conn, now, auto_approve_campaigns, report)
    with conn.transaction():
        _follow_escalations(conn, now, report)
    with conn.transaction():
        _resolve_cleared(conn, report)
    with conn.transaction():
        report.patches_scheduled += schedule_approved_patches(conn)
    report.notifications_queued, report.notifications_refused = notify_scheduled(conn, now)
    after_queued, after_refused = notify_update_results(conn)
    report.notifications_queued += after_queued
    report.notifications_refused += after_refused
    return report


def _decide_one(
    conn: psycopg.Connection,
    change: AlarmChange,
    catalogue: Catalogue,
    now: dt.datetime,
    auto_approve: bool,
    report: RemedyReport,
) -> None:
    decision = decide(change, store.vehicle_facts(conn, change.vehicle_id), catalogue, now)
    remedy_id = store.insert_remedy(conn, change, decision)
    if remedy_id is None:
        return
    report.decided += 1
    if decision.kind == "none":
        report.no_remedy += 1
    elif decision.kind == "shop_visit":
        book_visit(conn, remedy_id, change.vehicle_id, decision.details, now, report)
    elif decision.status == "waiting":
        report.patches_waiting += 1
    else:
        _join_campaign(conn, remedy_id, change.vehicle_id, decision.details, auto_approve, report)


def book_visit(
    conn: psycopg.Connection,
    remedy_id: int,
    vehicle_id: str,
    details: dict[str, Any],
    now: dt.datetime,
    report: RemedyReport,
    *,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Book the visit `details` describes at the best free slot (`remedies.visits.choose_slot`);
    the booking id, or None when no centre with the skill has a free slot."""
    skill, deadline = details["skill"], dt.datetime.fromisoformat(details["deadline"])
    candidates = store.centres(conn, skill)
    parked_at = usual_parking_spot(*store.stationary_positions(conn, vehicle_id))
    start = max(not_before or now, now + MIN_NOTICE)
    for _ in range(BOOKING_ATTEMPTS):
        taken = store.taken_slots(conn, [c.centre_id for c in candidates], start)
        choice = choose_slot(
            candidates, taken, skill=skill, duration_min=float(details["duration_min"]),
            not_before=start, deadline=deadline, parked_at=parked_at,
        )  # fmt: skip
        if choice is None:
            report.visits_unbookable += 1
            store.set_remedy(conn, remedy_id, "proposed", f"no service centre with {skill} has a free slot")
            return None
        booking_id = store.insert_booking(conn, remedy_id, vehicle_id, skill, deadline, choice)
        if booking_id is not None:
            report.visits_booked += 1
            report.visits_late += choice.late
            where = f"booked at {choice.centre_id} for {choice.starts_at.isoformat()}: {choice.reason}"
            store.set_remedy(conn, remedy_id, "scheduled", where)
            return booking_id
    report.visits_unbookable += 1
    return None


def _join_campaign(
    conn: psycopg.Connection,
    remedy_id: int,
    vehicle_id: str,
    details: dict[str, Any],
    auto_approve: bool,
    report: RemedyReport,
) -> None:
    ecu, old, new = details["ecu"], details.get("from_version"), details["to_version"]
    row = conn.execute(
        "SELECT campaign_id, status FROM campaigns WHERE ecu = %s"
        " AND coalesce(from_version, '') = coalesce(%s, '') AND to_version = %s"
        " AND status NOT IN ('finished', 'cancelled')",
        (ecu, old, new),
    ).fetchone()
    if row is None:
        status = "approved" if auto_approve else "proposed"
        row = conn.execute(
            "INSERT INTO campaigns (name, ecu, from_version, to_version, target_filter, status, approved_by,"
            " approved_at, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING campaign_id, status",
            (
                f"{ecu} {old or 'any'} -> {new}", ecu, old, new,
                Jsonb({"ecu": ecu, "software_version": old, "active_alarm": "firmware_bug"}),
                status, "engine policy" if auto_approve else None,
                dt.datetime.now(dt.UTC) if auto_approve else None,
                f"vehicles on {ecu} {old} have a fault that {new} cures",
            ),
        ).fetchone()  # fmt: skip
        assert row is not None
        conn.execute(
            "INSERT INTO campaign_history (campaign_id, status, reason) VALUES (%s, %s, %s)",
            (
                row[0],
                row[1],
                "created by the remedy engine" + (" and approved by its policy" if auto_approve else ""),
            ),
        )
        report.campaigns_created.append(int(row[0]))
    campaign_id, status = int(row[0]), row[1]
    conn.execute(
        "INSERT INTO campaign_vehicles (campaign_id, vehicle_id, remedy_id) VALUES (%s, %s, %s)"
        " ON CONFLICT (campaign_id, vehicle_id) DO NOTHING",
        (campaign_id, vehicle_id, remedy_id),
    )
    report.patches_proposed += 1
    state = "scheduled" if status in ("approved", "running") else "proposed"
    why = f"in campaign {campaign_id} ({ecu} {old or 'any'} -> {new}, {status})"
    store.set_remedy(conn, remedy_id, state, why, campaign_id=campaign_id)


def _release_waiting(
    conn: psycopg.Connection, now: dt.datetime, auto_approve: bool, report: RemedyReport
) -> None:
    """Waiting patches whose faulty version now has a cure join a campaign."""
    rows = conn.execute(
        "SELECT r.remedy_id, r.vehicle_id, r.details, i.cure_version FROM remedies r"
        " JOIN software_issues i ON i.ecu = r.details->>'ecu'"
        " AND i.software_version = r.details->>'from_version'"
        " AND (r.details->>'code' IS NULL OR i.code = r.details->>'code')"
        " WHERE r.kind = 'ota_patch' AND r.status = 'waiting' AND i.cure_version IS NOT NULL"
    ).fetchall()
    for remedy_id, vehicle_id, details, cure in rows:
        details = {**details, "to_version": cure}
        store.set_remedy(conn, remedy_id, "proposed", f"{details['ecu']} {cure} cures it", details=details)
        _join_campaign(conn, remedy_id, vehicle_id, details, auto_approve, report)


def _follow_escalations(conn: psycopg.Connection, now: dt.datetime, report: RemedyReport) -> None:
    """Open visits whose alarm is now more severe: a tighter deadline, and an earlier slot when the
    booked one is after it."""
    rows = conn.execute(
        "SELECT r.remedy_id, r.vehicle_id, r.details, a.severity, a.raised_at FROM remedies r"
        " JOIN alarms a ON a.alarm_id = r.alarm_id WHERE r.kind = 'shop_visit'"
        " AND r.status IN ('proposed', 'scheduled') AND a.cleared_at IS NULL"
        " AND a.severity <> r.details->>'severity'"
    ).fetchall()
    for remedy_id, vehicle_id, details, severity, raised_at in rows:
        new = {**tightened(details, severity, raised_at, now), "severity": severity}
        if new["urgency"] == details["urgency"]:
            state = "scheduled" if store.open_booking(conn, remedy_id) else "proposed"
            why = f"alarm now {severity}; urgency stays {details['urgency']}"
            store.set_remedy(conn, remedy_id, state, why, details=new)
            continue
        booking = store.open_booking(conn, remedy_id)
        deadline = dt.datetime.fromisoformat(new["deadline"])
        store.set_remedy(
            conn, remedy_id, "proposed", f"alarm escalated to {severity}: {new['urgency']}", details=new
        )
        if booking is not None and booking[1] <= deadline:
            store.set_remedy(
                conn, remedy_id, "scheduled", "the booked visit is before the new deadline", details=new
            )
            continue
        if booking is not None:
            store.set_booking(
                conn, booking[0], "cancelled", f"moved earlier: the alarm escalated to {severity}"
            )
        if book_visit(conn, remedy_id, vehicle_id, new, now, report) is not None:
            report.visits_moved += booking is not None


def _resolve_cleared(conn: psycopg.Connection, report: RemedyReport) -> None:
    """Open remedies of cleared alarms are resolved; their visits not yet begun are cancelled, and
    their vehicles leave campaigns that have not reached them. An alarm a person resolved is
    cleared too (at the resolve), and its remedy's reason names who resolved it."""
    rows = conn.execute(
        "SELECT r.remedy_id, r.kind, a.cleared_at, a.resolved_by FROM remedies r"
        " JOIN alarms a ON a.alarm_id = r.alarm_id"
        " WHERE a.cleared_at IS NOT NULL AND r.status IN ('waiting', 'proposed', 'scheduled', 'in_progress')"
    ).fetchall()
    for remedy_id, kind, cleared_at, resolved_by in rows:
        booking = store.open_booking(conn, remedy_id)
        if booking is not None and booking[1] > cleared_at:
            store.set_booking(conn, booking[0], "cancelled", "the fault cleared before the visit")
            report.bookings_cancelled += 1
        if kind == "ota_patch":
            conn.execute(
                "UPDATE campaign_vehicles SET state = 'excluded', updated_at = now()"
                " WHERE remedy_id = %s AND state = 'pending'",
                (remedy_id,),
            )
        why = f"resolved by {resolved_by}, the alarm cleared" if resolved_by else "the alarm cleared"
        store.set_remedy(conn, remedy_id, "resolved", f"{why} at {cleared_at.isoformat()}")
        report.resolved += 1
