"""Hazard sites: where events of one kind cluster, and the shape of the place.

A site is a point (a pothole, a junction) or a stretch (a slippery road: a segment along the
road's axis). Events join the nearest existing site of their kind within its link distance; the
rest are clustered by single linkage (a k-d tree's pairs, then connected components), so the
result does not depend on the order of the events. The shape comes from the site's events:
- pothole: the median position, and the road's axis from the headings;
- slippery: the events' principal axis, from the 2nd to the 98th percentile along it;
- junction: the point nearest to every harsh brake's line of travel (vehicles brake on the
  approaches, and those lines meet in the junction), pulled weakly towards the events' median so
  that approaches from one direction only stay well defined.
Pure: numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from analytics.hazards.config import JUNCTION, KINDS, SLIPPERY, HazardThresholds
from analytics.hazards.geo import (
    axis_deg,
    axis_difference_deg,
    east_north_m,
    ecef_m,
    latlon_of,
    offset_latlon,
)

KIND_CODE = {k: i for i, k in enumerate(KINDS)}
JUNCTION_PULL = 0.05  # weight of the events' median against each approach line (per event)


@dataclass(frozen=True)
class Shapes:
    """Sites as shapes, parallel arrays: centre, road axis (0–180 degrees, NaN when none) and
    half-length along it (0 for a point)."""

    kind: np.ndarray  # int8
    lat: np.ndarray
    lon: np.ndarray
    axis_deg: np.ndarray
    half_length_m: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @classmethod
    def empty(cls) -> Shapes:
        f = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int8), f, f, f, f)

    def take(self, rows: np.ndarray) -> Shapes:
        return Shapes(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def distance_to_shape_m(
    shapes: Shapes, site: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance (metres) from each point to its site's shape (pairwise: `site[i]` with point i),
    and the point's signed position along the site's axis."""
    east, north = east_north_m(shapes.lat[site], shapes.lon[site], lat, lon)
    a = np.radians(np.nan_to_num(shapes.axis_deg[site]))
    along = east * np.sin(a) + north * np.cos(a)  # headings count clockwise from north
    across = east * np.cos(a) - north * np.sin(a)
    beyond = np.maximum(np.abs(along) - shapes.half_length_m[site], 0.0)
    return np.hypot(beyond, across), along


ANCHOR_SPACING_M = 20.0  # a stretch is searched for as points this far apart along its axis
NEAR_CANDIDATES = 4  # sites considered per point (the nearest anchors)


