"""Persistence rules: sustain, hold, gaps, escalation and flat-lined evidence, on pinned rows."""

from __future__ import annotations

import numpy as np

from analytics.detectors.persistence import Persistence, markers, transitions

S = 1_000_000_000


def _run(
    t_s: list[float], level: list[int], good: list[bool], rule: Persistence, values: list[float] | None = None
) -> list[tuple[float, int, float]]:
    """(time s, level, since s) of each transition of one vehicle."""
    ts = np.array(t_s, float) * S
    vehicle = np.zeros(len(t_s), np.int32)
    mk = markers(
        vehicle,
        ts.astype(np.int64),
        np.array(level),
        np.array(good),
        rule,
        varying=None if values is None else np.array(values, float),
    )
    tr = transitions(vehicle, (mk,))
    return [(ts[r] / S, int(lv), s / S) for r, lv, s in zip(tr.row, tr.level, tr.since_ns, strict=True)]


RULE = Persistence(raise_s=5.0, raise_rows=3, clear_s=4.0, clear_rows=2, gap_cap_s=2.0)


def test_raises_once_sustained_and_clears_after_the_hold() -> None:
    t = list(range(20))
    level = [0] * 3 + [2] * 8 + [0] * 9
    good = [True] * 3 + [False] * 8 + [True] * 9
    # good 0-2 s is too short to clear; bad from 3 s: sustained 5 s at 8 s; good from 11 s: held
    # 4 s at 15 s.
    assert _run(t, level, good, RULE) == [(8.0, 2, 3.0), (15.0, 0, 11.0)]


def test_unjudged_rows_neither_break_nor_extend_a_streak_but_a_good_row_breaks_it() -> None:
    t = list(range(12))
    level = [2, 2, 2, 0, 0, 2, 2, 2, 2, 2, 2, 2]
    good = [False, False, False, False, True, False, False, False, False, False, False, False]
    # rows 0-2 bad, 3 unjudged, 4 good (breaks), bad again from 5 s: raised at 10 s.
    assert _run(t, level, good, RULE) == [(10.0, 2, 5.0)]


def test_a_long_gap_counts_only_its_cap() -> None:
    t = [0, 1, 3601, 3602]
    # 1 + 2 (capped) + 1 = 4 s < 5 s: not sustained, however long the parked hour.
    assert _run(t, [2] * 4, [False] * 4, RULE) == []
    assert _run([0, 1, 3601, 3602, 3603], [2] * 5, [False] * 5, RULE) == [(3603.0, 2, 0.0)]


def test_severity_escalates_within_an_episode_and_never_drops() -> None:
    t = list(range(20))
    level = [2] * 6 + [3] * 6 + [2] * 8
    assert _run(t, level, [False] * 20, RULE) == [(5.0, 2, 0.0), (11.0, 3, 0.0)]


def test_a_flat_lined_value_is_no_evidence() -> None:
    t = list(range(10))
    assert _run(t, [2] * 10, [False] * 10, RULE, values=[11.5] * 10) == []
    assert _run(t, [2] * 10, [False] * 10, RULE, values=[11.5] * 9 + [11.4]) == [(9.0, 2, 0.0)]


def test_vehicles_are_independent_and_two_rules_combine() -> None:
    ts = (np.arange(10) * S).astype(np.int64)
    ts = np.concatenate([ts, ts])
    vehicle = np.repeat(np.array([0, 1], np.int32), 10)
    bad = np.concatenate([np.full(10, 2), np.zeros(10, int)])
    a = markers(vehicle, ts, bad, bad == 0, RULE)
    b = markers(vehicle, ts, np.where(np.arange(20) >= 15, 4, 0), np.arange(20) < 15, RULE)
    tr = transitions(vehicle, (a, b))
    got = [
        (int(vehicle[r]), int(ts[r] // S), int(lv), int(rule))
        for r, lv, rule in zip(tr.row, tr.level, tr.rule, strict=True)
    ]
    # vehicle 0: rule b is clear at 4 s and rule a raises at 5 s (raised: any rule raised);
    # vehicle 1: both clear at 4 s; rule b's bad rows (5-9 s) span 4 s, too short to raise.
    assert got == [(0, 4, 0, -1), (0, 5, 2, 0), (1, 4, 0, -1)]
