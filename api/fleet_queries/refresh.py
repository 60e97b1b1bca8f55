"""Bringing the 10-minute aggregate up to date: every pending range (migration 0018) re-aggregated.

Owns: the refresh in both storage modes. Plain PostgreSQL: `fleet_refresh_10m()`, one transaction.
TimescaleDB: `refresh_continuous_aggregate` over the merged pending ranges (it cannot run in a
transaction, so the connection is switched to autocommit for it), then the pending rows read
before are deleted: rows that arrive meanwhile stay for the next refresh. Concurrent refreshes are
serialised by an advisory lock. Leaves deciding when to refresh to `api.fleet_queries.runner`.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from api.fleet_queries.definitions import merge_ranges

_LOCK_KEY = 7366214  # also taken by fleet_refresh_10m()


def storage_mode(conn: psycopg.Connection) -> str:
    """'timescale' or 'native'. Raises LookupError before the first migration, psycopg.Error."""
    row = conn.execute("SELECT value FROM fleet_meta WHERE key = 'storage_mode'").fetchone()
    if row is None:
        raise LookupError("database is not migrated: run `fleet migrate`")
    return str(row[0])


def refresh_pending(conn: psycopg.Connection) -> int:
    """Re-aggregate every pending range; returns how many pending rows were taken. Leaves the
    connection's autocommit as it found it, outside any transaction. Raises psycopg.Error."""
    if storage_mode(conn) == "native":
        with conn.transaction():
            row = conn.execute("SELECT fleet_refresh_10m()").fetchone()
        return int(row[0]) if row else 0
    return _refresh_timescale(conn)


def _refresh_timescale(conn: psycopg.Connection) -> int:
    was_autocommit = conn.autocommit
    if not was_autocommit:
        conn.commit()
        conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            pending = conn.execute("SELECT id, first_ts, last_ts FROM telemetry_10m_pending").fetchall()
            for lo, hi in merge_ranges((first, last) for _, first, last in pending):
                conn.execute(
                    sql.SQL("CALL refresh_continuous_aggregate('telemetry_10m', {}, {})").format(
                        sql.Literal(lo), sql.Literal(hi)
                    )
                )
            if pending:
                conn.execute(
                    "DELETE FROM telemetry_10m_pending WHERE id = ANY(%s)", ([row[0] for row in pending],)
                )
            return len(pending)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        if not was_autocommit and not conn.closed:
            conn.autocommit = False
