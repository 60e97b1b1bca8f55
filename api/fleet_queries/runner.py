"""Running a fleet query: scope check, refresh of what late data made stale, the statement, rows.

Owns: the order of those steps, shared by `fleet query` and the API routes. The scope is a list of
fleets the caller may query (None: all, for admins and the CLI); a fleet out of scope and one that
does not exist both give UnknownFleet, so the two cannot be told apart.

Exactness: before reading, any pending range (late or new data not yet aggregated) of the fleet's
vehicles that the window touches triggers a refresh of all pending ranges, so the answer counts
every row committed before the query started. Leaves the SQL to `api.fleet_queries.sql`.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg.rows import class_row

from api.fleet_queries import sql as statements
from api.fleet_queries.definitions import DEFAULT_DAYS, FleetQuery, window_of
from api.fleet_queries.records import ROW_OF, FleetAnswer
from api.fleet_queries.refresh import refresh_pending


class UnknownFleet(LookupError):
    """No such fleet in the registry, or not one the caller may query."""

    def __init__(self, fleet_id: str) -> None:
        super().__init__(f"fleet {fleet_id!r} not found")
        self.fleet_id = fleet_id


def run_query(
    conn: psycopg.Connection,
    query: FleetQuery,
    fleet_id: str,
    *,
    until: dt.datetime | None = None,
    days: int = DEFAULT_DAYS,
    only_fleet_ids: list[str] | None = None,
    refresh: bool = True,
) -> FleetAnswer:
    """Answer `query` for `fleet_id` as of `until` (default: the database's now). `only_fleet_ids`
    scopes the caller (None: every fleet). With `refresh` false, stale buckets are answered as
    they are (the answer's `refreshed` is then -1 if any were pending).

    Raises UnknownFleet, InvalidUntil or ValueError (bad `days`), psycopg.Error."""
    if until is None:
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        until = row[0]
    window = window_of(query, until, days=days)
    text, params = statements.fleet_exists(fleet_id, only_fleet_ids)
    if conn.execute(text, params).fetchone() is None:
        raise UnknownFleet(fleet_id)
    refreshed = 0
    text, params = statements.pending_overlaps(fleet_id, window)
    if conn.execute(text, params).fetchone() is not None:
        refreshed = refresh_pending(conn) if refresh else -1
    text, params = statements.build(query, fleet_id, window, only_fleet_ids)
    with conn.cursor(row_factory=class_row(ROW_OF[query])) as cur:
        rows = tuple(cur.execute(text, params).fetchall())
    if not conn.autocommit:
        conn.commit()
    return FleetAnswer(query, fleet_id, window, refreshed, rows)
