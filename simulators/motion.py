"""Where each vehicle is and how fast it goes: trips over the road network, stops, lights, parking.

Owns: the motion kernel, a pure function of (state, network, random generator) for the whole fleet.
Speed changes only through the longitudinal acceleration the kernel reports, so the speed signal
is exactly the integral of the acceleration signal (before sensor noise), and distance is the
trapezoid of speed, so the odometer never goes backwards. No I/O, no clock: time comes in as `t_s`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from simulators.roads import ROAD_ARTERIAL, RoadNetwork

PARKED, DRIVING, WAITING = 0, 1, 2
RED_LIGHT_PROBABILITY = 0.4
COMFORT_DECEL_MS2 = 1.2  # start braking for a stop when the needed deceleration exceeds this
HARSH_DECEL_MS2 = 5.0  # about 0.5 g: a harsh brake by every threshold in use
MAX_LAT_ACCEL_MS2 = 3.0  # heading follows the road no faster than this lateral acceleration allows
NIGHT_FROM_H, NIGHT_TO_H = 23.0, 6.0
BACKGROUND_HARSH_PROBABILITY = 0.003  # per edge entered: ordinary drivers brake hard now and then


@dataclass(frozen=True)
class MotionState:
    edge: np.ndarray  # int64, current directed edge
    offset_m: np.ndarray  # distance from the edge's start
    speed_ms: np.ndarray
    heading_deg: np.ndarray
    mode: np.ndarray  # int8: PARKED, DRIVING, WAITING
    wait_s: np.ndarray  # remaining parking or red-light time
    trip_left_m: np.ndarray
    stop_at_end: np.ndarray  # bool: this edge ends in a stop (red light or destination)
    harsh_pending: np.ndarray  # bool: will brake hard before the end of this edge
    harsh_s: np.ndarray  # remaining seconds of a harsh brake
    aggression: np.ndarray  # fraction of the speed limit this driver aims for


@dataclass(frozen=True)
class RoadContext:
    """Hazards as the motion kernel sees them at this instant (see `simulators.hazards`)."""

    slippery_edge: np.ndarray  # bool (n_edges,)
    junction_node: np.ndarray  # bool (n_nodes,)
    junction_harsh_probability: float = 0.35


@dataclass(frozen=True)
class MotionStep:
    state: MotionState
    accel_ms2: np.ndarray  # mean longitudinal acceleration over the step
    distance_m: np.ndarray
    yaw_rate_dps: np.ndarray
    engine_start: np.ndarray  # bool: trip began this step
    prev_edge: np.ndarray
    prev_offset_m: np.ndarray
    on_slippery: np.ndarray
    harsh_start: np.ndarray  # bool: a harsh brake began this step (ground truth for driving scores)


def initial_motion(
    net: RoadNetwork, rng: np.random.Generator, n: int, driving_share: float, mean_parking_s: float
) -> MotionState:
    edge = rng.integers(0, net.n_edges, n)
    driving = rng.random(n) < driving_share
    offset = rng.random(n) * net.edge_length_m[edge] * 0.8
    return MotionState(
        edge=edge,
        offset_m=offset,
        speed_ms=np.where(driving, rng.uniform(0.3, 0.9, n) * net.edge_speed_limit_ms[edge], 0.0),
        heading_deg=net.edge_heading_deg[edge].copy(),
        mode=np.where(driving, DRIVING, PARKED).astype(np.int8),
        wait_s=np.where(driving, 0.0, rng.exponential(mean_parking_s / 3, n)),
        trip_left_m=np.where(driving, rng.uniform(1_500, 12_000, n), 0.0),
        stop_at_end=np.zeros(n, dtype=bool),
        harsh_pending=np.zeros(n, dtype=bool),
        harsh_s=np.zeros(n),
        aggression=rng.uniform(0.85, 1.1, n),
    )


def local_hour(t_unix_s: float, utc_offset_h: float) -> float:
    return ((t_unix_s / 3600.0) + utc_offset_h) % 24.0


def step_motion(
    st: MotionState,
    net: RoadNetwork,
    road: RoadContext,
    max_accel_ms2: np.ndarray,
    rng: np.random.Generator,
    *,
    t_unix_s: float,
    dt_s: float,
    utc_offset_h: float,
    mean_parking_s: float,
    trip_length_m: tuple[float, float] = (1_500.0, 13_500.0),
) -> MotionStep:
    """Advance every vehicle by `dt_s`. Random draws are made for the whole fleet in a fixed order,
    so one seed gives one history whatever the fleet does."""
    n = st.edge.shape[0]
    u = rng.random((6, n))
    aggression = np.clip(st.aggression + rng.normal(0.0, 0.01, n), 0.8, 1.15)  # drivers vary their pace
    mode = st.mode.copy()
    wait = st.wait_s - dt_s
    trip_left = st.trip_left_m.copy()
    # Parked vehicles whose time is up start a trip; waiting ones drive on.
    start = (mode == PARKED) & (wait <= 0)
    trip_left = np.where(start, trip_length_m[0] + u[0] * (trip_length_m[1] - trip_length_m[0]), trip_left)
    mode[start | ((mode == WAITING) & (wait <= 0))] = DRIVING
    driving = mode == DRIVING
    # Speed control: cruise towards the driver's share of the limit, brake for a planned stop.
    on_slippery = road.slippery_edge[st.edge]
    target = net.edge_speed_limit_ms[st.edge] * aggression * np.where(on_slippery, 0.6, 1.0)
    v = st.speed_ms
    accel = np.clip((target - v) / 3.0, -3.0, max_accel_ms2)
    remaining = net.edge_length_m[st.edge] - st.offset_m
    need = v * v / (2.0 * np.maximum(remaining - 1.0, 0.5))
    braking = st.stop_at_end & (need > COMFORT_DECEL_MS2)
    accel = np.where(braking, -np.minimum(need, 8.0), accel)
    harsh_now = st.harsh_pending & (remaining < 40.0) & (v > 6.0)
    harsh_s = np.where(harsh_now, 1.0 + (u[1] < 0.5), np.maximum(st.harsh_s - dt_s, 0.0))
    harsh_pending = st.harsh_pending & ~harsh_now
    accel = np.where(harsh_s > 0, -(HARSH_DECEL_MS2 + u[2] * 1.5), accel)
    accel = np.where(driving, accel, 0.0)
    v_new = np.maximum(v + accel * dt_s, 0.0)
    v_new = np.where(driving, v_new, 0.0)
    length = net.edge_length_m[st.edge]
    stop_at_end = st.stop_at_end.copy()
    reach_m = st.offset_m + (v + v_new) * 0.5 * dt_s
    arrived = driving & stop_at_end & ((reach_m >= length - 0.5) | (v_new == 0.0))
    v_new = np.where(arrived, 0.0, v_new)  # it pulls up at the stop line
    accel = (v_new - v) / dt_s  # exactly what the speed did
    dist = (v + v_new) * 0.5 * dt_s
    offset = np.where(arrived, length, st.offset_m + dist)
    trip_left = trip_left - dist
    trip_done = arrived & (trip_left <= 50.0)
    park_s = _parking_duration(u[3], u[4], t_unix_s, utc_offset_h, mean_parking_s)
    mode = np.where(trip_done, PARKED, np.where(arrived, WAITING, mode)).astype(np.int8)
    wait = np.where(trip_done, park_s, np.where(arrived, 5.0 + 40.0 * u[5], np.maximum(wait, 0.0)))
    stop_at_end = stop_at_end & ~arrived
    edge = st.edge.copy()
    over = driving & ~arrived & (offset >= length)
    for _ in range(8):  # short edges (OSM) may be crossed several at a time
        idx = np.flatnonzero(over)
        if idx.size == 0:
            break
        nxt = _next_edges(net, edge[idx], rng.random(idx.size))
        offset[idx] -= net.edge_length_m[edge[idx]]
        edge[idx] = nxt
        draw = rng.random((2, idx.size))
        # Trips end on streets only: nobody parks on the motorway or a ramp.
        ends_trip = (trip_left[idx] <= net.edge_length_m[nxt]) & (net.edge_class[nxt] <= ROAD_ARTERIAL)
        red = net.has_light[net.edge_dst[nxt]] & (draw[0] < RED_LIGHT_PROBABILITY)
        stop_at_end[idx] = ends_trip | red
        harsh_p = np.where(road.junction_node[net.edge_dst[nxt]], road.junction_harsh_probability, 0.0)
        harsh_pending[idx] = draw[1] < harsh_p + BACKGROUND_HARSH_PROBABILITY
        offset[idx] = np.minimum(offset[idx], net.edge_length_m[nxt])
        over[idx] = offset[idx] >= net.edge_length_m[nxt]
    heading, yaw = _follow_heading(st.heading_deg, net.edge_heading_deg[edge], (v + v_new) * 0.5, dt_s)
    state = dataclasses.replace(
        st,
        edge=edge,
        offset_m=offset,
        speed_ms=v_new,
        heading_deg=heading,
        mode=mode,
        wait_s=wait,
        trip_left_m=trip_left,
        stop_at_end=stop_at_end,
        harsh_pending=harsh_pending,
        harsh_s=harsh_s,
        aggression=aggression,
    )
    return MotionStep(
        state, accel, dist, yaw, start, st.edge, st.offset_m, on_slippery & driving, harsh_now & driving
    )


def _next_edges(net: RoadNetwork, edge: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A random exit of each edge's end node, avoiding a U-turn when there is another way."""
    node = net.edge_dst[edge]
    first = net.out_start[node]
    count = net.out_start[node + 1] - first
    k = np.minimum((u * count).astype(np.int64), count - 1)
    cand = net.out_edges[first + k]
    uturn = (cand == net.reverse[edge]) & (count > 1)
    k = np.where(uturn, (k + 1) % np.maximum(count, 1), k)
    return net.out_edges[first + k]


