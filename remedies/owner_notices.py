"""Telling the owner about a remedy: the engine's run puts one notification per (vehicle, alarm,
remedy) into the outbox once the remedy is scheduled, and one more once an OTA patch has a result.

Owns choosing the remedies to tell about and the facts their message needs:
- a booked shop visit (remedy `scheduled` with an open booking that has not begun): the centre's
  name, the start and the workshop time (`remedies.notifications.facts.ShopVisit`), once per
  booking, so a visit that moves (rescheduled, rebooked after a no-show) is told again with its new
  time, and the old notice is withdrawn if it has not gone out (`policy`: `withdrawn`);
- a scheduled OTA patch (remedy `scheduled` in an approved or running campaign): the ECU, the
  version, the install time and whether the owner must consent (`OtaPatch`);
- after the update (UNECE R156's notice after): a patch whose vehicle reported `committed` or
  `rolled_back` in its campaign: the ECU, the version it runs now and when (`UpdateResult`; stage
  `update_installed` or `update_rolled_back`, so a rollback and a later install each get theirs).
Works from state, like the rest of the run: a remedy whose notification exists is skipped, and
`remedies.notifications.enqueue` is idempotent besides, so a rerun or two runs at once queue
nothing twice. Also moves the patches of campaigns a person approved since from `proposed` to
`scheduled`. Wording, consent, quiet hours and sending are `remedies.notifications`'.
Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import psycopg

from remedies import store
from remedies.notifications import OtaPatch, ShopVisit, UpdateResult, enqueue

log = logging.getLogger(__name__)

_DUE_SQL = (
    "SELECT r.remedy_id, r.alarm_id, r.vehicle_id, r.kind, r.details, b.starts_at, sc.name,"
    " c.consent_required, b.booking_id FROM remedies r"
    " LEFT JOIN bookings b ON b.remedy_id = r.remedy_id AND b.status = 'booked'"
    " LEFT JOIN service_centres sc ON sc.service_centre_id = b.service_centre_id"
    " LEFT JOIN campaigns c ON c.campaign_id = r.campaign_id"
    " WHERE r.status = 'scheduled' AND ("
    "  (r.kind = 'shop_visit' AND b.booking_id IS NOT NULL AND b.starts_at > %(now)s)"
    "  OR (r.kind = 'ota_patch' AND c.status IN ('approved', 'running')))"
    " AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.vehicle_id = r.vehicle_id"
    "  AND n.alarm_id = r.alarm_id AND n.remedy_id = r.remedy_id AND n.stage = 'remedy'"
    "  AND n.booking_id IS NOT DISTINCT FROM b.booking_id)"
    " ORDER BY r.remedy_id LIMIT %(limit)s"
)


def schedule_approved_patches(conn: psycopg.Connection) -> int:
    """Patches still `proposed` whose campaign is now approved or running become `scheduled`; how
    many."""
    rows = conn.execute(
        "SELECT r.remedy_id, c.campaign_id, c.status FROM remedies r JOIN campaigns c"
        " ON c.campaign_id = r.campaign_id WHERE r.kind = 'ota_patch' AND r.status = 'proposed'"
        " AND c.status IN ('approved', 'running')"
    ).fetchall()
    for remedy_id, campaign_id, status in rows:
        store.set_remedy(conn, remedy_id, "scheduled", f"campaign {campaign_id} is {status}")
    return len(rows)


def notify_scheduled(conn: psycopg.Connection, now: dt.datetime, *, limit: int = 1000) -> tuple[int, int]:
    """Queue the notification of every scheduled remedy that has none; (queued, refused). A
    notification the outbox refuses (facts it finds invalid) is logged and counted, and the run
    goes on."""
    queued = refused = 0
    for (
        remedy_id,
        alarm_id,
        vehicle_id,
        kind,
        details,
        starts_at,
        centre,
        consent,
        booking_id,
    ) in conn.execute(_DUE_SQL, {"now": now, "limit": limit}).fetchall():
        try:
            facts = {"remedy": _remedy_facts(kind, details, starts_at, centre, consent)}
            if enqueue(conn, vehicle_id, int(alarm_id), int(remedy_id), facts, booking_id=booking_id).created:
                queued += 1
        except (ValueError, KeyError, TypeError) as exc:
            refused += 1
            log.warning("remedy %s: no owner notification: %s", remedy_id, exc)
    return queued, refused


_RESULTS_SQL = (
    "SELECT r.remedy_id, r.alarm_id, r.vehicle_id, cv.state, c.ecu, c.to_version, c.from_version,"
    " coalesce(cv.committed_at, cv.updated_at), (SELECT vs.software_version FROM vehicle_software vs"
    "  WHERE vs.vehicle_id = r.vehicle_id AND vs.ecu = c.ecu)"
    " FROM remedies r JOIN campaign_vehicles cv"
    "  ON cv.remedy_id = r.remedy_id AND cv.vehicle_id = r.vehicle_id"
    " JOIN campaigns c ON c.campaign_id = cv.campaign_id"
    " WHERE r.kind = 'ota_patch' AND cv.state IN ('committed', 'rolled_back')"
    " AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.vehicle_id = r.vehicle_id"
    "  AND n.alarm_id = r.alarm_id AND n.remedy_id = r.remedy_id AND n.stage ="
    "  CASE cv.state WHEN 'committed' THEN 'update_installed' ELSE 'update_rolled_back' END)"
    " ORDER BY r.remedy_id LIMIT %(limit)s"
)


def notify_update_results(conn: psycopg.Connection, *, limit: int = 1000) -> tuple[int, int]:
    """Queue the notice after the update for every patch whose vehicle reported a result
    (committed: the version it was updated to; rolled back: the version it runs again, from its
    software inventory); (queued, refused), as `notify_scheduled`."""
    queued = refused = 0
    for remedy_id, alarm_id, vehicle_id, state, ecu, to_version, from_version, at, running in conn.execute(
        _RESULTS_SQL, {"limit": limit}
    ).fetchall():
        installed = state == "committed"
        version = to_version if installed else (running or from_version or "")
        try:
            result = UpdateResult(ecu=ecu, installed=installed, software_version=version, at=at)
            if enqueue(
                conn, vehicle_id, int(alarm_id), int(remedy_id), {"remedy": result.model_dump(mode="json")}
            ).created:
                queued += 1
        except (ValueError, KeyError, TypeError) as exc:
            refused += 1
            log.warning("remedy %s: no notice after the update: %s", remedy_id, exc)
    return queued, refused


def _remedy_facts(
    kind: str,
    details: dict[str, Any],
    starts_at: dt.datetime | None,
    centre: str | None,
    consent: bool | None,
) -> dict[str, Any]:
    duration_min = max(1, round(float(details["duration_min"])))
    if kind == "shop_visit":
        visit = ShopVisit(
            centre_name=centre or "the service centre", starts_at=starts_at, duration_min=duration_min
        )
        return visit.model_dump(mode="json")
    patch = OtaPatch(
        ecu=details["ecu"],
        software_version=details["to_version"],
        duration_min=duration_min,
        needs_consent=bool(consent),
    )
    return patch.model_dump(mode="json")
