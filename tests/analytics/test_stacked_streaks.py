"""Several series over the same judged rows at once (`stacked_flag_changes`, what the stuck-sensor
detector runs for every signal of a vehicle state) give each series' own `judged_flag_changes`,
for any rows, keys, bad rows and raise times (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.detectors.persistence import Persistence
from analytics.detectors.streaks import judged_flag_changes, judged_rows, stacked_flag_changes

S = 1_000_000_000


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Persistence]]:
    m = draw(st.integers(0, 60))
    n_series = draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    key = np.sort(rng.integers(0, 4, m))
    ts = np.cumsum(rng.integers(0, 7, m)).astype(np.int64) * S  # per key ascending too
    share = draw(st.sampled_from([0.1, 0.5, 0.9]))
    bad = rng.random((n_series, m)) < share
    shared = {
        "raise_rows": draw(st.integers(0, 4)),
        "clear_s": draw(st.integers(0, 8)),
        "clear_rows": draw(st.integers(0, 4)),
        "gap_cap_s": draw(st.integers(1, 5)),
    }
    rules = [Persistence(raise_s=draw(st.integers(0, 12)), **shared) for _ in range(n_series)]
    return key, ts, bad, rules


@settings(max_examples=400, deadline=None)
@given(cases())
def test_stacked_series_are_each_series_alone(case: tuple) -> None:  # noqa: ANN001
    key, ts, bad, rules = case
    gap = rules[0].gap_cap_s if rules else 1.0
    rows = judged_rows(key, ts, gap)
    stacked = stacked_flag_changes(rows, bad, 2, rules)
    assert len(stacked) == len(rules)
    for k, rule in enumerate(rules):
        alone = judged_flag_changes(rows, bad[k], 2, rule)
        for name in ("row", "level", "since_ns", "rule"):
            np.testing.assert_array_equal(getattr(stacked[k], name), getattr(alone, name), err_msg=name)


def test_rules_that_differ_in_more_than_the_raise_time_are_refused() -> None:
    rows = judged_rows(np.zeros(3, dtype=np.int64), np.arange(3) * S, 10.0)
    rules = [Persistence(1.0, 2, 0.0, 3, gap_cap_s=10.0), Persistence(1.0, 2, 0.0, 4, gap_cap_s=10.0)]
    with pytest.raises(ValueError):
        stacked_flag_changes(rows, np.zeros((2, 3), dtype=bool), 2, rules)