def _follow_heading(
    heading_deg: np.ndarray, road_deg: np.ndarray, speed_ms: np.ndarray, dt_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Turn towards the road's heading with a bounded yaw rate; returns (heading, yaw rate deg/s)."""
    diff = (road_deg - heading_deg + 180.0) % 360.0 - 180.0
    max_rate_dps = np.degrees(MAX_LAT_ACCEL_MS2 / np.maximum(speed_ms, 2.0))
    max_rate_dps = np.minimum(max_rate_dps, 45.0)
    turn = np.clip(diff, -max_rate_dps * dt_s, max_rate_dps * dt_s)
    return (heading_deg + turn) % 360.0, turn / dt_s


def _parking_duration(
    u1: np.ndarray, u2: np.ndarray, t_unix_s: float, utc_offset_h: float, mean_parking_s: float
) -> np.ndarray:
    """Parking time of vehicles that arrive now: exponential by day; at night until morning."""
    park = 120.0 - mean_parking_s * np.log1p(-u1 * 0.999)
    hour_then = (local_hour(t_unix_s, utc_offset_h) + park / 3600.0) % 24.0
    night = (hour_then >= NIGHT_FROM_H) | (hour_then < NIGHT_TO_H)
    until_morning_h = (NIGHT_TO_H - hour_then) % 24.0 + 3.0 * u2
    return np.where(night, park + until_morning_h * 3600.0, park)
