"""The hazard map's tables (migration 0012): sites, their events and the passes over them.

Owns: the SQL of the map, and the two keyed pseudonyms that stand in for a vehicle. An event's
`vehicle_key` is an HMAC of the vehicle and the coarse area (H3 resolution 6) the event is in, so
a vehicle's events link only within one area (enough to count distinct vehicles at a site, too
little to follow it). A pass's `visit_key` is an HMAC of the vehicle, the site and the visit's
first sample time: unique per visit, unlinkable across visits. The key is random per database
(`hazard_secrets`). Positions of events are stored as H3 resolution-13 cells.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import psycopg

from analytics.hazards.config import KINDS, HazardThresholds
from analytics.hazards.evidence import SiteEvidence
from analytics.hazards.sites import Shapes
from contract.timestamps import datetime_of_ns, ns_of

EVENT_CELL_RES = 13  # about 44 m² (edge 3.6 m): the position an event keeps
PSEUDONYM_AREA_RES = 6  # about 36 km²: a vehicle's events link only within one such area


@dataclass(frozen=True)
class SiteEvidenceRows:
    """A set of sites' stored events and passes, as the evidence replay takes them."""

    ev_site: np.ndarray  # index into the site list asked for
    ev_ts_ns: np.ndarray
    ev_vehicle_key: np.ndarray
    ev_lat: np.ndarray
    ev_lon: np.ndarray
    ev_heading: np.ndarray
    ev_kind: np.ndarray
    pass_site: np.ndarray
    pass_ts_ns: np.ndarray
    pass_with_event: np.ndarray


def secret(conn: psycopg.Connection) -> bytes:
    row = conn.execute("SELECT secret FROM hazard_secrets WHERE name = 'pseudonym'").fetchone()
    if row is None:
        raise RuntimeError("hazard_secrets has no pseudonym key: is the database migrated (0012)?")
    return bytes(row[0])


