"""Condition-triggered capture: firing, minimum interval, and the full-rate window it sends."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.campaign import parse_campaign
from edge_agent.collector import PRIORITY_HIGH, Collector, new_dtc_flags
from edge_agent.trigger import TriggerState, fire_times

S = 1_000_000_000
LONG = "Vehicle.Acceleration.Longitudinal"


@given(st.lists(st.booleans(), max_size=100), st.integers(0, 30), st.lists(st.integers(0, 100), max_size=4))
def test_min_interval_holds_and_chunking_does_not_matter(cond, min_interval_rows, cuts) -> None:  # noqa: ANN001
    c = np.array(cond, dtype=bool)
    ts = np.arange(c.size, dtype=np.int64) * S // 10
    kw = dict(rising_edge=True, min_interval_ns=min_interval_rows * S // 10)
    whole, _ = fire_times(ts, c, **kw)
    state, pieces = TriggerState(), []
    bounds = sorted({min(x, c.size) for x in cuts})
    for lo, hi in zip([0, *bounds], [*bounds, c.size], strict=True):
        fired, state = fire_times(ts[lo:hi], c[lo:hi], state=state, **kw)
        pieces.extend(fired)
    assert pieces == whole
    assert all(b - a >= kw["min_interval_ns"] for a, b in zip(whole, whole[1:], strict=False))
    rising = {int(ts[i]) for i in range(c.size) if c[i] and (i == 0 or not c[i - 1])}
    assert set(whole) <= rising


def test_hard_brake_sends_full_rate_window_once() -> None:
    campaign = parse_campaign(
        json.dumps(
            {
                "campaign_id": "c",
                "version": 1,
                "flush_interval_s": 1.0,
                "signals": [{"path": "Vehicle.Speed", "period_ms": 1000}],
                "triggers": [
                    {
                        "name": "brake",
                        "condition": f"{LONG} < -0.4 * g",
                        "pre_s": 2,
                        "post_s": 1,
                        "min_interval_s": 60,
                    }
                ],
            }
        )
    )
    collector = Collector(campaign)
    assert collector.paths == ("Vehicle.Speed", LONG)
    ts = np.arange(100, dtype=np.int64) * S // 10  # 10 s at 10 Hz
    accel = np.zeros(100)
    accel[50:55] = -5.0  # brake at t = 5.0 s
    accel[80:85] = -5.0  # again at 8.0 s: inside the minimum interval, ignored
    values = np.column_stack([np.full(100, 50.0), accel])
    chunks = []
    for lo in range(0, 100, 10):  # one flush per second
        chunks += collector.process(ts[lo : lo + 10], values[lo : lo + 10])
    windows = [c for c in chunks if c.reason == "trigger:brake"]
    assert len(windows) == 1 and windows[0].priority == PRIORITY_HIGH
    w = windows[0]
    np.testing.assert_array_equal(w.ts_ns, ts[30:61])  # 2 s before to 1 s after, every row
    assert not np.isnan(w.columns[LONG]).any()
    # Speed rows already sent by the periodic path (whole seconds) are not sent twice.
    periodic_ts = np.concatenate([c.ts_ns for c in chunks if c.reason == "periodic"])
    sent_speed = w.ts_ns[~np.isnan(w.columns["Vehicle.Speed"])]
    assert not set(sent_speed.tolist()) & set(periodic_ts.tolist())
    assert np.isnan(w.columns["Vehicle.Speed"]).sum() == 4  # at 3, 4, 5 and 6 s


def test_new_dtc_flags() -> None:
    flags, known = new_dtc_flags(
        frozenset(),
        [None, frozenset({"P0301"}), frozenset({"P0301"}), frozenset(), None, frozenset({"P0301"})],
    )
    np.testing.assert_array_equal(flags, [0, 1, 0, 0, 0, 1])
    assert known == {"P0301"}


def test_merge_chunks_aligns_columns_and_refuses_time_going_back() -> None:
    from edge_agent.collector import merge_chunks

    a = (np.array([1000, 2000]), {"Vehicle.Speed": np.array([1.0, 2.0])})
    b = (np.array([3000]), {LONG: np.array([-1.0])})
    [(ts, cols)] = merge_chunks([a, b])
    np.testing.assert_array_equal(ts, [1000, 2000, 3000])
    np.testing.assert_array_equal(cols["Vehicle.Speed"], [1.0, 2.0, np.nan])
    np.testing.assert_array_equal(cols[LONG], [np.nan, np.nan, -1.0])
    assert len(merge_chunks([b, a])) == 2  # clock set back: kept apart, each still valid


def test_window_condition_reaches_back_across_flushes() -> None:
    """`avg(speed, 3) > 50` needs rows of earlier flushes: cutting the same rows into 1 s flushes
    or one 10 s flush fires at the same instant."""
    campaign = parse_campaign(
        json.dumps(
            {
                "campaign_id": "w",
                "version": 1,
                "flush_interval_s": 1.0,
                "signals": [{"path": LONG, "period_ms": 1000}],
                "triggers": [
                    {"name": "fast", "condition": "avg(Vehicle.Speed, 3) > 50", "pre_s": 0, "post_s": 0}
                ],
            }
        )
    )
    ts = np.arange(100, dtype=np.int64) * S // 10
    speed = np.where(np.arange(100) >= 40, 80.0, 20.0)  # 20 km/h, then 80 from t = 4 s
    values = np.column_stack([np.zeros(100), speed])
    fired = []
    for step in (10, 100):
        collector = Collector(campaign)
        assert collector.paths == (LONG, "Vehicle.Speed")
        chunks = []
        for lo in range(0, 100, step):
            chunks += collector.process(ts[lo : lo + step], values[lo : lo + step])
        fired.append([int(c.ts_ns[0]) for c in chunks if c.reason == "trigger:fast"])
    # mean over (t - 3 s, t] exceeds 50 once more than half the 30 rows are 80: at t = 5.5 s
    assert fired[0] == fired[1] == [55 * S // 10]
