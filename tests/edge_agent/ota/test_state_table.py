"""The install state machine's one transition table (edge_agent.ota.state) and its saved record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.ota.state import (
    AFTER_SWITCH,
    BEFORE_SWITCH,
    TERMINAL,
    TRANSITIONS,
    Event,
    Job,
    JobError,
    State,
    TransitionError,
    add_transition,
    next_state,
)

# What each state's action may post (edge_agent.ota.install_actions); every one needs an edge.
POSTS = {
    State.PRECONDITIONS: {Event.ACCEPTED, Event.REFUSED},
    State.WRITE: {Event.WRITTEN, Event.WRITE_FAILED},
    State.VERIFY: {Event.VERIFIED, Event.VERIFY_FAILED},
    State.SWITCH: {Event.SWITCHED, Event.SWITCH_FAILED},
    State.REBOOT: {Event.BOOTED_NEW, Event.FELL_BACK},
    State.HEALTH_CHECK: {Event.HEALTHY, Event.UNHEALTHY},
    State.COMMIT: {Event.COMMITTED, Event.COMMIT_FAILED},
    State.ROLLBACK: {Event.ROLLED_BACK},
}


def test_the_happy_path() -> None:
    path = [State.PRECONDITIONS]
    for event in (
        Event.ACCEPTED,
        Event.WRITTEN,
        Event.VERIFIED,
        Event.SWITCHED,
        Event.BOOTED_NEW,
        Event.HEALTHY,
        Event.COMMITTED,
    ):
        path.append(next_state(path[-1], event))
    assert path[-1] is State.INSTALLED
    assert path[1:] == [
        State.WRITE,
        State.VERIFY,
        State.SWITCH,
        State.REBOOT,
        State.HEALTH_CHECK,
        State.COMMIT,
        State.INSTALLED,
    ]


def test_every_event_an_action_posts_has_an_edge() -> None:
    for state, events in POSTS.items():
        for event in events:
            next_state(state, event)
    assert set(POSTS) | TERMINAL == set(State)


def test_restarts_abandon_before_the_switch_and_boot_again_after_it() -> None:
    for state in BEFORE_SWITCH:
        assert next_state(state, Event.RESTARTED) is State.FAILED
        assert next_state(state, Event.LOOP_DETECTED) is State.FAILED
    for state in AFTER_SWITCH:
        assert next_state(state, Event.RESTARTED) is State.REBOOT
        assert next_state(state, Event.LOOP_DETECTED) is State.ROLLBACK
    for state in TERMINAL | {State.ROLLBACK}:
        assert next_state(state, Event.RESTARTED) is state  # finished again, reported again
        with pytest.raises(TransitionError):
            next_state(state, Event.LOOP_DETECTED)  # the ways out are never capped


def test_a_failure_after_the_switch_always_leads_to_the_rollback() -> None:
    for state in AFTER_SWITCH:
        failures = {e for e in POSTS[state] if e not in (Event.BOOTED_NEW, Event.HEALTHY, Event.COMMITTED)}
        assert {next_state(state, e) for e in failures} == {State.ROLLBACK}
    assert next_state(State.ROLLBACK, Event.ROLLED_BACK) is State.ROLLED_BACK


def test_terminal_states_have_no_way_forward_and_edges_are_unique() -> None:
    for (source, event), target in TRANSITIONS.items():
        if source in TERMINAL:
            assert (event, target) == (Event.RESTARTED, source)
    with pytest.raises(ValueError, match="duplicate"):
        add_transition(State.WRITE, Event.WRITTEN, State.VERIFY)
    with pytest.raises(TransitionError):
        next_state(State.WRITE, Event.HEALTHY)


@given(st.lists(st.booleans(), max_size=60), st.lists(st.integers(0, 5), max_size=60))
def test_every_run_of_the_table_ends_in_a_result(restarts: list[bool], choices: list[int]) -> None:
    """Follow the table with any choice of posted events and restarts (within the save cap): a
    result is reached, and a restart before the switch never lets the install go on."""
    state, switched, saves = State.PRECONDITIONS, False, 0
    for i in range(200):
        if state in TERMINAL:
            break
        saves += 1
        if saves > 28 and state not in (TERMINAL | {State.ROLLBACK}):
            state = next_state(state, Event.LOOP_DETECTED)
            continue
        restart = restarts[i] if i < len(restarts) else False
        if restart:
            new = next_state(state, Event.RESTARTED)
            if state in BEFORE_SWITCH:
                assert new is State.FAILED
        else:
            options = sorted(POSTS[state])
            new = next_state(state, options[(choices[i] if i < len(choices) else 0) % len(options)])
        switched = switched or new is State.REBOOT
        state = new
    assert state in TERMINAL
    if state is State.INSTALLED:
        assert switched
    if not switched:
        assert state in (State.FAILED, State.REFUSED)


def _job(**changes: object) -> Job:
    base = Job(
        install_id="offer-1",
        state=State.VERIFY,
        artifact_path="/x/ecm.bin",
        ecu="ECM",
        version="4.3.0",
        sha256="ab" * 32,
        length_bytes=10,
        hardware_id="ecm-b12",
        target="b",
        from_version="4.2.1",
        saves=3,
        refusals=(("power", "12 V battery at 11.8 V"),),
    )
    return Job(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})  # type: ignore[arg-type]


def test_the_record_round_trips_and_a_bad_one_is_refused() -> None:
    job = _job()
    assert Job.from_json(job.to_json()) == job
    for bad in (
        b"",
        b"{}",
        b'{"schema": 2}',
        job.to_json().replace(b'"verify"', b'"flying"'),
        job.to_json().replace(b'"ECM"', b'".."'),
        job.to_json().replace(b'"target": "b"', b'"target": "c"'),
        job.to_json().replace(b'"saves": 3', b'"saves": "3"'),
    ):
        with pytest.raises(JobError):
            Job.from_json(bad)
