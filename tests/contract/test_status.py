"""The status message shapes: bare online/offline, the agent's JSON check-in, and what is refused."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.errors import DecodeError, DecodeReason
from contract.status import StatusReport, parse_status_message


def test_bare_states_and_the_check_in() -> None:
    assert parse_status_message(b"offline") == StatusReport("offline")
    assert parse_status_message(b"online\n") == StatusReport("online")
    doc = {"state": "online", "vehicle_id": "V-1", "campaign_id": "c", "campaign_version": 3}
    assert parse_status_message(json.dumps(doc).encode()) == StatusReport("online", "V-1", doc)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", DecodeReason.BAD_STATUS_MESSAGE),
        (b"maybe", DecodeReason.BAD_STATUS_MESSAGE),
        (b"[]", DecodeReason.BAD_STATUS_MESSAGE),
        (b'{"state": "asleep"}', DecodeReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "vehicle_id": 7}', DecodeReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "note": "\\u0000"}', DecodeReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "note": "\\ud800"}', DecodeReason.BAD_STATUS_MESSAGE),
        (b'{"state": "online", "pad": "' + b"x" * 20_000 + b'"}', DecodeReason.OVERSIZED),
    ],
)
def test_refused_shapes(payload: bytes, reason: DecodeReason) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_status_message(payload)
    assert caught.value.reason is reason


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_status_message(payload)