def near_pairs(shapes: Shapes, points_m: np.ndarray, reach_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(site, point) for every point (Earth-centred metres, see `geo.ecef_m`) within `reach_m[site]`
    of a site's shape. A k-d tree over anchor points along each shape answers, in C, which of the
    many points are near any site at all; exact distances are computed for those pairs only."""
    empty = np.zeros(0, dtype=np.int64)
    if len(shapes) == 0 or points_m.shape[0] == 0:
        return empty, empty
    n_anchor = np.floor(2 * shapes.half_length_m / ANCHOR_SPACING_M).astype(np.int64) + 1
    anchor_site = np.repeat(np.arange(len(shapes)), n_anchor)
    rank = np.arange(anchor_site.size) - np.repeat(np.cumsum(n_anchor) - n_anchor, n_anchor)
    along = np.where(n_anchor[anchor_site] > 1, rank / np.maximum(n_anchor[anchor_site] - 1, 1), 0.5)
    offset = (along - 0.5) * 2 * shapes.half_length_m[anchor_site]
    a = np.radians(np.nan_to_num(shapes.axis_deg[anchor_site]))
    a_lat, a_lon = offset_latlon(
        shapes.lat[anchor_site], shapes.lon[anchor_site], offset * np.sin(a), offset * np.cos(a)
    )
    tree = cKDTree(ecef_m(a_lat, a_lon))
    bound = float(np.max(reach_m)) + ANCHOR_SPACING_M / 2 + 1.0
    d1, _ = tree.query(points_m, k=1, distance_upper_bound=bound)
    near = np.flatnonzero(np.isfinite(d1))
    k = min(NEAR_CANDIDATES, anchor_site.size)
    _, idx = tree.query(points_m[near], k=k, distance_upper_bound=bound)
    idx = idx.reshape(near.size, k)
    hit = idx < anchor_site.size
    point = np.broadcast_to(near[:, None], idx.shape)[hit]
    site = anchor_site[idx[hit]]
    pair = unique_sorted(site * points_m.shape[0] + point)
    site, point = pair // points_m.shape[0], pair % points_m.shape[0]
    lat, lon = latlon_of(points_m[point])
    d, _ = distance_to_shape_m(shapes, site, lat, lon)
    keep = d <= reach_m[site]
    return site[keep], point[keep]


def unique_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct integer keys (a sort and a mask: faster than np.unique's hashing here)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys


def assign_to_sites(
    shapes: Shapes,
    kind: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    th: HazardThresholds,
    heading_deg: np.ndarray | None = None,
) -> np.ndarray:
    """Index of the nearest site of the event's kind within that kind's link distance (or, for a
    stretch, on its line within `along_m` of it, travelling along it), or -1."""
    link_m, along_m = th.per_kind("link_m"), th.per_kind("along_m")
    reach = np.maximum(link_m, along_m)
    site, point = near_pairs(shapes, ecef_m(lat, lon), reach[shapes.kind] if len(shapes) else np.zeros(0))
    same = shapes.kind[site] == kind[point]
    site, point = site[same], point[same]
    d, along = distance_to_shape_m(shapes, site, lat[point], lon[point])
    ok = d <= link_m[shapes.kind[site]]
    if heading_deg is not None:
        along_m = along_m[shapes.kind[site]]
        radius = th.per_kind("pass_radius_m")[shapes.kind[site]]
        beyond = np.maximum(np.abs(along) - shapes.half_length_m[site], 0.0)
        across = np.sqrt(np.maximum(d * d - beyond * beyond, 0.0))
        aligned = axis_difference_deg(heading_deg[point], shapes.axis_deg[site]) <= 30.0
        ok |= (along_m > 0) & (beyond <= along_m) & (across <= radius) & aligned
    site, point, d = site[ok], point[ok], d[ok]
    out = np.full(lat.shape[0], -1, dtype=np.int64)
    order = np.lexsort((site, -d, point))  # per point, nearest last (ties: the lowest site index)
    out[point[order]] = site[order]
    return out


def cluster(
    kind: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    th: HazardThresholds,
    heading_deg: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster labels (0..k-1) by single linkage within each kind's link distance, and for a kind
    with `along_m`, between events on one line of road up to that far apart (needs headings)."""
    n = lat.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = [np.zeros((0, 2), dtype=np.int64)]
    for code, name in enumerate(KINDS):
        idx = np.flatnonzero(kind == code)
        rules = th.rules(name)
        if idx.size < 2:
            continue
        tree = cKDTree(ecef_m(lat[idx], lon[idx]))
        pairs.append(idx[tree.query_pairs(rules.link_m, output_type="ndarray")])
        if rules.along_m > rules.link_m and heading_deg is not None:
            p = idx[tree.query_pairs(rules.along_m, output_type="ndarray")]
            a, b = p[:, 0], p[:, 1]
            e, nn = east_north_m(lat[a], lon[a], lat[b], lon[b])
            across = np.abs(e * np.cos(np.radians(heading_deg[a])) - nn * np.sin(np.radians(heading_deg[a])))
            aligned = axis_difference_deg(heading_deg[a], heading_deg[b]) <= (rules.aligned_deg or 90.0)
            pairs.append(p[(across <= rules.pass_radius_m) & aligned])
    p = np.concatenate(pairs)
    graph = coo_matrix((np.ones(p.shape[0]), (p[:, 0], p[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return _relabel(labels)


def shapes_of(
    labels: np.ndarray,
    kind: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    heading_deg: np.ndarray,
) -> Shapes:
    """Each cluster's shape from its events (every event of a cluster has the cluster's kind)."""
    k = int(labels.max()) + 1 if labels.size else 0
    if k == 0:
        return Shapes.empty()
    site_kind = np.zeros(k, dtype=np.int8)
    site_kind[labels] = kind
    mid_lat, mid_lon = _grouped_median(labels, lat, k), _grouped_median(labels, lon, k)
    east, north = east_north_m(mid_lat[labels], mid_lon[labels], lat, lon)
    road_axis = _axial_mean(labels, heading_deg, k)
    half = np.zeros(k)
    centre_e, centre_n = np.zeros(k), np.zeros(k)
    stretch = site_kind[labels] == KIND_CODE[SLIPPERY]
    if stretch.any():
        ax_s, lo, hi, across = _principal_span(labels[stretch], east[stretch], north[stretch], k)
        s = site_kind == KIND_CODE[SLIPPERY]
        road_axis[s] = np.where(np.isfinite(ax_s[s]), ax_s[s], road_axis[s])
        a = np.radians(np.nan_to_num(road_axis))
        mid = (lo + hi) / 2.0
        centre_e[s] = (mid * np.sin(a) + across * np.cos(a))[s]
        centre_n[s] = (mid * np.cos(a) - across * np.sin(a))[s]
        half[s] = ((hi - lo) / 2.0)[s]
    junction = site_kind[labels] == KIND_CODE[JUNCTION]
    if junction.any():
        je, jn = _lines_meet(labels[junction], east[junction], north[junction], heading_deg[junction], k)
        j = site_kind == KIND_CODE[JUNCTION]
        centre_e[j], centre_n[j] = je[j], jn[j]
        road_axis[j] = np.nan
    c_lat, c_lon = offset_latlon(mid_lat, mid_lon, centre_e, centre_n)
    return Shapes(site_kind, c_lat, c_lon, road_axis, half)


def merge_groups(shapes: Shapes, th: HazardThresholds) -> np.ndarray:
    """Group label per site: sites of one kind whose shapes come within the kind's merge distance
    (and, for road-bound kinds, run along the same axis) are one place."""
    n = len(shapes)
    if n < 2:
        return np.arange(n)
    reach = th.per_kind("merge_m")[shapes.kind]
    along = th.per_kind("along_m")[shapes.kind]
    tree = cKDTree(ecef_m(shapes.lat, shapes.lon))
    radius = float(np.max(np.maximum(reach, along) + 2 * shapes.half_length_m))
    pairs = tree.query_pairs(radius, output_type="ndarray")
    a, b = pairs[:, 0], pairs[:, 1]
    same = shapes.kind[a] == shapes.kind[b]
    a, b = a[same], b[same]
    gap = np.minimum(_shape_gap(shapes, a, b), _shape_gap(shapes, b, a))
    aligned = ~(axis_difference_deg(shapes.axis_deg[a], shapes.axis_deg[b]) > 30.0)  # NaN: any
    ok = (gap <= reach[a]) & aligned
    # Stretches on one line of road: b's centre near a's axis, the ends within `along_m`.
    along_m, radius = along[a], th.per_kind("pass_radius_m")[shapes.kind[a]]
    e, nn = east_north_m(shapes.lat[a], shapes.lon[a], shapes.lat[b], shapes.lon[b])
    ax_a = np.radians(np.nan_to_num(shapes.axis_deg[a]))
    across = np.abs(e * np.cos(ax_a) - nn * np.sin(ax_a))
    end_gap = np.abs(e * np.sin(ax_a) + nn * np.cos(ax_a)) - shapes.half_length_m[a] - shapes.half_length_m[b]
    ok |= (
        (along_m > 0) & aligned & np.isfinite(shapes.axis_deg[a]) & (across <= radius) & (end_gap <= along_m)
    )
    graph = coo_matrix((np.ones(int(ok.sum())), (a[ok], b[ok])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _shape_gap(shapes: Shapes, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from b's end points and centre to a's shape (the smallest of the three)."""
    a_rad = np.radians(np.nan_to_num(shapes.axis_deg[b]))
    out = np.full(a.shape[0], np.inf)
    for sign in (-1.0, 0.0, 1.0):
        e = sign * shapes.half_length_m[b] * np.sin(a_rad)
        nn = sign * shapes.half_length_m[b] * np.cos(a_rad)
        lat, lon = offset_latlon(shapes.lat[b], shapes.lon[b], e, nn)
        out = np.minimum(out, distance_to_shape_m(shapes, a, lat, lon)[0])
    return out


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels numbered by their first member, so the numbering follows the events, not the graph."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse]


def _grouped_median(labels: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Median per label (NaN for a label without values)."""
    return (
        _grouped_quantile(labels, values, k, 0.5, low=True) + _grouped_quantile(labels, values, k, 0.5)
    ) / 2


def _axial_mean(labels: np.ndarray, heading_deg: np.ndarray, k: int) -> np.ndarray:
    """Mean road axis per cluster (0–180): the mean of doubled angles, ignoring missing headings."""
    ok = np.isfinite(heading_deg)
    a = np.radians(2.0 * axis_deg(np.where(ok, heading_deg, 0.0)))
    c = np.bincount(labels, np.where(ok, np.cos(a), 0.0), minlength=k)
    s = np.bincount(labels, np.where(ok, np.sin(a), 0.0), minlength=k)
    out = np.mod(np.degrees(np.arctan2(s, c)) / 2.0, 180.0)
    return np.where(np.hypot(c, s) > 0, out, np.nan)


def _principal_span(
    labels: np.ndarray, east: np.ndarray, north: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster: principal axis (degrees from north, 0–180; NaN under 3 events), the 2nd and
    98th percentile of positions along it, and the median offset across it."""
    n = np.bincount(labels, minlength=k).astype(float)
    me, mn = np.bincount(labels, east, k) / np.maximum(n, 1), np.bincount(labels, north, k) / np.maximum(n, 1)
    de, dn = east - me[labels], north - mn[labels]
    see, snn, sen = (np.bincount(labels, w, k) for w in (de * de, dn * dn, de * dn))
    theta = 0.5 * np.arctan2(2 * sen, see - snn)  # angle of the major axis from east
    ax_deg = np.where(n >= 3, np.mod(90.0 - np.degrees(theta), 180.0), np.nan)
    a = np.radians(np.nan_to_num(ax_deg))[labels]
    along = east * np.sin(a) + north * np.cos(a)
    across = east * np.cos(a) - north * np.sin(a)
    return (
        ax_deg,
        _grouped_quantile(labels, along, k, 0.02),
        _grouped_quantile(labels, along, k, 0.98),
        (_grouped_median(labels, across, k)),
    )


def _grouped_quantile(
    labels: np.ndarray, values: np.ndarray, k: int, q: float, *, low: bool = False
) -> np.ndarray:
    """The value at quantile q per label (the upper of two middles unless `low`; NaN when empty)."""
    if labels.size == 0:
        return np.full(k, np.nan)
    order = np.lexsort((values, labels))
    counts = np.bincount(labels, minlength=k)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    step = q * np.maximum(counts - 1, 0)
    pos = start + (np.floor(step) if low else np.ceil(step)).astype(np.int64)
    picked = values[order][np.minimum(pos, labels.size - 1)]
    return np.where(counts > 0, picked, np.nan)


def _lines_meet(
    labels: np.ndarray, east: np.ndarray, north: np.ndarray, heading_deg: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, the point minimising the squared distances to each event's line of travel plus
    a weak pull to the cluster's origin (its median): a 2x2 solve per cluster, all at once."""
    ok = np.isfinite(heading_deg)
    h = np.radians(np.where(ok, heading_deg, 0.0))
    dx, dy = np.sin(h), np.cos(h)
    w = ok.astype(float)
    # (I - d dᵀ) per event, summed per cluster.
    pxx, pyy, pxy = w * (1 - dx * dx), w * (1 - dy * dy), w * (-dx * dy)
    lam = JUNCTION_PULL * np.bincount(labels, minlength=k) + 1e-9
    a11 = np.bincount(labels, pxx, k) + lam
    a22 = np.bincount(labels, pyy, k) + lam
    a12 = np.bincount(labels, pxy, k)
    b1 = np.bincount(labels, pxx * east + pxy * north, k)  # + lam * 0: the origin is the median
    b2 = np.bincount(labels, pxy * east + pyy * north, k)
    det = a11 * a22 - a12 * a12
    return (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
