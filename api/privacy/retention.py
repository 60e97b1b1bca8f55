"""Retention per data class, beyond raw telemetry and its aggregates (which `fleet_maintain()` in
SQL drops by partition or chunk: `retention_raw`, `retention_hourly`, `retention_ledger`).

Each class has a `fleet_meta` key holding a PostgreSQL interval (migration 0024 sets the
defaults; change them with UPDATE fleet_meta) and one statement that removes what is older:

- dead letters, `retention_dead_letters` (30 days): whole rejected payloads (they may hold
  positions);
- notification texts, `retention_notification_texts` (365 days): the text an owner read
  (`message`); the row stays;
- hazard evidence, `retention_hazard_evidence` (365 days): single events and passes; the sites
  keep their counts;
- trips, `retention_trips` (2 years): per-trip driving scores.

Kept with no limit here: alarms, remedies, bookings (a vehicle's service history) and the OTA
audit register (UNECE R156: for the vehicle's life). `fleet maintain` runs `apply_retention`.
Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt

import psycopg

RULES: dict[str, tuple[str, str]] = {
    "dead_letters": ("retention_dead_letters", "DELETE FROM dead_letters WHERE received_at < {cutoff}"),
    "notification_texts": (
        "retention_notification_texts",
        "UPDATE notification_deliveries SET message = NULL WHERE message IS NOT NULL AND sent_at < {cutoff}",
    ),
    "hazard_events": ("retention_hazard_evidence", "DELETE FROM hazard_events WHERE ts < {cutoff}"),
    "hazard_passes": ("retention_hazard_evidence", "DELETE FROM hazard_passes WHERE ts < {cutoff}"),
    "trips": ("retention_trips", "DELETE FROM trips WHERE ended_at < {cutoff}"),
}


def apply_retention(conn: psycopg.Connection, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Remove what each class keeps too long, in one transaction; rows removed (or emptied) per
    class. A class whose key is missing is skipped (a database before migration 0024)."""
    removed: dict[str, int] = {}
    with conn.transaction():
        for name, (key, statement) in RULES.items():
            row = conn.execute("SELECT value FROM fleet_meta WHERE key = %s", (key,)).fetchone()
            if row is None:
                continue
            cutoff = "(%s::timestamptz - %s::interval)"
            removed[name] = conn.execute(
                statement.format(cutoff=cutoff), (now or dt.datetime.now(dt.UTC), row[0])
            ).rowcount
    return removed
