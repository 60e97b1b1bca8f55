"""The A/B boot marker (edge_agent.ota.bootstate): RAUC's marks and the bootloader's choice keep one
slot bootable whatever sequence of operations and restarts happens."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.ota import bootstate as bs
from edge_agent.ota.bootstate import BAD, GOOD, BootError, BootState, Mark, SlotMark


def test_an_install_in_raucs_order_then_a_commit() -> None:
    state = bs.initial()
    assert (state.booted, state.a, state.b) == ("a", GOOD, BAD)
    state = bs.mark_bad(state, "b")  # before writing b
    state = bs.mark_active(state, "b", tries=3)
    assert state.order == ("b", "a") and state.b == SlotMark(Mark.TENTATIVE, 3) and state.booted == "a"
    state = bs.boot(state)  # the restart: b is tried, one try spent
    assert state.booted == "b" and state.b.tries_left == 2
    state = bs.mark_good(state, "b")  # the booted side confirms it after the health check
    assert state.b == GOOD and state.a == GOOD  # a stays good: the fallback
    assert bs.boot(state).booted == "b"


def test_an_unconfirmed_slot_falls_back_after_its_tries() -> None:
    state = bs.mark_active(bs.mark_bad(bs.initial(), "b"), "b", tries=2)
    booted = [(state := bs.boot(state)).booted for _ in range(3)]
    assert booted == ["b", "b", "a"]
    assert state.b == BAD and state.order == ("a", "b")
    assert bs.boot(state).booted == "a"


def test_a_rollback_boots_the_old_slot_and_marks_the_new_one_bad() -> None:
    state = bs.boot(bs.mark_active(bs.mark_bad(bs.initial(), "b"), "b", tries=3))
    back = bs.fall_back(state, "b")
    assert (back.booted, back.b, back.a, back.order) == ("a", BAD, GOOD, ("a", "b"))
    assert bs.fall_back(back, "b") == back  # again after a power cut: nothing changes


def test_the_running_or_only_good_slot_is_never_marked_bad() -> None:
    state = bs.initial()
    with pytest.raises(BootError):
        bs.mark_bad(state, "a")  # booted
    tentative = bs.boot(bs.mark_active(bs.mark_bad(state, "b"), "b", tries=1))
    with pytest.raises(BootError):
        bs.mark_bad(tentative, "a")  # b runs only tentatively: a is the only good slot
    with pytest.raises(BootError):
        bs.mark_active(state, "a", tries=1)
    with pytest.raises(BootError):
        bs.mark_good(state, "b")  # not booted
    with pytest.raises(BootError):
        bs.mark_active(bs.mark_bad(state, "b"), "b", tries=0)


def test_the_marker_round_trips_and_garbage_is_refused() -> None:
    state = bs.boot(bs.mark_active(bs.mark_bad(bs.initial(), "b"), "b", tries=3))
    assert BootState.from_json(state.to_json()) == state
    for bad in (
        b"",
        b"[]",
        b'{"order": ["a", "b"]}',
        b'{"order": ["a", "a"], "booted": "a", "slots": {"a": {"mark": "good"}, "b": {"mark": "good"}}}',
        b'{"order": ["a", "b"], "booted": "b", "slots": {"a": {"mark": "good"}, "b": {"mark": "bad"}}}',
        b'{"order": ["a", "b"], "booted": "a", "slots": {"a": {"mark": "bad"}, "b": {"mark": "tentative"}}}',
        b'{"order": ["a", "b"], "booted": "a", "slots": {"a": {"mark": "good"}, "b": {"mark": "x"}}}',
        b'{"order": ["a", "b"], "booted": "a", "slots": {"a": {"mark": "good", "tries_left": -1}, "b": {}}}',
    ):
        with pytest.raises(BootError):
            BootState.from_json(bad)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_parse_or_raise_boot_error(data: bytes) -> None:
    try:
        state = BootState.from_json(data)
    except BootError:
        return
    assert state.is_valid()


OPS = st.lists(
    st.tuples(
        st.sampled_from(["mark_bad", "mark_active", "boot", "mark_good", "fall_back", "settle"]),
        st.sampled_from(["a", "b"]),
        st.integers(1, 3),
    ),
    max_size=40,
)


@settings(max_examples=400)
@given(OPS)
def test_any_sequence_of_operations_leaves_a_bootable_slot(ops: list[tuple[str, str, int]]) -> None:
    """Whatever is attempted, in whatever order (a refused operation changes nothing, as a power
    cut before the marker's rename), a good slot remains and the booted slot can boot."""
    state = bs.initial()
    for op, slot, tries in ops:
        try:
            match op:
                case "mark_bad":
                    state = bs.mark_bad(state, slot)
                case "mark_active":
                    state = bs.mark_active(state, slot, tries)
                case "boot":
                    state = bs.boot(state)
                case "mark_good":
                    state = bs.mark_good(state, slot)
                case "fall_back":
                    state = bs.fall_back(state, slot)
                case "settle":
                    state = bs.settle(state)
        except BootError:
            pass
        assert state.is_valid(), (op, slot, state)
        assert BootState.from_json(state.to_json()) == state
        assert bs.boot(state).is_valid()
