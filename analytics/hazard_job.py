"""The hazard-map step of an analysis run: new telemetry in, sites and their evidence updated.

Order of one step (`update_hazard_map`), for the vehicles with new telemetry:
1. read their new rows and `CONTEXT_S` before them (binary COPY, only the signals the map needs):
   the context links the first new row to its interval and a visit to where it began;
2. find candidate events in the new rows; give them to the nearest live site of their kind, or
   cluster the rest into new candidate sites; store the events (coarsened, pseudonymous);
3. re-shape every site that gained events, and merge sites that turned out to be one place;
4. find the passes over the live sites that began in the new rows, and store them once each;
5. replay the evidence of every site that gained events or passes: its state, counts, confidence
   and the intervals when it was on the map; expire sites that have had no event for too long.
Re-running over the same rows stores nothing twice (events and passes have natural keys), so the
result is the same. The kernels are in `analytics.hazards`; this module is the shell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import psycopg

from analytics import hazard_store as store
from analytics import telemetry_reader as reader
from analytics.hazards.config import DEFAULT, KINDS, HazardThresholds
from analytics.hazards.events import SIGNALS, HazardEvents, extract_events
from analytics.hazards.evidence import replay
from analytics.hazards.passes import find_passes
from analytics.hazards.sites import assign_to_sites, cluster, merge_groups, shapes_of
from contract.timestamps import datetime_of_ns

CONTEXT_S = 120.0


@dataclass
class HazardReport:
    rows_read: int = 0
    events: int = 0
    new_sites: int = 0
    merged_sites: int = 0
    passes: int = 0
    confirmed: int = 0
    retracted_now: int = 0
    expired: int = 0
    empty_sites: int = 0
    seconds: float = 0.0  # wall time of the step, read included


def update_hazard_map(
    conn: psycopg.Connection, oldest_new_ns: dict[str, int], th: HazardThresholds = DEFAULT
) -> HazardReport:
    """One step over the vehicles' new telemetry (`oldest_new_ns`: each one's oldest new sample)."""
    started = time.monotonic()
    report = HazardReport()
    if not oldest_new_ns:
        return report
    vehicles = sorted(oldest_new_ns)
    count_from = np.array([oldest_new_ns[v] for v in vehicles], dtype=np.int64)
    since = {v: oldest_new_ns[v] - int(CONTEXT_S * 1e9) for v in vehicles}
    cols = reader.read_columns(conn, vehicles, SIGNALS, since_ns_per_vehicle=since)
    report.rows_read = cols.n_rows
    if cols.n_rows == 0:
        return report
    key = store.secret(conn)
    events = extract_events(cols, th)
    events = events.take(np.flatnonzero(events.ts_ns >= count_from[events.vehicle]))
    report.events = len(events)
    h = events.heading_deg
    with conn.transaction():
        site_ids, shapes = store.load_live_sites(conn)
        site_of_event = assign_to_sites(shapes, events.kind, events.lat, events.lon, th, h)
        loose = np.flatnonzero(site_of_event < 0)
        fresh_ids = np.zeros(0, dtype=np.int64)
        if loose.size:
            labels = cluster(events.kind[loose], events.lat[loose], events.lon[loose], th, h[loose])
            fresh = shapes_of(
                labels, events.kind[loose], events.lat[loose], events.lon[loose], events.heading_deg[loose]
            )
            fresh_ids = store.insert_sites(conn, fresh, th)
            report.new_sites = fresh_ids.size
            site_of_event[loose] = len(site_ids) + labels
            site_ids = np.r_[site_ids, fresh_ids]
        ids_of_event = site_ids[site_of_event] if len(events) else np.zeros(0, dtype=np.int64)
        names = [cols.vehicle_ids[int(v)] for v in events.vehicle]
        vehicle_keys = store.vehicle_keys(key, names, events.lat, events.lon)
        store.insert_events(
            conn,
            ids_of_event,
            vehicle_keys,
            events.kind,
            events.ts_ns,
            store.cells(events.lat, events.lon),
            events.heading_deg,
            events.speed_ms,
            events.magnitude,
        )
        # A new site whose events were all stored already (a re-read of rows analysed before,
        # now nearer another place) holds nothing: drop it rather than keep an empty place.
        report.empty_sites = conn.execute(
            "DELETE FROM hazard_sites s WHERE s.site_id = ANY(%s)"
            " AND NOT EXISTS (SELECT 1 FROM hazard_events e WHERE e.site_id = s.site_id)",
            (fresh_ids.tolist(),),
        ).rowcount
        ids_of_event = _stored_site_of(conn, ids_of_event, events, vehicle_keys)
        _reshape(conn, np.unique(ids_of_event[ids_of_event >= 0]))
        merged_into = _merge(conn, th)
        report.merged_sites = len(merged_into)
        ids_of_event = np.array([merged_into.get(int(s), int(s)) for s in ids_of_event], dtype=np.int64)
        touched = set(ids_of_event[ids_of_event >= 0].tolist()) | set(merged_into.values())
        site_ids, shapes = store.load_live_sites(conn)
        where = {int(s): i for i, s in enumerate(site_ids)}
        event_site = np.array([where.get(int(s), -1) for s in ids_of_event], dtype=np.int64)
        passes = find_passes(cols, shapes, events, event_site, count_from, th)
        report.passes = len(passes)
        pass_ids = site_ids[passes.site]
        store.insert_passes(
            conn,
            pass_ids,
            store.visit_keys(
                key, [cols.vehicle_ids[int(v)] for v in passes.vehicle], pass_ids, passes.first_ts_ns
            ),
            passes.first_ts_ns,
            passes.with_event,
        )
        touched |= set(pass_ids.tolist())
        touched &= set(site_ids.tolist())
        now_ns = int(cols.ts_ns.max())
        report.confirmed, report.retracted_now = _judge(
            conn, np.array(sorted(touched), dtype=np.int64), now_ns, th
        )
        report.expired = conn.execute(
            "UPDATE hazard_sites SET state = 'expired', confidence = 0, updated_at = now()"
            " WHERE state <> 'expired' AND last_event_at < %s",
            (datetime_of_ns(now_ns - int(th.expire_after_s * 1e9)),),
        ).rowcount
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _reshape(conn: psycopg.Connection, site_ids: np.ndarray) -> None:
    """Each site's shape again, from all its stored events (a site without any keeps its shape)."""
    if site_ids.size == 0:
        return
    rows = store.load_evidence(conn, site_ids)
    held = np.unique(rows.ev_site)
    if held.size == 0:
        return
    dense = np.searchsorted(held, rows.ev_site)
    shapes = shapes_of(dense, rows.ev_kind, rows.ev_lat, rows.ev_lon, rows.ev_heading)
    ok = np.isfinite(shapes.lat) & np.isfinite(shapes.lon)
    store.update_shapes(conn, site_ids[held][ok], shapes.take(np.flatnonzero(ok)))


