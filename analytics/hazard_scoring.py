"""The hazard map scored against ground truth: per kind, precision, recall and position error at
the end of a run, and whether a repaired hazard was still on the map 30 minutes after its repair.

Owns: what counts as a hit. It reads the simulator's ground-truth document (`hazards` with
`kind`, `lat`, `lon`, `active_from_ts_ns`, `active_until_ts_ns`; `start_ts_ns`, `duration_s`) and
the map's sites as stored (`analytics.hazard_store.site_rows`: kind, shape, and `reported`, the
intervals in data time when the site was on the map). Pure: no I/O.

Rules:
- The map at an instant is the sites whose `reported` intervals contain it.
- A site matches a true hazard of its kind when the hazard's position is within `MATCH_M` of the
  site's shape (a point, or a stretch for a slippery road); pairs are taken nearest first, one
  site per hazard. The position error is the distance between the hazard and the site's centre.
- At the end of the run: a site on the map matching a hazard active then is a true positive; any
  other site on the map (nothing there, or a hazard repaired since) is a false positive; an active
  hazard without a matching site is a false negative.
- A hazard repaired at least `REPAIR_GRACE_S` before the end is checked at repair + that grace:
  it fails if a site matching it is on the map then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analytics.hazards.config import KINDS
from analytics.hazards.geo import east_north_m
from analytics.hazards.sites import Shapes, distance_to_shape_m

MATCH_M = 30.0
REPAIR_GRACE_S = 1800.0


def on_map(site: Mapping[str, Any], at_ns: int) -> bool:
    return any(a <= at_ns and (b is None or at_ns < b) for a, b in site.get("reported") or [])


def score_hazards(truth: Mapping[str, Any], sites: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per kind (every kind in the truth or on the map): counts, precision, recall, median and
    90th-percentile position error (m), median time from a hazard's start to its first
    confirmation (s); and the repaired hazards still on the map after the grace time."""
    end_ns = int(truth["start_ts_ns"]) + int(round(float(truth["duration_s"]) * 1e9))
    hazards = list(truth["hazards"])
    kinds = sorted({h["kind"] for h in hazards} | {s["kind"] for s in sites if on_map(s, end_ns)})
    out: dict[str, Any] = {}
    still: list[dict[str, Any]] = []
    for kind in kinds:
        mine = [h for h in hazards if h["kind"] == kind]
        own_sites = [s for s in sites if s["kind"] == kind]
        active = [h for h in mine if _active(h, end_ns)]
        shown = [s for s in own_sites if on_map(s, end_ns)]
        pairs = _match(active, shown)
        errors = np.array([d for _, _, d in pairs])
        delays = [
            (min(iv[0] for iv in shown[j]["reported"]) - active[i]["active_from_ts_ns"]) / 1e9
            for i, j, _ in pairs
        ]
        tp = len(pairs)
        repaired = [h for h in mine if h.get("active_until_ts_ns") is not None]
        checked = 0
        for h in repaired:
            at = int(h["active_until_ts_ns"]) + int(REPAIR_GRACE_S * 1e9)
            if at > end_ns:
                continue
            checked += 1
            if _match([h], [s for s in own_sites if on_map(s, at)]):
                still.append(
                    {
                        "kind": kind,
                        "lat": h["lat"],
                        "lon": h["lon"],
                        "repaired_at_ts_ns": h["active_until_ts_ns"],
                    }
                )
        out[kind] = {
            "true": len(active),
            "on_map": len(shown),
            "true_positives": tp,
            "false_positives": len(shown) - tp,
            "false_negatives": len(active) - tp,
            "precision": tp / len(shown) if shown else None,
            "recall": tp / len(active) if active else None,
            "median_error_m": float(np.median(errors)) if tp else None,
            "p90_error_m": float(np.percentile(errors, 90)) if tp else None,
            "median_time_to_confirm_s": float(np.median(delays)) if tp else None,
            "repaired_checked": checked,
        }
    return {"kinds": out, "repaired_still_on_map": still}


def _active(h: Mapping[str, Any], at_ns: int) -> bool:
    until = h.get("active_until_ts_ns")
    return int(h["active_from_ts_ns"]) <= at_ns and (until is None or at_ns < int(until))


def _match(
    hazards: Sequence[Mapping[str, Any]], sites: Sequence[Mapping[str, Any]]
) -> list[tuple[int, int, float]]:
    """(hazard index, site index, centre distance) pairs, nearest shape first, one-to-one."""
    if not hazards or not sites:
        return []
    code = {k: i for i, k in enumerate(KINDS)}
    shapes = Shapes(
        np.array([code[s["kind"]] for s in sites], dtype=np.int8),
        np.array([s["lat"] for s in sites], dtype=float),
        np.array([s["lon"] for s in sites], dtype=float),
        np.array([np.nan if s.get("axis_deg") is None else s["axis_deg"] for s in sites], dtype=float),
        np.array([s.get("half_length_m") or 0.0 for s in sites], dtype=float),
    )
    hi = np.repeat(np.arange(len(hazards)), len(sites))
    si = np.tile(np.arange(len(sites)), len(hazards))
    h_lat = np.array([h["lat"] for h in hazards], dtype=float)[hi]
    h_lon = np.array([h["lon"] for h in hazards], dtype=float)[hi]
    to_shape, _ = distance_to_shape_m(shapes, si, h_lat, h_lon)
    east, north = east_north_m(shapes.lat[si], shapes.lon[si], h_lat, h_lon)
    centre = np.hypot(east, north)
    pairs: list[tuple[int, int, float]] = []
    used_h: set[int] = set()
    used_s: set[int] = set()
    for k in np.argsort(to_shape, kind="stable"):
        if to_shape[k] > MATCH_M:
            break
        if int(hi[k]) in used_h or int(si[k]) in used_s:
            continue
        used_h.add(int(hi[k]))
        used_s.add(int(si[k]))
        pairs.append((int(hi[k]), int(si[k]), float(centre[k])))
    return pairs
