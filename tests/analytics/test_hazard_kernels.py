"""The hazard map's kernels: events, sites, passes and the evidence replay, with hypothesis
properties (a constant signal raises no event; shifting time changes nothing; the clustering does
not depend on input order; two incremental reads give the events of one)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.columns import TelemetryColumns
from analytics.hazards.config import DEFAULT, KINDS
from analytics.hazards.events import (
    ABS,
    ACCEL_LONG,
    ACCEL_VERT,
    HEADING,
    LAT,
    LON,
    SPEED,
    TCS,
    HazardEvents,
    extract_events,
)
from analytics.hazards.evidence import replay, wilson_lower, wilson_upper
from analytics.hazards.geo import east_north_m, offset_latlon
from analytics.hazards.passes import find_passes
from analytics.hazards.sites import Shapes, cluster, shapes_of
from tests.analytics.hazard_data import hazard_scenario
from tests.analytics.simulated import SimulatedRun, simulate

S = 1_000_000_000
LAT0, LON0 = 48.137, 11.575
POTHOLE, SLIPPERY, JUNCTION = (KINDS.index(k) for k in ("pothole", "slippery", "junction"))


@pytest.fixture(scope="module")
def small() -> SimulatedRun:
    from analytics.hazards.events import SIGNALS

    return simulate(hazard_scenario(3, vehicles=80, duration_s=900.0), SIGNALS)


def drive(
    n: int,
    *,
    speed_kmh: float = 50.0,
    heading: float = 90.0,
    z: np.ndarray | None = None,
    ax: np.ndarray | None = None,
    abs_on: np.ndarray | None = None,
    start: tuple[float, float] = (0.0, 0.0),
    t0_s: int = 1_700_000_000,
) -> TelemetryColumns:
    """One vehicle at 1 Hz along a straight road (east by default), from `start` metres."""
    step = speed_kmh / 3.6
    along = np.arange(n) * step
    h = np.radians(heading)
    lat, lon = offset_latlon(
        np.full(n, LAT0), np.full(n, LON0), start[0] + along * np.sin(h), start[1] + along * np.cos(h)
    )
    zeros = np.zeros(n)
    values = {
        SPEED: np.full(n, speed_kmh),
        LAT: lat,
        LON: lon,
        HEADING: np.full(n, heading),
        ACCEL_VERT: zeros if z is None else z,
        ACCEL_LONG: zeros if ax is None else ax,
        ABS: zeros if abs_on is None else abs_on,
        TCS: zeros,
    }
    return TelemetryColumns(("V1",), np.zeros(n, dtype=np.int32), (t0_s + np.arange(n)) * S, values)


def _event_set(ev: HazardEvents, ids: tuple[str, ...]) -> set[tuple[str, int, int]]:
    return {(ids[int(v)], int(t), int(k)) for v, t, k in zip(ev.vehicle, ev.ts_ns, ev.kind, strict=True)}


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 60),
    speed=st.floats(0.0, 200.0),
    z=st.floats(-30.0, 30.0),
    ax=st.floats(-12.0, 6.0),
    flag=st.booleans(),
)
def test_a_constant_signal_raises_no_event(n: int, speed: float, z: float, ax: float, flag: bool) -> None:
    on = np.full(n, float(flag))
    cols = drive(n, speed_kmh=speed, z=np.full(n, z), ax=np.full(n, ax), abs_on=on)
    assert len(extract_events(cols)) == 0


def test_each_kind_is_found_once_where_it_happens() -> None:
    n = 40
    z, ax, abs_on = np.zeros(n), np.zeros(n), np.zeros(n)
    z[10] = 8.0  # a pothole hit
    ax[20:22] = -5.0  # one harsh brake over two samples
    abs_on[30:33] = 1.0  # ABS under gentle braking: low friction
    ax[30:33] = -1.5
    ev = extract_events(drive(n, z=z, ax=ax, abs_on=abs_on))
    assert [(int(k), int((t // S) - 1_700_000_000)) for k, t in zip(ev.kind, ev.ts_ns, strict=True)] == [
        (POTHOLE, 10),
        (JUNCTION, 20),
        (SLIPPERY, 30),
    ]
    # Placed at the middle of the interval: half a step (6.9 m at 50 km/h) before the sample.
    east, _ = east_north_m(LAT0, LON0, ev.lat[0], ev.lon[0])
    assert east == pytest.approx(9.5 * 50 / 3.6, abs=0.01)


def test_slow_jolts_and_hard_stops_on_dry_road_are_not_events() -> None:
    n = 20
    z, ax, abs_on = np.zeros(n), np.zeros(n), np.zeros(n)
    z[5] = 8.0
    ev = extract_events(drive(n, speed_kmh=8.0, z=z))  # under the speed gate
    assert len(ev) == 0
    abs_on[10], ax[10] = 1.0, -7.5  # an emergency stop: ABS is expected on any road
    ev = extract_events(drive(n, ax=ax, abs_on=abs_on))
    assert set(ev.kind.tolist()) == {JUNCTION}


@settings(max_examples=15, deadline=None)
@given(shift_s=st.integers(-(10**6), 10**6))
def test_shifting_time_changes_no_event(small: SimulatedRun, shift_s: int) -> None:
    cols = small.columns
    moved = TelemetryColumns(cols.vehicle_ids, cols.vehicle, cols.ts_ns + shift_s * S, cols.values)
    a, b = extract_events(cols), extract_events(moved)
    assert np.array_equal(a.ts_ns + shift_s * S, b.ts_ns)
    assert np.array_equal(a.kind, b.kind) and np.allclose(a.lat, b.lat) and np.allclose(a.lon, b.lon)


@settings(max_examples=15, deadline=None)
@given(cut_fraction=st.floats(0.05, 0.95))
def test_two_incremental_reads_give_the_events_of_one(small: SimulatedRun, cut_fraction: float) -> None:
    cols = small.columns
    cut = int(cols.ts_ns.min() + cut_fraction * (cols.ts_ns.max() - cols.ts_ns.min()))
    context = int(DEFAULT.max_interval_s * S)

    def part(keep: np.ndarray) -> TelemetryColumns:
        return TelemetryColumns(
            cols.vehicle_ids,
            cols.vehicle[keep],
            cols.ts_ns[keep],
            {k: v[keep] for k, v in cols.values.items()},
        )

    first = extract_events(part(cols.ts_ns < cut))
    second = extract_events(part(cols.ts_ns >= cut - context))
    second = second.take(np.flatnonzero(second.ts_ns >= cut))
    ids = cols.vehicle_ids
    assert _event_set(first, ids) | _event_set(second, ids) == _event_set(extract_events(cols), ids)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_clustering_does_not_depend_on_input_order(small: SimulatedRun, seed: int) -> None:
    ev = extract_events(small.columns)
    order = np.random.default_rng(seed).permutation(len(ev))
    shuffled = ev.take(order)
    a = cluster(ev.kind, ev.lat, ev.lon, DEFAULT)
    b = cluster(shuffled.kind, shuffled.lat, shuffled.lon, DEFAULT)
    groups_a = {frozenset(np.flatnonzero(a == g).tolist()) for g in np.unique(a)}
    groups_b = {frozenset(order[b == g].tolist()) for g in np.unique(b)}
    assert groups_a == groups_b
    sa = shapes_of(a, ev.kind, ev.lat, ev.lon, ev.heading_deg)
    sb = shapes_of(b, shuffled.kind, shuffled.lat, shuffled.lon, shuffled.heading_deg)
    key_a = sorted(
        zip(sa.kind.tolist(), np.round(sa.lat, 7).tolist(), np.round(sa.lon, 7).tolist(), strict=True)
    )
    key_b = sorted(
        zip(sb.kind.tolist(), np.round(sb.lat, 7).tolist(), np.round(sb.lon, 7).tolist(), strict=True)
    )
    assert key_a == key_b


def test_a_junction_sits_where_the_approaches_meet() -> None:
    # Harsh brakes 10–35 m before a junction at the origin, on its north and east arms.
    dist = np.array([10.0, 20.0, 35.0, 15.0, 30.0])
    heading = np.array([180.0, 180.0, 180.0, 270.0, 270.0])  # driving south, driving west
    east = np.where(heading == 270.0, dist, 0.0)
    north = np.where(heading == 180.0, dist, 0.0)
    lat, lon = offset_latlon(np.full(5, LAT0), np.full(5, LON0), east, north)
    shapes = shapes_of(np.zeros(5, dtype=np.int64), np.full(5, JUNCTION, dtype=np.int8), lat, lon, heading)
    e, nn = east_north_m(LAT0, LON0, shapes.lat, shapes.lon)
    assert np.hypot(e, nn)[0] < 2.0  # the weak pull towards the events' median costs about a metre


def test_a_pass_counts_along_the_road_at_speed_only() -> None:
    site = Shapes(
        np.array([POTHOLE], dtype=np.int8),
        *offset_latlon(np.array([LAT0]), np.array([LON0]), np.array([100.0]), np.array([0.0])),
        np.array([90.0]),
        np.array([0.0]),
    )  # noqa: E501
    empty = extract_events(drive(2))
    none = np.zeros(0, dtype=np.int64)
    along = find_passes(drive(30), site, empty, none, np.zeros(1, dtype=np.int64), DEFAULT)
    assert len(along) == 1 and not along.with_event[0]
    across = drive(30, heading=0.0, start=(100.0, -100.0))  # a crossing street through the same spot
    assert len(find_passes(across, site, empty, none, np.zeros(1, dtype=np.int64), DEFAULT)) == 0
    slow = drive(60, speed_kmh=8.0, start=(80.0, 0.0))
    assert len(find_passes(slow, site, empty, none, np.zeros(1, dtype=np.int64), DEFAULT)) == 0


def _replay(events: list[tuple[int, int]], passes: list[tuple[int, bool]], now_s: int, kind: str = "pothole"):
    """One site: events as (time s, vehicle key), passes as (time s, with an event)."""
    ev_ts = np.array([t for t, _ in events], dtype=np.int64) * S
    ps_ts = np.array([t for t, _ in passes], dtype=np.int64) * S
    return replay(
        1, np.array([DEFAULT.rules(kind).min_event_rate]),
        np.zeros(len(events), dtype=np.int64), ev_ts, np.array([k for _, k in events], dtype=np.int64),
        np.zeros(len(passes), dtype=np.int64), ps_ts, np.array([w for _, w in passes], dtype=bool),
        now_s * S, DEFAULT,
    )  # fmt: skip


def test_k_vehicles_confirm_and_clean_passes_withdraw_after_a_quiet_spell() -> None:
    hits = [(10 * i, i % 5) for i in range(1, 11)]  # ten hits by five vehicles, every pass felt it
    felt = [(t, True) for t, _ in hits]
    evd = _replay(hits, felt, 100)
    assert evd.state[0] == "confirmed" and evd.vehicles[0] == 5
    assert evd.intervals[0] == [[30 * S, None]]  # from the third distinct vehicle on
    quiet = [(100 + 60 * i, False) for i in range(1, 20)]  # repaired: one clean pass a minute
    evd = _replay(hits, felt + quiet, 100 + 60 * 20)
    assert evd.state[0] == "retracted"
    withdrawn = evd.intervals[0][0][1]
    assert withdrawn is not None and withdrawn >= (100 + DEFAULT.min_quiet_s) * S


def test_two_vehicles_do_not_make_a_hazard_and_order_does_not_matter() -> None:
    hits = [(10 * i, i % 2) for i in range(1, 11)]
    felt = [(t, True) for t, _ in hits]
    assert _replay(hits, felt, 200).state[0] == "candidate"
    three = hits + [(105, 2)]
    a = _replay(three, felt + [(105, True)], 200)
    b = _replay(three[::-1], (felt + [(105, True)])[::-1], 200)
    assert a.state[0] == b.state[0] == "confirmed" and a.intervals == b.intervals


def test_a_busy_junction_with_rare_harsh_brakes_is_no_hazard() -> None:
    brakes = [(60 * i, i) for i in range(1, 6)]  # five drivers over 500 passes: ordinary traffic
    passes = [(6 * i + 1, False) for i in range(500)] + [(t, True) for t, _ in brakes]
    assert _replay(brakes, passes, 4000, "junction").state[0] == "candidate"


@given(k=st.integers(0, 50), extra=st.integers(0, 50))
def test_the_wilson_bounds_hold_the_share(k: int, extra: int) -> None:
    n = k + extra
    lower = wilson_lower(np.array([k]), np.array([n]), 1.645)[0]
    upper = wilson_upper(np.array([k]), np.array([n]), 1.645)[0]
    share = k / n if n else None
    assert 0.0 <= lower <= upper <= 1.0
    if share is not None:
        assert lower <= share + 1e-12 and share <= upper + 1e-12
