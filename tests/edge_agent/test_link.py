"""Reconnect backoff: exponential, capped, jittered (pure)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.link import backoff_delay_s


@given(st.integers(0, 100), st.integers(0, 2**32))
def test_backoff_is_capped_and_jittered(attempt: int, seed: int) -> None:
    delay = backoff_delay_s(attempt, 0.5, 30.0, random.Random(seed))
    capped = min(30.0, 0.5 * 2**attempt)
    assert capped / 2 <= delay <= capped


def test_backoff_spreads_a_fleet() -> None:
    delays = {round(backoff_delay_s(5, 0.5, 30.0, random.Random(s)), 3) for s in range(100)}
    assert len(delays) > 90  # vehicles do not reconnect in lock-step after a broker restart
