"""An owner's erasure request (GDPR art. 17): their personal data and their vehicles' raw
trajectories go, while the aggregated hazard evidence stays, made anonymous.

One transaction (all or nothing), in this order:
1. the owner's row is locked; their vehicles are the ones whose `owner_id` is theirs;
2. hazard evidence: each vehicle's event and visit pseudonyms are replaced by random ones
   (`analytics.hazard_store.unlink_vehicle`), so the map keeps its counts and nothing computed from
   the vehicle id finds its events again;
3. trajectories: every position column of the signal catalogue (`Vehicle.CurrentLocation.*`) is
   set to NULL in the vehicles' raw telemetry, and the positions leave their last-known state and
   the 10-minute aggregate (TimescaleDB: its refresh policy recomputes the invalidated buckets);
4. their dead letters (whole payloads, which may hold positions) are deleted;
5. the notifications' texts the owner read are erased (`message` NULL), and the owner's row is
   deleted (its contact data, consents and quiet hours; the foreign keys set the links to NULL,
   so notification rows keep only their vehicle, kind and times);
6. the request is recorded in `erasures` with a SHA-256 of the owner id (not the id), who asked,
   why, and what was done.
What stays, and why: the vehicles (they may be resold and keep their service history), alarms,
remedies, bookings and trips (no positions; no longer linked to a person), and the OTA audit
register (UNECE R156 requires it for the vehicle's life; it holds no owner data).
Raises LookupError for an unknown owner, psycopg.Error.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from analytics import hazard_store
from contract.signals import SIGNALS

POSITION_PREFIX = "Vehicle.CurrentLocation."
POSITION_COLUMNS = tuple(s.column for s in SIGNALS if s.vss_path.startswith(POSITION_PREFIX))


@dataclass
class ErasureReport:
    erasure_id: int = 0
    vehicles: int = 0
    telemetry_rows: int = 0
    latest_states: int = 0
    aggregate_rows: int = 0
    dead_letters: int = 0
    notification_texts: int = 0
    hazard_events_unlinked: int = 0
    hazard_passes_unlinked: int = 0


def owner_ref(owner_id: str) -> str:
    """What the erasure record keeps of the owner: a digest, so a later audit can check that an
    erasure was done for a given id without the record naming anyone."""
    return hashlib.sha256(owner_id.encode()).hexdigest()


def erase_owner(conn: psycopg.Connection, owner_id: str, *, by: str, reason: str) -> ErasureReport:
    """Carry out the erasure (module docstring). Commits, unless the caller has a transaction open."""
    report = ErasureReport()
    with conn.transaction():
        if (
            conn.execute("SELECT 1 FROM owners WHERE owner_id = %s FOR UPDATE", (owner_id,)).fetchone()
            is None
        ):
            raise LookupError(f"no owner {owner_id!r}")
        vehicles = [r[0] for r in conn.execute(
            "SELECT vehicle_id FROM vehicles WHERE owner_id = %s ORDER BY vehicle_id", (owner_id,)
        ).fetchall()]  # fmt: skip
        report.vehicles = len(vehicles)
        key = hazard_store.secret(conn)
        for vehicle_id in vehicles:
            events, passes = hazard_store.unlink_vehicle(conn, key, vehicle_id)
            report.hazard_events_unlinked += events
            report.hazard_passes_unlinked += passes
        _erase_trajectories(conn, vehicles, report)
        report.dead_letters = conn.execute(
            "DELETE FROM dead_letters WHERE vehicle_id = ANY(%s)", (vehicles,)
        ).rowcount
        report.notification_texts = conn.execute(
            "UPDATE notification_deliveries SET message = NULL, updated_at = now()"
            " WHERE message IS NOT NULL AND (owner_id = %s OR notification_id IN"
            " (SELECT notification_id FROM notifications WHERE vehicle_id = ANY(%s)))",
            (owner_id, vehicles),
        ).rowcount
        conn.execute("DELETE FROM owners WHERE owner_id = %s", (owner_id,))
        row = conn.execute(
            "INSERT INTO erasures (owner_ref, requested_by, reason, report) VALUES (%s, %s, %s, %s)"
            " RETURNING erasure_id",
            (
                owner_ref(owner_id),
                by,
                reason,
                Jsonb({k: v for k, v in asdict(report).items() if k != "erasure_id"}),
            ),
        ).fetchone()
        assert row is not None
        report.erasure_id = int(row[0])
    return report


def _erase_trajectories(conn: psycopg.Connection, vehicles: list[str], report: ErasureReport) -> None:
    any_position = sql.SQL(" OR ").join(
        sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in POSITION_COLUMNS
    )
    cleared = sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in POSITION_COLUMNS)
    report.telemetry_rows = conn.execute(
        sql.SQL("UPDATE telemetry SET {} WHERE vehicle_id = ANY(%s) AND ({})").format(cleared, any_position),
        (vehicles,),
    ).rowcount
    report.latest_states = conn.execute(
        "UPDATE vehicle_latest SET signals = (SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)"
        " FROM jsonb_each(signals) AS e(k, v) WHERE k NOT LIKE %s)"
        " WHERE vehicle_id = ANY(%s) AND EXISTS (SELECT 1 FROM jsonb_object_keys(signals) k WHERE k LIKE %s)",
        (POSITION_PREFIX + "%", vehicles, POSITION_PREFIX + "%"),
    ).rowcount
    mode = conn.execute("SELECT value FROM fleet_meta WHERE key = 'storage_mode'").fetchone()
    if mode is not None and mode[0] == "native":  # TimescaleDB: the aggregate's invalidation does it
        report.aggregate_rows = conn.execute(
            "UPDATE telemetry_10m SET latitude_deg = NULL, longitude_deg = NULL, latitude_ts = NULL,"
            " longitude_ts = NULL WHERE vehicle_id = ANY(%s) AND (latitude_deg IS NOT NULL"
            " OR longitude_deg IS NOT NULL)",
            (vehicles,),
        ).rowcount
