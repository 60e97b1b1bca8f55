"""Road hazards at fixed places: potholes, slippery stretches and dangerous junctions.

Owns: placing hazards on the network (seeded), whether each is active at an instant (some are
repaired mid-run, after which they leave no trace), and their effect on passing vehicles:
a vertical-acceleration spike growing with speed over a pothole, ABS/TCS interventions on a
slippery stretch, harsh braking approaching a dangerous junction (the motion kernel brakes; this
module tells it where). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulators.motion import RoadContext
from simulators.roads import ROAD_ARTERIAL, ROAD_HIGHWAY, ROAD_LOCAL, RoadNetwork
from simulators.scenario import HazardSpec

EMERGENCY_ABS_DECEL_MS2 = 6.5


@dataclass(frozen=True)
class HazardPlan:
    kind: np.ndarray  # object (H,)
    active_from_s: np.ndarray
    active_until_s: np.ndarray  # +inf when never repaired
    severity: np.ndarray
    pothole_offset_by_edge: np.ndarray  # (n_edges,) NaN where no pothole
    pothole_by_edge: np.ndarray  # hazard index or -1
    slippery_by_edge: np.ndarray
    junction_by_node: np.ndarray
    records: list[dict[str, Any]] = field(default_factory=list)

    def active(self, t_s: float) -> np.ndarray:
        return (self.active_from_s <= t_s) & (t_s < self.active_until_s)


def place_hazards(rng: np.random.Generator, net: RoadNetwork, specs: tuple[HazardSpec, ...]) -> HazardPlan:
    """Put each requested hazard on a distinct road piece or junction. Raises ValueError when the
    network has no room for them."""
    pothole_off = np.full(net.n_edges, np.nan)
    pothole_by = np.full(net.n_edges, -1)
    slippery_by = np.full(net.n_edges, -1)
    junction_by = np.full(net.n_nodes, -1)
    kinds: list[str] = []
    t_from: list[float] = []
    t_until: list[float] = []
    sev: list[float] = []
    records: list[dict[str, Any]] = []
    street = np.flatnonzero(np.isin(net.edge_class, (ROAD_LOCAL, ROAD_ARTERIAL)) & (net.edge_length_m > 40))
    fast = np.flatnonzero(np.isin(net.edge_class, (ROAD_ARTERIAL, ROAD_HIGHWAY)) & (net.edge_length_m > 80))
    lights = np.flatnonzero(net.has_light)
    junctions = lights if lights.size else np.flatnonzero(np.diff(net.out_start) >= 3)
    for spec in specs:
        for _ in range(spec.count):
            h = len(kinds)
            if spec.kind == "junction":
                free = junctions[junction_by[junctions] < 0]
                if free.size == 0:
                    raise ValueError("no junction left for a dangerous-junction hazard")
                node = int(rng.choice(free))
                junction_by[node] = h
                x, y = float(net.node_x_m[node]), float(net.node_y_m[node])
                extra: dict[str, Any] = {"node": node}
            else:
                pool = street if spec.kind == "pothole" else (fast if fast.size else street)
                taken = (pothole_by[pool] >= 0) | (slippery_by[pool] >= 0)
                free = pool[~taken]
                if free.size == 0:
                    raise ValueError(f"no road left for a {spec.kind} hazard")
                e = int(rng.choice(free))
                r = int(net.reverse[e])
                frac = float(rng.uniform(0.3, 0.7)) if spec.kind == "pothole" else 0.5
                length = float(net.edge_length_m[e])
                s, d = net.edge_src[e], net.edge_dst[e]
                x = float(net.node_x_m[s] + frac * (net.node_x_m[d] - net.node_x_m[s]))
                y = float(net.node_y_m[s] + frac * (net.node_y_m[d] - net.node_y_m[s]))
                if spec.kind == "pothole":
                    pothole_by[e], pothole_off[e] = h, frac * length
                    if r >= 0:
                        pothole_by[r], pothole_off[r] = h, (1 - frac) * float(net.edge_length_m[r])
                    extra = {"edge": e}
                else:
                    slippery_by[e] = h
                    if r >= 0:
                        slippery_by[r] = h
                    extra = {"edge": e, "length_m": round(length, 1)}
            lat, lon = net.to_latlon(np.array(x), np.array(y))
            until = spec.repaired_at_s if spec.repaired_at_s is not None else np.inf
            kinds.append(spec.kind)
            t_from.append(spec.active_from_s)
            t_until.append(until)
            sev.append(spec.severity)
            records.append(
                {
                    "hazard_id": h,
                    "kind": spec.kind,
                    "lat": float(lat),
                    "lon": float(lon),
                    "x_m": x,
                    "y_m": y,
                    "active_from_s": spec.active_from_s,
                    "repaired_at_s": spec.repaired_at_s,
                    "severity": spec.severity,
                    **extra,
                }
            )
    return HazardPlan(
        kind=np.array(kinds, dtype=object),
        active_from_s=np.array(t_from, dtype=np.float64),
        active_until_s=np.array(t_until, dtype=np.float64),
        severity=np.array(sev, dtype=np.float64),
        pothole_offset_by_edge=pothole_off,
        pothole_by_edge=pothole_by,
        slippery_by_edge=slippery_by,
        junction_by_node=junction_by,
        records=records,
    )


def road_context(plan: HazardPlan, t_s: float) -> RoadContext:
    """What the motion kernel must know about active hazards at `t_s`."""
    active = np.append(plan.active(t_s), False)  # index -1 (no hazard) reads the appended False
    return RoadContext(
        slippery_edge=active[plan.slippery_by_edge], junction_node=active[plan.junction_by_node]
    )


def pothole_hits(
    plan: HazardPlan,
    t_s: float,
    prev_edge: np.ndarray,
    prev_offset_m: np.ndarray,
    edge: np.ndarray,
    offset_m: np.ndarray,
) -> np.ndarray:
    """Index of the active pothole each vehicle drove over in this step, or -1."""
    active = np.append(plan.active(t_s), False)
    pe = plan.pothole_offset_by_edge[prev_edge]
    moved_on = edge != prev_edge
    with np.errstate(invalid="ignore"):
        hit_prev = (prev_offset_m < pe) & (moved_on | (offset_m >= pe))
        ne = plan.pothole_offset_by_edge[edge]
        hit_next = moved_on & (offset_m >= ne)
    hit_prev &= active[plan.pothole_by_edge[prev_edge]]
    hit_next &= active[plan.pothole_by_edge[edge]]
    return np.where(
        hit_prev, plan.pothole_by_edge[prev_edge], np.where(hit_next, plan.pothole_by_edge[edge], -1)
    )


def stability_flags(
    rng: np.random.Generator, accel_ms2: np.ndarray, speed_ms: np.ndarray, on_slippery: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ABS engaged, TCS engaged): on a slippery stretch braking locks wheels and pulling away
    spins them; elsewhere only emergency stops trigger ABS and TCS is very rare."""
    u = rng.random((2, accel_ms2.shape[0]))
    moving = speed_ms > 1.0
    abs_on = (on_slippery & (accel_ms2 < -0.8) & (u[0] < 0.85)) | (accel_ms2 < -EMERGENCY_ABS_DECEL_MS2)
    tcs_on = on_slippery & moving & (((accel_ms2 > 0.3) & (u[1] < 0.7)) | (u[1] < 0.08))
    tcs_on |= moving & (u[1] > 1.0 - 1e-5)
    return abs_on, tcs_on


def vertical_spike_ms2(plan: HazardPlan, hit: np.ndarray, speed_ms: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Peak vertical acceleration from the pothole each vehicle hit (0 where none): grows with speed."""
    sev = np.append(plan.severity, 0.0)[hit]
    return np.where(hit >= 0, sev * (2.0 + 0.55 * speed_ms) * (0.8 + 0.4 * u), 0.0)
