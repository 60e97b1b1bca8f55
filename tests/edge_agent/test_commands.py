"""The commands of the downlink `command` topic: what the agent acts on, and every way a payload is
refused (with its reason), never an exception other than CommandError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.update import UpdateOffer
from edge_agent.commands import (
    BAD_CONSENT,
    BAD_OFFER,
    NO_TYPE,
    NOT_HANDLED,
    NOT_JSON,
    TOO_LARGE,
    UNKNOWN_TYPE,
    CommandError,
    Consent,
    parse_command,
)

OFFER = UpdateOffer(
    offer_id="offer-1",
    nonce="n" * 43,
    issued_at_us=1_780_000_000_000_000,
    ecu="ECM",
    target="ECM/4.3.0/ecm.bin",
    version="4.3.0",
    urgency="soft",
    repository_url="https://ota.example.com/",
)


def test_an_offer_and_a_consent_are_recognised() -> None:
    assert parse_command(OFFER.encode()) == OFFER
    assert parse_command(b'{"type": "consent", "offer_id": "offer-1", "given": false}') == Consent(
        "offer-1", False
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", NOT_JSON),
        (b"not json", NOT_JSON),
        (b"[1]", NOT_JSON),
        (b"{}", NO_TYPE),
        (b'{"type": 3}', NO_TYPE),
        (b'{"type": "reboot"}', UNKNOWN_TYPE),
        (b'{"type": "update_offer", "offer_id": "x"}', BAD_OFFER),
        (json.dumps({**OFFER.as_json(), "urgency": "now"}).encode(), BAD_OFFER),
        (b'{"type": "consent", "offer_id": "../x", "given": true}', BAD_CONSENT),
        (b'{"type": "consent", "offer_id": "offer-1", "given": 1}', BAD_CONSENT),
        (b" " * 9000, TOO_LARGE),
        (b'{"type": "notice", "notification_id": 7, "title": "Brake pads"}', NOT_HANDLED),
    ],
)
def test_what_is_not_a_command_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(payload)
    assert caught.value.reason == reason


@given(
    st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda c: (
            st.lists(c, max_size=3)
            | st.dictionaries(st.sampled_from(["type", "offer_id", "given", "x"]), c, max_size=4)
        ),
        max_leaves=8,
    ).map(lambda d: json.dumps(d).encode())
)
def test_any_payload_is_a_command_or_a_command_error(payload: bytes) -> None:
    try:
        command = parse_command(payload)
    except CommandError as exc:
        assert exc.reason in (NOT_JSON, NO_TYPE, UNKNOWN_TYPE, BAD_OFFER, BAD_CONSENT, TOO_LARGE, NOT_HANDLED)
    else:
        assert isinstance(command, UpdateOffer | Consent)
