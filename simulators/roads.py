"""The road network the simulated fleet drives on: directed edges between nodes, in local metres.

Owns: the graph as flat numpy arrays (so that the motion kernel can index it for the whole fleet
at once), a generated city (grid of local streets, arterials every few blocks with traffic lights,
and a ring highway joined by ramps), and the projection between local metres and WGS84.
Reading OpenStreetMap files is `simulators.osm`; moving vehicles along edges is `simulators.motion`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

M_PER_DEG_LAT = 111_320.0

ROAD_LOCAL, ROAD_ARTERIAL, ROAD_HIGHWAY, ROAD_RAMP = 0, 1, 2, 3


@dataclass(frozen=True)
class RoadNetwork:
    """Directed graph. Node arrays have shape (n_nodes,), edge arrays (n_edges,).

    `out_start[node]`..`out_start[node + 1]` index `out_edges`, the edges leaving a node (CSR), so a
    vectorised kernel can pick a random next edge for many vehicles with one gather. `reverse[e]`
    is the opposite edge of `e` or -1 (one-way), used to avoid U-turns."""

    origin_lat_deg: float
    origin_lon_deg: float
    node_x_m: np.ndarray
    node_y_m: np.ndarray
    has_light: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_length_m: np.ndarray
    edge_speed_limit_ms: np.ndarray
    edge_class: np.ndarray
    edge_heading_deg: np.ndarray
    reverse: np.ndarray
    out_start: np.ndarray
    out_edges: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.node_x_m.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    def to_latlon(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local east/north metres to WGS84 degrees (equirectangular: exact enough within a city)."""
        lat = self.origin_lat_deg + np.asarray(y_m) / M_PER_DEG_LAT
        lon = self.origin_lon_deg + np.asarray(x_m) / (
            M_PER_DEG_LAT * np.cos(np.radians(self.origin_lat_deg))
        )
        return lat, lon

    def to_xy(self, lat_deg: np.ndarray, lon_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (
            (np.asarray(lon_deg) - self.origin_lon_deg)
            * M_PER_DEG_LAT
            * np.cos(np.radians(self.origin_lat_deg))
        )
        y = (np.asarray(lat_deg) - self.origin_lat_deg) * M_PER_DEG_LAT
        return x, y


def build_network(
    origin_lat_deg: float,
    origin_lon_deg: float,
    node_x_m: np.ndarray,
    node_y_m: np.ndarray,
    has_light: np.ndarray,
    pairs: np.ndarray,
    speed_limit_ms: np.ndarray,
    road_class: np.ndarray,
    two_way: np.ndarray,
) -> RoadNetwork:
    """Assemble a network from undirected road pieces `pairs` (k, 2). Two-way pieces become two
    directed edges. Nodes left without an exit get the reverse of their entry, so no vehicle is
    ever stuck. Raises ValueError for an empty network."""
    if len(pairs) == 0:
        raise ValueError("a road network needs at least one road")
    pairs = np.asarray(pairs, dtype=np.int64)
    two_way = np.asarray(two_way, dtype=bool)
    src = np.concatenate([pairs[:, 0], pairs[two_way, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[two_way, 0]])
    limit = np.concatenate([speed_limit_ms, speed_limit_ms[two_way]])
    cls = np.concatenate([road_class, road_class[two_way]])
    out_deg = np.bincount(src, minlength=len(node_x_m))
    dead = out_deg[dst] == 0
    if dead.any():  # one-way dead ends: allow turning round
        src, dst = np.concatenate([src, dst[dead]]), np.concatenate([dst, src[dead]])
        limit, cls = np.concatenate([limit, limit[dead]]), np.concatenate([cls, cls[dead]])
    keep = src != dst
    src, dst, limit, cls = src[keep], dst[keep], limit[keep], cls[keep]
    dx = node_x_m[dst] - node_x_m[src]
    dy = node_y_m[dst] - node_y_m[src]
    length = np.maximum(np.hypot(dx, dy), 1.0)
    heading = np.degrees(np.arctan2(dx, dy)) % 360.0
    order = np.argsort(src, kind="stable")
    out_start = np.zeros(len(node_x_m) + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=len(node_x_m)), out=out_start[1:])
    key = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(src, dst, strict=True))}
    reverse = np.array([key.get((int(b), int(a)), -1) for a, b in zip(src, dst, strict=True)], dtype=np.int64)
    return RoadNetwork(
        origin_lat_deg=origin_lat_deg,
        origin_lon_deg=origin_lon_deg,
        node_x_m=np.asarray(node_x_m, dtype=np.float64),
        node_y_m=np.asarray(node_y_m, dtype=np.float64),
        has_light=np.asarray(has_light, dtype=bool),
        edge_src=src,
        edge_dst=dst,
        edge_length_m=length,
        edge_speed_limit_ms=limit.astype(np.float64),
        edge_class=cls.astype(np.int8),
        edge_heading_deg=heading,
        reverse=reverse,
        out_start=out_start,
        out_edges=order.astype(np.int64),
    )