def _stored_site_of(
    conn: psycopg.Connection, site_ids: np.ndarray, events: HazardEvents, vehicle_keys: np.ndarray
) -> np.ndarray:
    """Where each event is stored: its new site, or the site an earlier run put it in (-1: none)."""
    if site_ids.size == 0:
        return site_ids
    live = {
        int(r[0])
        for r in conn.execute(
            "SELECT site_id FROM hazard_sites WHERE site_id = ANY(%s)", (np.unique(site_ids).tolist(),)
        ).fetchall()
    }
    out = site_ids.copy()
    for i in np.flatnonzero([int(s) not in live for s in site_ids]):
        row = conn.execute(
            "SELECT site_id FROM hazard_events WHERE vehicle_key = %s AND kind = %s AND ts = %s",
            (int(vehicle_keys[i]), KINDS[int(events.kind[i])], datetime_of_ns(int(events.ts_ns[i]))),
        ).fetchone()
        out[i] = row[0] if row else -1
    return out


def _merge(conn: psycopg.Connection, th: HazardThresholds) -> dict[int, int]:
    """Merge live sites that are one place (the oldest id survives): {merged-away id: survivor}."""
    site_ids, shapes = store.load_live_sites(conn)
    groups = merge_groups(shapes, th)
    merged_into: dict[int, int] = {}
    for g in np.flatnonzero(np.bincount(groups) > 1):
        members = [int(m) for m in np.sort(site_ids[groups == g])]
        store.merge_sites(conn, members[0], members[1:])
        merged_into.update({m: members[0] for m in members[1:]})
    _reshape(conn, np.array(sorted(set(merged_into.values())), dtype=np.int64))
    return merged_into


def _judge(
    conn: psycopg.Connection, site_ids: np.ndarray, now_ns: int, th: HazardThresholds
) -> tuple[int, int]:
    """Replay these sites' evidence and store the verdicts; (confirmed now, withdrawn now)."""
    if site_ids.size == 0:
        return 0, 0
    rows_now = conn.execute(
        "SELECT site_id, state, kind FROM hazard_sites WHERE site_id = ANY(%s)", ([int(s) for s in site_ids],)
    ).fetchall()
    before = {int(s): state for s, state, _ in rows_now}
    code_of = {int(s): KINDS.index(kind) for s, _, kind in rows_now}
    min_rate = th.per_kind("min_event_rate")[[code_of[int(s)] for s in site_ids]]
    rows = store.load_evidence(conn, site_ids)
    evd = replay(
        site_ids.size, min_rate, rows.ev_site, rows.ev_ts_ns, rows.ev_vehicle_key,
        rows.pass_site, rows.pass_ts_ns, rows.pass_with_event, now_ns, th,
    )  # fmt: skip
    store.update_evidence(conn, site_ids, evd)
    confirmed = int(sum(1 for s in evd.state if s == "confirmed"))
    withdrawn = sum(
        1 for i, s in enumerate(site_ids) if before.get(int(s)) == "confirmed" and evd.state[i] != "confirmed"
    )
    return confirmed, withdrawn
