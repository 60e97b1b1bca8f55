"""The software inventory shapes: what an agent writes parses back to the same entries, and
anything else is a DecodeError with the caller's reason, never another exception."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given
from hypothesis import strategies as st

from contract.errors import DeadLetterReason, DecodeError
from contract.software import EcuSoftware, parse_inventory, parse_versions, versions_of
from contract.status import parse_status_message

TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=64)
ECUS = st.from_regex(r"\A[A-Za-z0-9_.-]{1,32}\Z", fullmatch=True)
REASON = DeadLetterReason.BAD_STATUS_MESSAGE


@given(st.dictionaries(ECUS, st.tuples(TEXT, TEXT | st.just("")), max_size=32))
def test_an_inventory_round_trips_through_a_check_in(entries: dict[str, tuple[str, str]]) -> None:
    inventory = [EcuSoftware(ecu, version, hw) for ecu, (version, hw) in entries.items()]
    doc = {"state": "online", "agent_version": "0.1.0", "software": [e.as_json() for e in inventory]}
    report = parse_status_message(json.dumps(doc).encode())
    assert report.software == tuple(sorted(inventory)) and report.agent_version == "0.1.0"
    assert parse_versions(versions_of(report.software), REASON) == tuple(
        sorted(versions_of(inventory).items())
    )


def test_a_check_in_without_an_inventory_reports_none() -> None:
    assert parse_status_message(b'{"state": "online"}').software is None
    assert parse_status_message(b'{"state": "online", "software": []}').software == ()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=40), c, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_anything_else_is_a_decode_error(value: object) -> None:
    for parse in (parse_inventory, parse_versions):
        with contextlib.suppress(DecodeError):
            parse(value, REASON)
