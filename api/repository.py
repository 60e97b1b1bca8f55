"""Every SQL statement the API runs, as functions over a psycopg connection.

Owns: queries and the plain records they return (table-shaped, not API-shaped). Visibility
scoping is applied here, in SQL, so no route can forget it. Leaves response shapes to
`api.schemas` and who may see what to `api.auth`. All functions raise psycopg.Error on failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import class_row

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class VehicleRecord:
    vehicle_id: str
    registered_at: datetime
    last_seen_at: datetime | None
    vin: str | None
    model_id: str | None
    fleet_id: str | None
    service_centre_id: str | None


@dataclass(frozen=True, slots=True)
class LatestRecord:
    """`ts` is None and `signals` empty when the vehicle exists but has sent nothing yet.
    `signals` maps VSS path -> {"value": float, "ts": ISO 8601 string}."""

    vehicle_id: str
    ts: datetime | None
    signals: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DtcRecord:
    """One DTC report: the vehicle's whole set of stored codes at `ts` (empty = cleared)."""

    ts: datetime
    codes: list[str]
    agent_version: str
    software: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """`state` is None when the vehicle exists but never sent a status message."""

    vehicle_id: str
    state: str | None
    reported_at: datetime | None
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    role: str
    service_centre_id: str | None
    fleet_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What an operator may see of a token: never its hash."""

    name: str
    role: str
    service_centre_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    fleet_ids: list[str] | None = None


def _scope(only_centre_id: str | None) -> tuple[sql.Composable, dict[str, Any]]:
    """None means every vehicle (including unassigned ones); otherwise exactly that centre's."""
    if only_centre_id is None:
        return sql.SQL("TRUE"), {}
    return sql.SQL("v.service_centre_id = %(centre)s"), {"centre": only_centre_id}


def list_vehicles(
    conn: psycopg.Connection, *, only_centre_id: str | None, after: str | None, limit: int
) -> list[VehicleRecord]:
    """Up to `limit` visible vehicles by id, those after `after` (a keyset page; ask for one more
    than a page to learn whether another follows)."""
    where, params = _scope(only_centre_id)
    query = sql.SQL(
        "SELECT v.vehicle_id, v.registered_at, v.last_seen_at, v.vin, v.model_id, v.fleet_id,"
        " v.service_centre_id FROM vehicles v"
        " WHERE {} AND (%(after)s::text IS NULL OR v.vehicle_id > %(after)s)"
        " ORDER BY v.vehicle_id LIMIT %(limit)s"
    ).format(where)
    with conn.cursor(row_factory=class_row(VehicleRecord)) as cur:
        return cur.execute(query, {**params, "after": after, "limit": limit}).fetchall()


def find_latest(
    conn: psycopg.Connection, vehicle_id: str, *, only_centre_id: str | None
) -> LatestRecord | None:
    """The latest state of a visible vehicle; None if it does not exist or is not visible."""
    return _visible_vehicle_row(
        conn,
        vehicle_id,
        only_centre_id,
        "v.vehicle_id, l.ts, coalesce(l.signals, '{{}}'::jsonb) AS signals",
        "LEFT JOIN vehicle_latest l USING (vehicle_id)",
        LatestRecord,
    )


def find_status(
    conn: psycopg.Connection, vehicle_id: str, *, only_centre_id: str | None
) -> StatusRecord | None:
    """A visible vehicle's newest status; None if it does not exist or is not visible."""
    return _visible_vehicle_row(
        conn,
        vehicle_id,
        only_centre_id,
        "v.vehicle_id, s.state, s.reported_at, coalesce(s.details, '{{}}'::jsonb) AS details",
        "LEFT JOIN vehicle_status s USING (vehicle_id)",
        StatusRecord,
    )


def find_dtc_reports(
    conn: psycopg.Connection,
    vehicle_id: str,
    *,
    only_centre_id: str | None,
    since: datetime | None,
    limit: int,
) -> list[DtcRecord] | None:
    """A visible vehicle's DTC reports, newest first; None if it does not exist or is not visible."""
    if _visible_vehicle_row(conn, vehicle_id, only_centre_id, "v.vehicle_id", "", _VehicleId) is None:
        return None
    with conn.cursor(row_factory=class_row(DtcRecord)) as cur:
        return cur.execute(
            "SELECT ts, codes, agent_version, software FROM dtc_reports WHERE vehicle_id = %(vehicle_id)s "
            "AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s) ORDER BY ts DESC LIMIT %(limit)s",
            {"vehicle_id": vehicle_id, "since": since, "limit": limit},
        ).fetchall()


