"""The remedies' SQL: reading alarms, vehicles, centres and positions; writing remedies, bookings
and campaign memberships with their history. One function per statement group; no decisions
(those are `remedies.engine` and `remedies.visits`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from remedies.catalogue import VehicleFacts
from remedies.engine import AlarmChange, Decision
from remedies.visits import Centre, SlotChoice

PARKING_LOOKBACK = dt.timedelta(days=14)
PARKING_MAX_DWELL_S = 900.0  # one stationary sample stands for at most this long
STATIONARY_KMH = 1.0


def alarms_without_remedy(conn: psycopg.Connection, limit: int = 1000) -> list[AlarmChange]:
    """Active alarms that have no remedy yet, oldest first."""
    rows = conn.execute(
        "SELECT a.alarm_id, a.vehicle_id, a.fault, a.severity, a.raised_at, a.evidence FROM alarms a"
        " LEFT JOIN remedies r ON r.alarm_id = a.alarm_id"
        " WHERE r.alarm_id IS NULL AND a.cleared_at IS NULL ORDER BY a.raised_at, a.alarm_id LIMIT %s",
        (limit,),
    ).fetchall()
    return [AlarmChange(i, v, f, "raised", s, r, r, dict(e or {})) for i, v, f, s, r, e in rows]


def vehicle_facts(conn: psycopg.Connection, vehicle_id: str) -> VehicleFacts:
    row = conn.execute(
        "SELECT v.model_id, m.powertrain FROM vehicles v"
        " LEFT JOIN vehicle_models m ON m.model_id = v.model_id WHERE v.vehicle_id = %s",
        (vehicle_id,),
    ).fetchone()
    software = conn.execute(
        "SELECT ecu, software_version FROM vehicle_software WHERE vehicle_id = %s", (vehicle_id,)
    ).fetchall()
    model_id, powertrain = row if row else (None, None)
    return VehicleFacts(model_id, powertrain, {ecu: version for ecu, version in software})


def insert_remedy(conn: psycopg.Connection, change: AlarmChange, decision: Decision) -> int | None:
    """The new remedy's id, or None when the alarm already has one (another run decided)."""
    row = conn.execute(
        "INSERT INTO remedies (alarm_id, vehicle_id, fault, kind, status, details, rule, reason)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (alarm_id) DO NOTHING RETURNING remedy_id",
        (
            change.alarm_id, change.vehicle_id, change.fault, decision.kind, decision.status,
            Jsonb({**decision.details, "severity": change.severity}), decision.rule, decision.reason,
        ),
    ).fetchone()  # fmt: skip
    if row is None:
        return None
    log_remedy(conn, row[0], decision.status, decision.reason, details=decision.details)
    return int(row[0])


def log_remedy(
    conn: psycopg.Connection,
    remedy_id: int,
    status: str,
    reason: str,
    *,
    actor: str = "engine",
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO remedy_history (remedy_id, status, reason, actor, details) VALUES (%s, %s, %s, %s, %s)",
        (remedy_id, status, reason, actor, Jsonb(details or {})),
    )


def set_remedy(
    conn: psycopg.Connection,
    remedy_id: int,
    status: str,
    reason: str,
    *,
    details: dict[str, Any] | None = None,
    campaign_id: int | None = None,
    actor: str = "engine",
) -> None:
    conn.execute(
        "UPDATE remedies SET status = %s, reason = %s, details = coalesce(%s, details),"
        " campaign_id = coalesce(%s, campaign_id), updated_at = now() WHERE remedy_id = %s",
        (status, reason, None if details is None else Jsonb(details), campaign_id, remedy_id),
    )
    log_remedy(conn, remedy_id, status, reason, actor=actor, details=details)


def centres(conn: psycopg.Connection, skill: str) -> list[Centre]:
    rows = conn.execute(
        "SELECT service_centre_id, lat, lon, skills, capacity_per_day, opening_hours, time_zone"
        " FROM service_centres WHERE %s = ANY(skills) ORDER BY service_centre_id",
        (skill,),
    ).fetchall()
    return [Centre(c, la, lo, frozenset(sk), cap, dict(h or {}), tz) for c, la, lo, sk, cap, h, tz in rows]