def _key(key: bytes, *parts: object) -> int:
    digest = hmac.new(key, "|".join(str(p) for p in parts).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def vehicle_keys(key: bytes, vehicle_ids: Sequence[str], lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The pseudonym of each event's vehicle within the event's coarse area."""
    return np.array(
        [
            _key(key, "vehicle", v, h3.latlng_to_cell(float(la), float(lo), PSEUDONYM_AREA_RES))
            for v, la, lo in zip(vehicle_ids, lat, lon, strict=True)
        ],
        dtype=np.int64,
    )


def visit_keys(
    key: bytes, vehicle_ids: Sequence[str], site_ids: np.ndarray, first_ts_ns: np.ndarray
) -> np.ndarray:
    return np.array(
        [
            _key(key, "visit", v, int(s), int(t))
            for v, s, t in zip(vehicle_ids, site_ids, first_ts_ns, strict=True)
        ],
        dtype=np.int64,
    )


def cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return np.array(
        [
            h3.str_to_int(h3.latlng_to_cell(float(a), float(b), EVENT_CELL_RES))
            for a, b in zip(lat, lon, strict=True)
        ],
        dtype=np.int64,
    )


def cell_centres(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = np.array([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in cell], dtype=float).reshape(-1, 2)
    return pts[:, 0], pts[:, 1]


def load_live_sites(conn: psycopg.Connection) -> tuple[np.ndarray, Shapes]:
    """Ids and shapes of every site that is not expired, by id."""
    rows = conn.execute(
        "SELECT site_id, kind, lat, lon, axis_deg, half_length_m FROM hazard_sites"
        " WHERE state <> 'expired' ORDER BY site_id"
    ).fetchall()
    code = {k: i for i, k in enumerate(KINDS)}
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    shapes = Shapes(
        np.array([code[r[1]] for r in rows], dtype=np.int8),
        np.array([r[2] for r in rows], dtype=float),
        np.array([r[3] for r in rows], dtype=float),
        np.array([np.nan if r[4] is None else r[4] for r in rows], dtype=float),
        np.array([r[5] for r in rows], dtype=float),
    )
    return ids, shapes


def insert_sites(conn: psycopg.Connection, shapes: Shapes, th: HazardThresholds) -> np.ndarray:
    """New sites (candidates); their ids in order."""
    ids = []
    for i in range(len(shapes)):
        (site_id,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO hazard_sites (kind, lat, lon, axis_deg, half_length_m, thresholds_version)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING site_id",
            (KINDS[int(shapes.kind[i])], *_shape_values(shapes, i), th.version),
        ).fetchone()
        ids.append(site_id)
    return np.array(ids, dtype=np.int64)


def update_shapes(conn: psycopg.Connection, site_ids: np.ndarray, shapes: Shapes) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE hazard_sites SET lat = %s, lon = %s, axis_deg = %s, half_length_m = %s,"
            " updated_at = now() WHERE site_id = %s",
            [(*_shape_values(shapes, i), int(site_ids[i])) for i in range(len(shapes))],
        )


def _shape_values(shapes: Shapes, i: int) -> tuple[float, float, float | None, float]:
    axis = float(shapes.axis_deg[i])
    return (
        float(shapes.lat[i]),
        float(shapes.lon[i]),
        None if not np.isfinite(axis) else axis % 180.0,
        float(np.nan_to_num(shapes.half_length_m[i])),
    )


def insert_events(
    conn: psycopg.Connection,
    site_ids: np.ndarray,
    vehicle_key: np.ndarray,
    kind: np.ndarray,
    ts_ns: np.ndarray,
    cell: np.ndarray,
    heading: np.ndarray,
    speed: np.ndarray,
    magnitude: np.ndarray,
) -> None:
    """Events, once each (a re-read of the same rows finds them stored already)."""

    def real(x: float) -> float | None:
        return float(x) if np.isfinite(x) else None

    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hazard_events"
            " (vehicle_key, kind, ts, site_id, cell, heading_deg, speed_ms, magnitude)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (int(k), KINDS[int(c)], datetime_of_ns(int(t)), int(s), int(cl), real(h), real(v), real(m))
                for k, c, t, s, cl, h, v, m in zip(
                    vehicle_key, kind, ts_ns, site_ids, cell, heading, speed, magnitude, strict=True
                )
            ],
        )


def insert_passes(
    conn: psycopg.Connection,
    site_ids: np.ndarray,
    visit_key: np.ndarray,
    ts_ns: np.ndarray,
    with_event: np.ndarray,
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO hazard_passes (site_id, visit_key, ts, with_event) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (site_id, visit_key) DO UPDATE SET with_event = hazard_passes.with_event OR"
            " excluded.with_event",
            [
                (int(s), int(k), datetime_of_ns(int(t)), bool(w))
                for s, k, t, w in zip(site_ids, visit_key, ts_ns, with_event, strict=True)
            ],
        )


def merge_sites(conn: psycopg.Connection, survivor: int, absorbed: Sequence[int]) -> None:
    """One place seen as several sites: the survivor takes the events. The absorbed sites' passes
    are dropped, not moved: a visit near both was counted at both, and would count twice."""
    conn.execute("UPDATE hazard_events SET site_id = %s WHERE site_id = ANY(%s)", (survivor, list(absorbed)))
    conn.execute("DELETE FROM hazard_sites WHERE site_id = ANY(%s)", (list(absorbed),))


def load_evidence(conn: psycopg.Connection, site_ids: np.ndarray) -> SiteEvidenceRows:
    """Every stored event and pass of these sites; sites are indexed by their position in `site_ids`."""
    index = {int(s): i for i, s in enumerate(site_ids)}
    code = {k: i for i, k in enumerate(KINDS)}
    ev = conn.execute(
        "SELECT site_id, ts, vehicle_key, cell, heading_deg, kind FROM hazard_events WHERE site_id = ANY(%s)",
        ([int(s) for s in site_ids],),
    ).fetchall()
    ps = conn.execute(
        "SELECT site_id, ts, with_event FROM hazard_passes WHERE site_id = ANY(%s)",
        ([int(s) for s in site_ids],),
    ).fetchall()
    lat, lon = cell_centres(np.array([r[3] for r in ev], dtype=np.int64))
    return SiteEvidenceRows(
        ev_site=np.array([index[r[0]] for r in ev], dtype=np.int64),
        ev_ts_ns=np.array([ns_of(r[1]) for r in ev], dtype=np.int64),
        ev_vehicle_key=np.array([r[2] for r in ev], dtype=np.int64),
        ev_lat=lat,
        ev_lon=lon,
        ev_heading=np.array([np.nan if r[4] is None else r[4] for r in ev], dtype=float),
        ev_kind=np.array([code[r[5]] for r in ev], dtype=np.int8),
        pass_site=np.array([index[r[0]] for r in ps], dtype=np.int64),
        pass_ts_ns=np.array([ns_of(r[1]) for r in ps], dtype=np.int64),
        pass_with_event=np.array([r[2] for r in ps], dtype=bool),
    )


def update_evidence(conn: psycopg.Connection, site_ids: np.ndarray, evd: SiteEvidence) -> None:
    def at(ns: int) -> Any:
        return datetime_of_ns(int(ns)) if ns >= 0 else None

    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE hazard_sites SET state = %s, events = %s, vehicles = %s, passes = %s, event_passes = %s,"
            " clean_passes = %s, rate_lower = %s, confidence = %s, first_event_at = %s, last_event_at = %s,"
            " reported = %s::jsonb, updated_at = now() WHERE site_id = %s",
            [
                (
                    str(evd.state[i]),
                    int(evd.events[i]),
                    int(evd.vehicles[i]),
                    int(evd.passes[i]),
                    int(evd.event_passes[i]),
                    int(evd.clean_passes[i]),
                    float(evd.rate_lower[i]),
                    float(evd.confidence[i]),
                    at(evd.first_event_ns[i]),
                    at(evd.last_event_ns[i]),
                    json.dumps(evd.intervals[i]),
                    int(s),
                )  # fmt: skip
                for i, s in enumerate(site_ids)
            ],
        )


def site_rows(conn: psycopg.Connection, *, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Sites as dicts (for the map export, the scorer and the API), by id."""
    cur = conn.execute(
        "SELECT site_id, kind, lat, lon, axis_deg, half_length_m, state, events, vehicles, passes,"
        " event_passes, clean_passes, rate_lower, confidence, first_event_at, last_event_at, reported,"
        " thresholds_version"
        " FROM hazard_sites WHERE (%s::text[] IS NULL OR state = ANY(%s::text[])) ORDER BY site_id",
        (None if states is None else list(states), None if states is None else list(states)),
    )
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def unlink_vehicle(conn: psycopg.Connection, key: bytes, vehicle_id: str) -> tuple[int, int]:
    """Make the hazard evidence of `vehicle_id` anonymous (an erasure request): each of its event
    pseudonyms (one per coarse area) is replaced by a fresh random one, so events still count as
    one vehicle per area but no key recomputed from the vehicle id finds them; each of its visit
    pseudonyms likewise. Returns (events, passes) re-keyed. Raises psycopg.Error."""
    # An event's pseudonym area is the coarse cell of its exact position; the parent of its stored
    # fine cell is that cell or, near an edge (H3 cells do not nest exactly), a neighbour of it.
    parents = {
        h3.cell_to_parent(h3.int_to_str(int(c)), PSEUDONYM_AREA_RES)
        for (c,) in conn.execute("SELECT DISTINCT cell FROM hazard_events").fetchall()
    }
    parents = {area for parent in parents for area in h3.grid_disk(parent, 1)}
    events = 0
    for area in parents:
        fresh = int.from_bytes(secrets.token_bytes(8), "big", signed=True)
        events += conn.execute(
            "UPDATE hazard_events SET vehicle_key = %s WHERE vehicle_key = %s",
            (fresh, _key(key, "vehicle", vehicle_id, area)),
        ).rowcount
    mine = [
        (site, visit)
        for site, visit, ts in conn.execute("SELECT site_id, visit_key, ts FROM hazard_passes").fetchall()
        if visit == _key(key, "visit", vehicle_id, int(site), ns_of(ts))
    ]
    for site, visit in mine:
        conn.execute(
            "UPDATE hazard_passes SET visit_key = %s WHERE site_id = %s AND visit_key = %s",
            (int.from_bytes(secrets.token_bytes(8), "big", signed=True), site, visit),
        )
    return events, len(mine)
