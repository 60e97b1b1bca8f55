"""The status message shapes: bare online/offline, the agent's JSON check-in, and what is refused."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.errors import DeadLetterReason, DecodeError
from contract.status import StatusReport, parse_status_message


def test_bare_states_and_the_check_in() -> None:
    assert parse_status_message(b"offline") == StatusReport("offline")
    assert parse_status_message(b"online\n") == StatusReport("online")
    doc = {"state": "online", "vehicle_id": "V-1", "campaign_id": "c", "campaign_version": 3}
    assert parse_status_message(json.dumps(doc).encode()) == StatusReport("online", "V-1", doc)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", DeadLetterReason.BAD_STATUS_MESSAGE),
        (b"maybe", DeadLetterReason.BAD_STATUS_MESSAGE),
        (b"[]", DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "asleep"}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "vehicle_id": 7}', DeadLetterReason.BAD_VEHICLE_ID),
        (b'{"state": "online", "vehicle_id": ""}', DeadLetterReason.BAD_VEHICLE_ID),
        (b'{"state": "online", "vehicle_id": "a/b"}', DeadLetterReason.BAD_VEHICLE_ID),
        (b'{"state": "online", "n": NaN}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "n": Infinity}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "n": -Infinity}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "n": 1e999}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "n": ' + b"9" * 5000 + b"}", DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "n": 9223372036854775808}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "note": "\\u0000"}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "note": "a\\\\\\u0000"}', DeadLetterReason.BAD_STATUS_MESSAGE),  # \\ then NUL
        (b'{"state": "online", "note": "\\ud800"}', DeadLetterReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "pad": "' + b"x" * 20_000 + b'"}', DeadLetterReason.OVERSIZED),
    ],
)
def test_refused_shapes(payload: bytes, reason: DeadLetterReason) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_status_message(payload)
    assert caught.value.reason is reason


def test_text_that_only_looks_like_an_escaped_nul_is_kept() -> None:
    for note in ("\\u0000", "\\\\\\u0000", "u0000"):  # a backslash and "u0000" is no NUL
        doc = {"state": "online", "note": note}
        assert parse_status_message(json.dumps(doc).encode()).details == doc


def test_numbers_within_int64_and_finite_doubles_are_kept() -> None:
    doc = {"state": "online", "big": 2**63 - 1, "small": -(2**63), "x": 1.5e308, "y": -0.0}
    assert parse_status_message(json.dumps(doc).encode()).details == doc


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_status_message(payload)
