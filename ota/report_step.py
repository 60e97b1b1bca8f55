"""The report step: the vehicles' update reports, once verified, move their campaigns.

Owns `check_reports`: every report ingest stored and nobody judged yet is judged
(`ota.reports.verify_stored_report`: signature, nonce, replay) and, when accepted, in the same
transaction:
- moves the vehicle's campaign member (`ota.controller.record_report`), so waves advance, failed
  and rolled-back installs count toward the error threshold and the failure cap, and the health
  gate starts the soak at the commit;
- updates the vehicle's software inventory (`vehicle_software`, changes in `software_history`)
  from the report's `after`: the signed report is the truth about what runs, also after a
  rollback. An inventory entry reported later (a newer check-in) is left alone;
- adds the report to the audit register (`ota.audit`) and marks it applied (`applied_at`).
A report accepted without being applied (by `ota.reports.verify_pending`, `fleet ota
verify-reports`) is applied by the next step, in its offer's seq order.
One transaction per report, its row locked with SKIP LOCKED: two steps at once never judge or
record a report twice, and a replayed or refused report changes nothing but its verdict. The time
recorded is the vehicle's, never later than ingest's receipt (a clock ahead cannot stretch a soak).
Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from contract.timestamps import datetime_of_ns
from contract.update import UpdateReport, parse_update_report
from ota import audit
from ota.controller import record_report
from ota.reports import ACCEPTED, ReportRejected, verify_stored_report


@dataclass
class ReportStepReport:
    verdicts: dict[str, int] = field(default_factory=dict)  # verdict -> reports judged now
    recorded: int = 0  # accepted reports that moved a campaign member
    not_in_campaign: int = 0  # accepted reports of offers without a campaign, or of non-members
    inventory_updated: int = 0  # accepted reports that changed the vehicle's software inventory
    caught_up: int = 0  # reports accepted before (by `fleet ota verify-reports`) and applied now

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_reports(conn: psycopg.Connection, *, limit: int = 1000) -> ReportStepReport:
    """Judge and record up to `limit` reports not judged yet, each offer's in seq order; reports
    accepted before but not applied (judged by `ota.reports.verify_pending` alone) are applied in
    the same order."""
    out = ReportStepReport()
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT report_id FROM update_reports WHERE verdict IS NULL"
            " OR (verdict = 'accepted' AND applied_at IS NULL) ORDER BY offer_id, seq, report_id LIMIT %s",
            (limit,),
        ).fetchall()
    ]
    for report_id in ids:
        with conn.transaction():
            row = conn.execute(
                "SELECT verdict, applied_at, received_at, payload FROM update_reports WHERE report_id = %s"
                " FOR UPDATE SKIP LOCKED",
                (report_id,),
            ).fetchone()
            if row is None or row[1] is not None or row[0] not in (None, ACCEPTED):
                continue  # another step holds it, or it was judged and applied meanwhile
            if row[0] == ACCEPTED:
                report = parse_update_report(bytes(row[3]))  # it parsed when it was accepted
                out.caught_up += 1
            else:
                try:
                    report = verify_stored_report(conn, report_id)
                except ReportRejected as exc:
                    out.verdicts[exc.verdict] = out.verdicts.get(exc.verdict, 0) + 1
                    continue
                out.verdicts[ACCEPTED] = out.verdicts.get(ACCEPTED, 0) + 1
            _apply(conn, report_id, report, row[2], out)
    return out


def _apply(
    conn: psycopg.Connection,
    report_id: int,
    report: UpdateReport,
    received_at: dt.datetime,
    out: ReportStepReport,
) -> None:
    at = min(datetime_of_ns(report.ts_us * 1000), received_at)
    offer = conn.execute(
        "SELECT o.campaign_id, o.target, cv.remedy_id FROM update_offers o LEFT JOIN campaign_vehicles cv"
        " ON cv.campaign_id = o.campaign_id AND cv.vehicle_id = o.vehicle_id WHERE o.offer_id = %s",
        (report.offer_id,),
    ).fetchone()
    campaign_id, target_name, remedy_id = offer if offer is not None else (None, None, None)
    if campaign_id is not None and record_report(
        conn, campaign_id, report.vehicle_id, report.state, at, report.reason or ""
    ):
        out.recorded += 1
    else:
        out.not_in_campaign += 1
    if _update_inventory(conn, report, at):
        out.inventory_updated += 1
    audit.record_report(
        conn, report_id, report, at, campaign_id=campaign_id, remedy_id=remedy_id, target_name=target_name
    )
    conn.execute(
        "UPDATE update_reports SET applied_at = clock_timestamp() WHERE report_id = %s", (report_id,)
    )


def _update_inventory(conn: psycopg.Connection, report: UpdateReport, at: dt.datetime) -> bool:
    """Set the ECU's entry to the report's `after` version unless a later entry is stored; whether
    the version changed."""
    row = conn.execute(
        "SELECT software_version, hardware_id, reported_at FROM vehicle_software"
        " WHERE vehicle_id = %s AND ecu = %s FOR UPDATE",
        (report.vehicle_id, report.ecu),
    ).fetchone()
    if row is not None and row[2] > at:
        return False
    version, hardware_id = report.after.version, "" if row is None else row[1]
    changed = row is None or row[0] != version
    if changed:
        conn.execute(
            "INSERT INTO software_history (vehicle_id, ecu, software_version, hardware_id, reported_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (report.vehicle_id, report.ecu, version, hardware_id, at),
        )
    conn.execute(
        "INSERT INTO vehicle_software (vehicle_id, ecu, software_version, hardware_id, reported_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (vehicle_id, ecu) DO UPDATE"
        " SET software_version = excluded.software_version, reported_at = excluded.reported_at",
        (report.vehicle_id, report.ecu, version, hardware_id, at),
    )
    return changed