def taken_slots(
    conn: psycopg.Connection, centre_ids: Sequence[str], since: dt.datetime
) -> dict[str, set[dt.datetime]]:
    rows = conn.execute(
        "SELECT service_centre_id, starts_at FROM bookings WHERE service_centre_id = ANY(%s)"
        " AND starts_at >= %s AND status IN ('booked', 'completed')",
        (list(centre_ids), since - dt.timedelta(days=1)),
    ).fetchall()
    taken: dict[str, set[dt.datetime]] = {}
    for centre_id, starts_at in rows:
        taken.setdefault(centre_id, set()).add(starts_at)
    return taken


def stationary_positions(conn: psycopg.Connection, vehicle_id: str) -> tuple[np.ndarray, ...]:
    """The vehicle's stationary samples of the last two weeks (by its own newest time): latitude,
    longitude and the time each stands for (s, capped)."""
    rows = conn.execute(
        "SELECT t.latitude_deg, t.longitude_deg, extract(epoch FROM t.ts) FROM telemetry t"
        " WHERE t.vehicle_id = %(v)s"
        " AND t.ts > (SELECT ts FROM vehicle_latest WHERE vehicle_id = %(v)s) - %(back)s"
        " AND t.speed_kmh < %(still)s AND t.latitude_deg IS NOT NULL ORDER BY t.ts",
        {"v": vehicle_id, "back": PARKING_LOOKBACK, "still": STATIONARY_KMH},
    ).fetchall()
    if not rows:
        empty = np.zeros(0)
        return empty, empty, empty
    arr = np.array(rows, dtype=np.float64)
    dwell = np.minimum(np.diff(arr[:, 2], append=arr[-1, 2] + 1.0), PARKING_MAX_DWELL_S)
    return arr[:, 0], arr[:, 1], dwell


def insert_booking(
    conn: psycopg.Connection,
    remedy_id: int,
    vehicle_id: str,
    skill: str,
    deadline: dt.datetime,
    choice: SlotChoice,
) -> int | None:
    """The booking's id, or None when the slot was taken meanwhile (the caller chooses again)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO bookings (remedy_id, vehicle_id, service_centre_id, skill, starts_at, ends_at,"
                " deadline, late, distance_km, status, reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'booked', %s) RETURNING booking_id",
                (
                    remedy_id, vehicle_id, choice.centre_id, skill, choice.starts_at, choice.ends_at,
                    deadline, choice.late, choice.distance_km, choice.reason,
                ),
            ).fetchone()  # fmt: skip
    except psycopg.errors.UniqueViolation:
        return None
    assert row is not None
    log_booking(conn, int(row[0]), "booked", choice.starts_at, choice.reason)
    return int(row[0])


def log_booking(
    conn: psycopg.Connection,
    booking_id: int,
    status: str,
    starts_at: dt.datetime,
    reason: str,
    actor: str = "engine",
) -> None:
    conn.execute(
        "INSERT INTO booking_history (booking_id, status, starts_at, reason, actor)"
        " VALUES (%s, %s, %s, %s, %s)",
        (booking_id, status, starts_at, reason, actor),
    )


def open_booking(conn: psycopg.Connection, remedy_id: int) -> tuple[int, dt.datetime] | None:
    row = conn.execute(
        "SELECT booking_id, starts_at FROM bookings WHERE remedy_id = %s AND status = 'booked'", (remedy_id,)
    ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def set_booking(
    conn: psycopg.Connection, booking_id: int, status: str, reason: str, actor: str = "engine"
) -> dt.datetime | None:
    """Moves an open booking to `status`; its start, or None when it was not open."""
    row = conn.execute(
        "UPDATE bookings SET status = %s, reason = %s, updated_at = now()"
        " WHERE booking_id = %s AND status = 'booked' RETURNING starts_at",
        (status, reason, booking_id),
    ).fetchone()
    if row is None:
        return None
    log_booking(conn, booking_id, status, row[0], reason, actor)
    return row[0]  # type: ignore[no-any-return]
