"""The streak-based fast path gives exactly the row-by-row persistence rules' transitions, for any
rows, levels, rules and values (hypothesis), and the single-severity form agrees with it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.detectors.persistence import Persistence, Transitions, markers, transitions
from analytics.detectors.streaks import flag_changes, rule_changes

S = 1_000_000_000


@st.composite
def cases(
    draw: st.DrawFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Persistence, np.ndarray | None]:
    n = draw(st.integers(0, 60))
    vehicle = np.sort(np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int32))
    gaps = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    ts = np.cumsum(np.array(gaps, dtype=np.int64)) * S  # sorted per vehicle as well
    levels = draw(st.sampled_from([(0, 2), (0, 3, 4), (0, 2, 3, 4)]))
    level = np.array(draw(st.lists(st.sampled_from(levels), min_size=n, max_size=n)), dtype=np.int64)
    good = (level == 0) & np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    values = None
    if draw(st.booleans()):
        values = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=n, max_size=n)))
    rule = Persistence(
        raise_s=draw(st.integers(0, 10)),
        raise_rows=draw(st.integers(0, 4)),
        clear_s=draw(st.integers(0, 10)),
        clear_rows=draw(st.integers(0, 4)),
        gap_cap_s=draw(st.integers(1, 5)),
    )
    return vehicle, ts, level, good, rule, values


def _same(a: Transitions, b: Transitions) -> None:
    for name in ("row", "level", "since_ns", "rule"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_rule_changes_are_the_row_by_row_transitions(case: tuple) -> None:  # noqa: ANN001
    vehicle, ts, level, good, rule, values = case
    reference = transitions(vehicle, (markers(vehicle, ts, level, good, rule, varying=values),))
    _same(rule_changes(vehicle, ts, level, good, rule, varying=values), reference)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_flag_changes_agree_for_one_severity(case: tuple) -> None:  # noqa: ANN001
    vehicle, ts, level, good, rule, values = case
    bad = (level > 0) & ~good
    judged = bad | good
    expected = rule_changes(vehicle, ts, np.where(bad, 3, 0), good, rule, varying=values)
    _same(flag_changes(vehicle, ts, judged, bad, 3, rule, varying=values), expected)
