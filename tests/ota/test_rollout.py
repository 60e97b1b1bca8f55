"""The rollout rules: one transition table, random but stable waves, and the wave gate (soak,
health gate, error threshold, failure cap, empty waves)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ota.rollout import (
    TRANSITIONS,
    Event,
    Member,
    Policy,
    Status,
    TransitionError,
    VehicleState,
    Verdict,
    joiner_wave,
    judge_wave,
    offer_timed_out,
    transition,
    wave_of,
    wave_sizes,
)

POLICY = Policy(soak_s=600.0)


def test_only_the_table_moves_a_campaign() -> None:
    assert transition(Status.PROPOSED, Event.APPROVE) is Status.APPROVED
    assert transition(Status.RUNNING, Event.PAUSE) is Status.PAUSED
    for status in Status:
        for event in Event:
            if (status, event) not in TRANSITIONS:
                with pytest.raises(TransitionError):
                    transition(status, event)
    assert all(transition(s, Event.CANCEL) is Status.CANCELLED for s in (Status.RUNNING, Status.PAUSED))


def test_waves_are_random_stable_and_near_their_shares() -> None:
    ids = [f"V{i:05d}" for i in range(20_000)]
    sizes = wave_sizes(7, ids, POLICY)
    assert sum(sizes) == len(ids)
    shares = [s / len(ids) for s in sizes]
    for got, want in zip(shares, (0.01, 0.09, 0.40, 0.50), strict=True):
        assert abs(got - want) < 0.02
    assert wave_sizes(7, ids, POLICY) == sizes  # stable
    assert wave_sizes(8, ids, POLICY) != sizes  # another campaign draws anew


@given(st.integers(0, 10**6), st.text(min_size=1, max_size=12), st.integers(0, 3))
def test_a_late_joiner_never_lands_in_the_open_wave_or_a_closed_one(
    campaign: int, vid: str, open_wave: int
) -> None:
    wave = joiner_wave(campaign, vid, POLICY, open_wave)
    assert wave > open_wave or wave == open_wave == 3
    assert wave == max(wave_of(campaign, vid, POLICY), min(open_wave + 1, 3))
    assert joiner_wave(campaign, vid, POLICY, None) == wave_of(campaign, vid, POLICY)


def members(*states: tuple[VehicleState, float | None, float | None]) -> list[Member]:
    return [Member(f"V{i}", s, c, a) for i, (s, c, a) in enumerate(states)]


def test_a_wave_advances_only_after_the_soak_and_finishes_after_the_last() -> None:
    ok = members(*[(VehicleState.COMMITTED, 0.0, None)] * 20)
    assert judge_wave(ok, POLICY, now_s=100.0, wave=0).verdict is Verdict.WAIT  # soaking
    gate = judge_wave(ok, POLICY, now_s=600.0, wave=0)
    assert (gate.verdict, gate.successes) == (Verdict.NEXT_WAVE, 20)
    assert judge_wave(ok, POLICY, now_s=600.0, wave=3).verdict is Verdict.FINISH
    assert judge_wave([], POLICY, now_s=0.0, wave=1).verdict is Verdict.NEXT_WAVE  # empty: done


def test_the_health_gate_counts_a_new_alarm_within_the_soak_as_a_failure() -> None:
    states = [(VehicleState.COMMITTED, 0.0, None)] * 19 + [(VehicleState.COMMITTED, 0.0, 300.0)]
    gate = judge_wave(members(*states), POLICY, now_s=1000.0, wave=0)
    assert (gate.verdict, gate.failures) == (Verdict.PAUSE, 1)
    late_alarm = [(VehicleState.COMMITTED, 0.0, None)] * 19 + [(VehicleState.COMMITTED, 0.0, 900.0)]
    assert judge_wave(members(*late_alarm), POLICY, now_s=1000.0, wave=0).verdict is Verdict.NEXT_WAVE


def test_failures_pause_at_the_error_threshold_or_the_campaign_cap() -> None:
    wave = [(VehicleState.COMMITTED, 0.0, None)] * 95 + [(VehicleState.OFFERED, None, None)] * 4
    wave.append((VehicleState.ROLLED_BACK, None, None))
    gate = judge_wave(members(*wave), POLICY, now_s=10_000.0, wave=1)
    assert gate.verdict is Verdict.NEXT_WAVE  # 1 of 100 < 5%, 95 succeeded
    wave[-5:] = [(VehicleState.FAILED, None, None)] * 5
    assert judge_wave(members(*wave), POLICY, now_s=10_000.0, wave=1).verdict is Verdict.PAUSE
    one = members((VehicleState.FAILED, None, None), *[(VehicleState.COMMITTED, 0.0, None)] * 99)
    gate = judge_wave(one, POLICY, now_s=10_000.0, wave=2, failures_before=19)
    assert gate.verdict is Verdict.PAUSE and "cap" in gate.reason


@settings(max_examples=200)
@given(st.lists(st.sampled_from(list(VehicleState)), max_size=60), st.floats(0, 5000))
def test_the_gate_never_advances_past_failures_it_should_pause_on(states, now_s) -> None:  # noqa: ANN001
    ms = [Member(f"V{i}", s, 0.0 if s is VehicleState.COMMITTED else None) for i, s in enumerate(states)]
    gate = judge_wave(ms, POLICY, now_s=now_s, wave=0)
    counted = [m for m in ms if m.state is not VehicleState.EXCLUDED]
    assert gate.successes + gate.failures + gate.in_progress + gate.soaking + gate.timed_out == len(counted)
    answered = len(counted) - gate.timed_out  # the shares are of the vehicles not timed out
    if gate.verdict is Verdict.NEXT_WAVE and counted:
        assert answered > 0  # never passed on no evidence
        assert gate.failures < max(1, POLICY.error_threshold * answered)
        assert gate.successes >= POLICY.success_threshold * answered


def test_a_bad_policy_is_refused() -> None:
    for bad in ({"waves_pct": (10.0, 5.0, 100.0)}, {"waves_pct": (50.0,)}, {"success_threshold": 0.0},
                {"max_failures": 0}, {"soak_s": -1.0}):  # fmt: skip
        with pytest.raises(ValueError):
            Policy(**bad)  # type: ignore[arg-type]


def test_silent_vehicles_count_apart_and_never_stall_a_wave() -> None:
    policy = Policy(success_threshold=0.95, error_threshold=0.5, max_failures=100, soak_s=600.0)
    done = [Member(f"V{k}", VehicleState.COMMITTED, committed_s=0.0) for k in range(18)]
    silent = [Member(f"S{k}", VehicleState.TIMED_OUT) for k in range(2)]
    waiting = [Member(f"S{k}", VehicleState.OFFERED) for k in range(2)]
    # Two offers still open: 18 of 20 is below 95 %, the wave waits for them.
    assert judge_wave(done + waiting, policy, now_s=1000.0, wave=0).verdict is Verdict.WAIT
    # Timed out: 18 of the 18 that answered succeeded; the two are counted apart, not as successes.
    gate = judge_wave(done + silent, policy, now_s=1000.0, wave=0)
    assert (gate.verdict, gate.successes, gate.failures, gate.timed_out) == (Verdict.NEXT_WAVE, 18, 0, 2)
    assert gate.reason == "wave 1: 18 of 18 succeeded after the soak; 2 timed out without a report"
    # The error threshold is a share of the vehicles that answered, too: 1 of 2 fails.
    few = [done[0], Member("F", VehicleState.FAILED)] + [
        Member(f"T{k}", VehicleState.TIMED_OUT) for k in range(8)
    ]
    assert judge_wave(few, policy, now_s=1000.0, wave=0).verdict is Verdict.PAUSE
    # No vehicle answered at all: no evidence to pass the wave on, a person looks.
    gate = judge_wave(silent, policy, now_s=1000.0, wave=3)
    assert gate.verdict is Verdict.PAUSE and "no vehicle answered" in gate.reason
    # Timed out members accepted by a person (a resume) are left out: the wave is empty, done.
    gate = judge_wave([Member("S", VehicleState.EXCLUDED)], policy, now_s=1000.0, wave=3)
    assert gate.verdict is Verdict.FINISH


def test_an_offer_times_out_after_the_campaigns_offer_timeout() -> None:
    policy = Policy(offer_timeout_s=3600.0)
    assert not offer_timed_out(1000.0, 4599.9, policy)
    assert offer_timed_out(1000.0, 4600.0, policy)
    assert Policy().offer_timeout_s == 3 * 86400.0
    with pytest.raises(ValueError, match="offer_timeout_s"):
        Policy(offer_timeout_s=0.0)