@dataclass(frozen=True, slots=True)
class SoftwareRecord:
    """One ECU's software as the vehicle last reported it."""

    ecu: str
    software_version: str
    hardware_id: str
    reported_at: datetime


def find_software(
    conn: psycopg.Connection, vehicle_id: str, *, only_centre_id: str | None
) -> list[SoftwareRecord] | None:
    """A visible vehicle's software inventory by ECU; None if it does not exist or is not visible."""
    if _visible_vehicle_row(conn, vehicle_id, only_centre_id, "v.vehicle_id", "", _VehicleId) is None:
        return None
    with conn.cursor(row_factory=class_row(SoftwareRecord)) as cur:
        return cur.execute(
            "SELECT ecu, software_version, hardware_id, reported_at FROM vehicle_software "
            "WHERE vehicle_id = %s ORDER BY ecu",
            (vehicle_id,),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class _VehicleId:
    vehicle_id: str


def _visible_vehicle_row(
    conn: psycopg.Connection,
    vehicle_id: str,
    only_centre_id: str | None,
    columns: LiteralString,
    join: LiteralString,
    record: type[R],
) -> R | None:
    """One row about a vehicle the caller may see (`vehicles v` joined with `join`), or None. The
    scope is applied here, so every per-vehicle route gets the same 404 for hidden and missing."""
    where, params = _scope(only_centre_id)
    query = sql.SQL(f"SELECT {columns} FROM vehicles v {join} WHERE v.vehicle_id = %(vehicle_id)s AND {{}}")
    with conn.cursor(row_factory=class_row(record)) as cur:
        return cur.execute(query.format(where), {**params, "vehicle_id": vehicle_id}).fetchone()


def read_storage_mode(conn: psycopg.Connection) -> str | None:
    """The storage mode recorded by the migrations; None if the database is not migrated yet."""
    if conn.execute("SELECT to_regclass('fleet_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM fleet_meta WHERE key = 'storage_mode'").fetchone()
    return str(row[0]) if row else None


ACTIVE_NAME_INDEX = "api_tokens_active_name_key"  # migration 0008: one active token per name


def service_centre_exists(conn: psycopg.Connection, service_centre_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM service_centres WHERE service_centre_id = %s", (service_centre_id,))
    return row.fetchone() is not None


def fleet_exists(conn: psycopg.Connection, fleet_id: str) -> bool:
    return conn.execute("SELECT 1 FROM fleets WHERE fleet_id = %s", (fleet_id,)).fetchone() is not None


def insert_token(
    conn: psycopg.Connection,
    token_sha256: bytes,
    name: str,
    role: str,
    service_centre_id: str | None,
    fleet_ids: list[str] | None = None,
) -> None:
    """Raises psycopg.errors.UniqueViolation (constraint ACTIVE_NAME_INDEX) if an active token
    already has this name."""
    conn.execute(
        "INSERT INTO api_tokens (token_sha256, name, role, service_centre_id, fleet_ids)"
        " VALUES (%s, %s, %s, %s, %s)",
        (token_sha256, name, role, service_centre_id, fleet_ids),
    )


def revoke_tokens(conn: psycopg.Connection, name: str) -> int:
    """Revoke the active token called `name` (at most one: migration 0008); returns how many."""
    cur = conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,)
    )
    return cur.rowcount


def last_revoked_at(conn: psycopg.Connection, name: str) -> datetime | None:
    """When the newest revoked token called `name` was revoked; None if no token had that name."""
    row = conn.execute("SELECT max(revoked_at) FROM api_tokens WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def list_tokens(conn: psycopg.Connection, *, include_revoked: bool) -> list[TokenInfo]:
    """Every token's name, role, centre and dates (never its hash), oldest first."""
    with conn.cursor(row_factory=class_row(TokenInfo)) as cur:
        return cur.execute(
            "SELECT name, role, service_centre_id, created_at, revoked_at, fleet_ids FROM api_tokens "
            "WHERE %(all)s OR revoked_at IS NULL ORDER BY created_at, name",
            {"all": include_revoked},
        ).fetchall()


def find_active_token(conn: psycopg.Connection, token_sha256: bytes) -> TokenRecord | None:
    with conn.cursor(row_factory=class_row(TokenRecord)) as cur:
        return cur.execute(
            "SELECT name, role, service_centre_id, fleet_ids FROM api_tokens "
            "WHERE token_sha256 = %s AND revoked_at IS NULL",
            (token_sha256,),
        ).fetchone()
