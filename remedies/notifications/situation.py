"""What a delivery decision reads from the database: the owner's preferences (registry `owners`,
through the vehicle's current owner), when the owner's other notifications first went out (for the
rate limit), and the vehicle's movement (ingest's `vehicle_latest` and `telemetry`).

Owns these queries and turning their rows into `policy`'s inputs. Reads only; the decision is
`policy`'s, acting on it is `delivery`'s.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable

import psycopg

from remedies.notifications.policy import Channel, Motion, PolicyConfig, Preferences

log = logging.getLogger(__name__)

OWNER_SQL = (
    "SELECT v.owner_id, o.email, o.phone, o.consent_email, o.consent_sms, o.consent_in_car, o.time_zone,"
    " o.quiet_hours_start, o.quiet_hours_end, o.language"
    " FROM vehicles v LEFT JOIN owners o USING (owner_id) WHERE v.vehicle_id = %s"
)


def preferences_of(row: tuple | None, vehicle_id: str) -> tuple[Preferences | None, str]:
    """The owner's preferences and language from `OWNER_SQL`'s row (None: no owner)."""
    if row is None or row[0] is None:
        return None, "en"
    _, email, phone, consent_email, consent_sms, consent_in_car, zone, quiet_start, quiet_end, language = row
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # the registry refuses these; a hand edit
        log.warning("owner %s has an unknown time zone %r: quiet hours taken in UTC", row[0], zone)
        zone = "UTC"
    consent = {Channel.IN_CAR: consent_in_car, Channel.EMAIL: consent_email, Channel.WEBHOOK: consent_sms}
    addresses = {Channel.IN_CAR: vehicle_id, Channel.EMAIL: email or "", Channel.WEBHOOK: phone or ""}
    quiet = (quiet_start, quiet_end) if quiet_start is not None and quiet_end is not None else None
    prefs = Preferences(
        time_zone=zone,
        quiet_hours=quiet if quiet is None or quiet[0] != quiet[1] else None,
        consented=frozenset(c for c, ok in consent.items() if ok),
        addresses={c: a for c, a in addresses.items() if a},
    )
    return prefs, language or "en"


def recent_sends(
    conn: psycopg.Connection,
    owner_id: str | None,
    notification_id: int,
    now: dt.datetime,
    policy: PolicyConfig,
) -> tuple[dt.datetime, ...]:
    """When each other notification of the owner first went out, within the rate-limit window."""
    if owner_id is None:
        return ()
    rows = conn.execute(
        "SELECT min(sent_at) FROM notification_deliveries WHERE owner_id = %s AND state = 'sent'"
        " AND notification_id <> %s GROUP BY notification_id HAVING min(sent_at) > %s",
        (owner_id, notification_id, now - dt.timedelta(seconds=policy.window_s)),
    ).fetchall()
    return tuple(r[0] for r in rows)


def read_motion(
    conn: psycopg.Connection, vehicle_ids: Iterable[str], *, lookback_s: float, moving_kmh: float
) -> dict[str, Motion]:
    """Each vehicle's newest speed with its time (ingest's `vehicle_latest`) and its newest reading
    above `moving_kmh` within `lookback_s` before its newest data (`telemetry`). Vehicles without
    latest data are left out (their state is unknown)."""
    rows = conn.execute(
        "SELECT l.vehicle_id,"
        " CASE WHEN jsonb_typeof(l.signals -> 'Vehicle.Speed' -> 'value') = 'number'"
        "  THEN (l.signals -> 'Vehicle.Speed' ->> 'value')::float8 END,"
        " (l.signals -> 'Vehicle.Speed' ->> 'ts')::timestamptz,"
        " (SELECT max(t.ts) FROM telemetry t WHERE t.vehicle_id = l.vehicle_id"
        "  AND t.ts > l.ts - make_interval(secs => %s) AND t.speed_kmh > %s)"
        " FROM vehicle_latest l WHERE l.vehicle_id = ANY(%s)",
        (lookback_s, moving_kmh, list(vehicle_ids)),
    ).fetchall()
    return {v: Motion(speed, at, moving) for v, speed, at, moving in rows}
