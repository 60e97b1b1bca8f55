"""The DTC message codec: what the agent and simulator send decodes to the same report, and
anything else is a DecodeError with a stable reason, never another exception."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.dtc import DTC_SCHEMA, DTC_SCHEMA_V1, DtcReport, dtc_message, parse_dtc_message
from contract.errors import DeadLetterReason, DecodeError
from contract.timestamps import MAX_TS_US

CODES = st.from_regex(r"\A[PCBU][0-3][0-9A-F]{3}\Z", fullmatch=True)
VEHICLES = st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z", fullmatch=True)


@given(
    vehicle=VEHICLES,
    ts_us=st.integers(0, MAX_TS_US),
    codes=st.lists(CODES, max_size=20),
    agent=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=64),
    software=st.dictionaries(
        st.from_regex(r"\A[A-Za-z0-9_.-]{1,32}\Z", fullmatch=True),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=64),
        max_size=32,
    ),
)
def test_round_trip(vehicle: str, ts_us: int, codes: list[str], agent: str, software: dict[str, str]) -> None:
    report = parse_dtc_message(dtc_message(vehicle, ts_us, codes, agent_version=agent, software=software))
    expected = DtcReport(vehicle, ts_us, tuple(sorted(set(codes))), agent, tuple(sorted(software.items())))
    assert report == expected


def _doc(**change: object) -> bytes:
    doc: dict[str, object] = {
        "schema": DTC_SCHEMA,
        "vehicle_id": "V-1",
        "ts_us": 1_764_250_000_000_000,
        "codes": ["P0301"],
        "agent_version": "0.1.0",
        "software": {"ECM": "4.2.0"},
    }
    doc.update(change)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", DeadLetterReason.BAD_DTC_MESSAGE),
        (b"\xff\xfe", DeadLetterReason.BAD_DTC_MESSAGE),
        (b"[1, 2]", DeadLetterReason.BAD_DTC_MESSAGE),
        (b"[" * 100_000, DeadLetterReason.OVERSIZED),
        (b"[" * 10_000, DeadLetterReason.BAD_DTC_MESSAGE),  # deep nesting: RecursionError is caught
        (_doc(schema="fleetpulse.dtc.v0"), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(vehicle_id="bad/id"), DeadLetterReason.BAD_VEHICLE_ID),
        (_doc(vehicle_id=...), DeadLetterReason.BAD_VEHICLE_ID),
        (_doc(vehicle_id=""), DeadLetterReason.BAD_VEHICLE_ID),
        (_doc(ts_us=-5), DeadLetterReason.TIMESTAMP_OUT_OF_RANGE),
        (_doc(ts_us=10**16), DeadLetterReason.TIMESTAMP_OUT_OF_RANGE),  # year 2286: *1000 overflows int64
        (_doc(ts_us=MAX_TS_US + 1), DeadLetterReason.TIMESTAMP_OUT_OF_RANGE),
        (_doc(ts_us=2**63), DeadLetterReason.BAD_DTC_MESSAGE),  # not an int64 at all
        # a 5,000-digit integer: beyond Python's 4,300-digit conversion limit
        (_doc().replace(b"}", b', "x": ' + b"7" * 5000 + b"}"), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc().replace(b"1764250000000000", b"1" * 5000), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(extra=float("nan")), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(extra=float("inf")), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc().replace(b"}", b', "x": 1e999}'), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(ts_us=1.5), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(ts_us=True), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(codes="P0301"), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(codes=["P0301", "X9999"]), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(codes=["p0301"]), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(codes=["P0301"] * 200), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(agent_version="4.2\u0000"), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(agent_version="x" * 65), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(agent_version=4), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(software=["ECM", "4.2.0"]), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(software={"ECM": ""}), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(software={"E/CM": "1"}), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(software={"ECM": 4.2}), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(software={f"E{i}": "1" for i in range(33)}), DeadLetterReason.BAD_DTC_MESSAGE),
        (_doc(schema=DTC_SCHEMA_V1, firmware_version="x" * 65), DeadLetterReason.BAD_DTC_MESSAGE),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(payload: bytes, reason: DeadLetterReason) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_dtc_message(payload)
    assert caught.value.reason is reason
    assert caught.value.detail


def test_the_text_backslash_u0000_is_not_a_nul_character() -> None:
    """Found by hypothesis: the six characters `\\u0000` are storable text; only a real NUL is not."""
    assert parse_dtc_message(_doc(agent_version="x\\u0000")).agent_version == "x\\u0000"
    with pytest.raises(DecodeError, match="NUL"):
        parse_dtc_message(_doc(agent_version="x\\\u0000"))


def test_the_domain_ends_are_valid_times() -> None:
    assert parse_dtc_message(_doc(ts_us=0)).ts_us == 0
    assert parse_dtc_message(_doc(ts_us=MAX_TS_US)).ts_us == MAX_TS_US


def test_unknown_fields_are_ignored_and_versions_are_optional() -> None:
    report = parse_dtc_message(_doc(agent_version=..., software=..., extra={"future": 1}))
    assert (report.agent_version, report.software, report.codes) == ("", (), ("P0301",))


def test_a_v1_message_keeps_its_ambiguous_firmware_field_apart() -> None:
    """v1's `firmware_version` meant the agent's version from an agent and the ECU software from
    the simulator: it is kept as sent, and given neither meaning."""
    v1 = _doc(schema=DTC_SCHEMA_V1, agent_version=..., software=..., firmware_version="4.2.0")
    report = parse_dtc_message(v1)
    assert (report.v1_firmware_version, report.agent_version, report.software) == ("4.2.0", "", ())
    assert parse_dtc_message(_doc(firmware_version="9.9")).v1_firmware_version == ""  # v2 ignores it


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_dtc_message(payload)