def city_grid(
    origin_lat_deg: float = 48.137,
    origin_lon_deg: float = 11.575,
    *,
    blocks: int = 16,
    block_m: float = 200.0,
    arterial_every: int = 4,
    ring_nodes: int = 32,
) -> RoadNetwork:
    """A square grid of `blocks` x `blocks` blocks centred on the origin: local streets at 40 km/h,
    every `arterial_every`-th street an arterial at 60 km/h with traffic lights where arterials
    cross, and a ring highway at 110 km/h around it joined to the grid's edge by 4 ramps."""
    k = blocks + 1
    half = blocks * block_m / 2
    gx, gy = np.meshgrid(np.arange(k), np.arange(k), indexing="xy")
    xs = (gx.ravel() * block_m - half).astype(np.float64)
    ys = (gy.ravel() * block_m - half).astype(np.float64)
    idx = np.arange(k * k).reshape(k, k)  # idx[row, col]
    arterial_line = (np.arange(k) % arterial_every) == 0
    lights = (arterial_line[gx.ravel()] & arterial_line[gy.ravel()]).astype(bool)
    horiz = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1)
    vert = np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], axis=1)
    h_art = np.repeat(arterial_line, k - 1)  # a horizontal piece is arterial when its row is
    v_art = np.tile(arterial_line, k - 1)  # a vertical piece is arterial when its column is
    pairs = [horiz, vert]
    classes = [np.where(h_art, ROAD_ARTERIAL, ROAD_LOCAL), np.where(v_art, ROAD_ARTERIAL, ROAD_LOCAL)]
    # Ring highway
    radius = half * 1.35
    angles = np.linspace(0, 2 * np.pi, ring_nodes, endpoint=False)
    ring0 = k * k
    xs = np.concatenate([xs, radius * np.sin(angles)])
    ys = np.concatenate([ys, radius * np.cos(angles)])
    lights = np.concatenate([lights, np.zeros(ring_nodes, dtype=bool)])
    ring = np.stack([ring0 + np.arange(ring_nodes), ring0 + (np.arange(ring_nodes) + 1) % ring_nodes], axis=1)
    pairs.append(ring)
    classes.append(np.full(ring_nodes, ROAD_HIGHWAY))
    mid = k // 2
    grid_ends = [idx[k - 1, mid], idx[mid, k - 1], idx[0, mid], idx[mid, 0]]  # north, east, south, west
    ramp_targets = [ring0 + (q * ring_nodes) // 4 for q in range(4)]
    ramps = np.array(list(zip(grid_ends, ramp_targets, strict=True)), dtype=np.int64)
    pairs.append(ramps)
    classes.append(np.full(4, ROAD_RAMP))
    all_pairs = np.concatenate(pairs)
    all_classes = np.concatenate(classes)
    limits = np.array([40.0, 60.0, 110.0, 70.0])[all_classes] / 3.6
    return build_network(
        origin_lat_deg,
        origin_lon_deg,
        xs,
        ys,
        lights,
        all_pairs,
        limits,
        all_classes,
        np.ones(len(all_pairs), dtype=bool),
    )
