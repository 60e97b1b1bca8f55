"""Periodic sampling, deadband and change-only: pure, and independent of where flushes cut."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sampling import SamplerState, select_samples

MS = 1_000_000


def test_one_sample_per_period_aligned_to_the_clock() -> None:
    ts = np.arange(0, 3000 * MS, 100 * MS)
    mask, _ = select_samples(ts, np.arange(ts.size, dtype=float), period_ns=1000 * MS)
    np.testing.assert_array_equal(ts[mask], [0, 1000 * MS, 2000 * MS])


def test_deadband_and_change_only() -> None:
    ts = np.arange(6) * 100 * MS
    values = np.array([10.0, 10.2, 10.6, 10.7, 11.2, 11.2])
    mask, state = select_samples(ts, values, period_ns=100 * MS, deadband=0.5)
    np.testing.assert_array_equal(values[mask], [10.0, 10.6, 11.2])
    assert state.last_sent == 11.2
    mask, _ = select_samples(ts, np.array([1.0, 1, 2, 2, 1, np.nan]), period_ns=100 * MS, change_only=True)
    np.testing.assert_array_equal(mask, [1, 0, 1, 0, 1, 0])


def _run(ts: np.ndarray, values: np.ndarray, cuts: list[int], **kw) -> np.ndarray:  # noqa: ANN003
    state = SamplerState()
    out = []
    for lo, hi in zip([0, *cuts], [*cuts, ts.size], strict=True):
        mask, state = select_samples(ts[lo:hi], values[lo:hi], state=state, **kw)
        out.append(mask)
    return np.concatenate(out)


values_st = st.lists(st.one_of(st.floats(-100, 100), st.just(float("nan"))), min_size=1, max_size=80)


@given(
    values_st,
    st.lists(st.integers(0, 80), max_size=5),
    st.sampled_from([100, 250, 1000]),
    st.sampled_from([0.0, 0.5, 5.0]),
    st.booleans(),
)
def test_flush_boundaries_do_not_change_the_result(values, cuts, period_ms, deadband, change_only) -> None:  # noqa: ANN001
    v = np.array(values)
    ts = np.arange(v.size, dtype=np.int64) * 100 * MS
    cuts = sorted({min(c, v.size) for c in cuts})
    kw = dict(period_ns=period_ms * MS, deadband=deadband, change_only=change_only)
    np.testing.assert_array_equal(_run(ts, v, cuts, **kw), _run(ts, v, [], **kw))


@given(values_st, st.sampled_from([0.1, 1.0, 5.0]))
def test_sent_values_always_moved_by_more_than_the_deadband(values, deadband) -> None:  # noqa: ANN001
    v = np.array(values)
    mask, _ = select_samples(np.arange(v.size) * 100 * MS, v, period_ns=100 * MS, deadband=deadband)
    sent = v[mask]
    assert not np.isnan(sent).any()
    assert (np.abs(np.diff(sent)) > deadband).all()
    if (~np.isnan(v)).any():
        assert mask[np.flatnonzero(~np.isnan(v))[0]]  # the first present sample is always sent
