"""Cursors (api.cursors), without a database: what `encode` makes `decode` gives back exactly, and
nothing else decodes: another route's cursor, the same route's with other filters, any other
spelling, any altered byte that would change what the cursor says, garbage of every kind. Decoding
only ever raises InvalidCursor (a 400 problem), never anything a route would turn into a 500."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.cursors import MAX_CURSOR_LENGTH, InvalidCursor, Keyset, Part

VEHICLES = Keyset("vehicles", (Part.VEHICLE_ID,))
BOOKINGS = Keyset("bookings", (Part.TIME, Part.ID))
vehicle_ids = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
times = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
)
ids = st.integers(1, 2**63 - 1)
filters = st.dictionaries(st.sampled_from(["status", "since", "fault"]), st.none() | st.text(max_size=5))


@given(vehicle_ids, filters)
def test_a_vehicle_cursor_decodes_to_its_key(vehicle_id: str, f: dict) -> None:
    cursor = VEHICLES.encode((vehicle_id,), f)
    assert VEHICLES.decode(cursor, f) == (vehicle_id,)
    assert len(cursor) <= MAX_CURSOR_LENGTH


@given(times, ids, filters)
def test_a_time_and_id_cursor_decodes_to_its_key_to_the_microsecond(
    at: dt.datetime, id_: int, f: dict
) -> None:
    cursor = BOOKINGS.encode((at, id_), f)
    assert BOOKINGS.decode(cursor, f) == (at, id_)


def test_a_cursor_in_another_zone_is_the_same_instant() -> None:
    at = dt.datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    (back, _) = BOOKINGS.decode(BOOKINGS.encode((at, 7), {}), {})
    assert back == at and back.tzinfo == dt.UTC


@given(vehicle_ids, filters, filters)
def test_a_cursor_is_bound_to_its_route_and_filters(vehicle_id: str, f: dict, g: dict) -> None:
    cursor = VEHICLES.encode((vehicle_id,), f)
    with pytest.raises(InvalidCursor, match="not one bookings issued"):
        Keyset("bookings", (Part.VEHICLE_ID,)).decode(cursor, f)
    if f != g:
        with pytest.raises(InvalidCursor, match="other filters"):
            VEHICLES.decode(cursor, g)


@given(vehicle_ids, st.integers(0, 200), st.sampled_from("AZaz09-_"))
def test_an_altered_cursor_is_refused_or_names_another_valid_position(
    vehicle_id: str, at: int, c: str
) -> None:
    cursor = VEHICLES.encode((vehicle_id,), {})
    i = at % len(cursor)
    altered = cursor[:i] + c + cursor[i + 1 :]
    try:
        (other,) = VEHICLES.decode(altered, {})
    except InvalidCursor:
        return
    # Only a change inside the key itself can survive, and it re-encodes to exactly what was sent.
    assert VEHICLES.encode((other,), {}) == altered


def _b64(doc: object) -> str:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


GOOD = VEHICLES.encode(("VIN-1",), {})
DOC = json.loads(base64.urlsafe_b64decode(GOOD + "=" * (-len(GOOD) % 4)))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!",
        "a b",
        "x" * (MAX_CURSOR_LENGTH + 1),
        GOOD + "=",  # padding is another spelling
        GOOD + "A",
        GOOD[:-1],
        "é",
        _b64(b"\xff\xfe"),
        _b64(b"not json"),
        _b64(b"NaN"),
        _b64([1, 2]),
        _b64({**DOC, "v": 2}),
        _b64({**DOC, "extra": 1}),
        _b64({k: v for k, v in DOC.items() if k != "f"}),
        _b64({**DOC, "k": []}),
        _b64({**DOC, "k": ["VIN-1", "VIN-2"]}),
        _b64({**DOC, "k": [1]}),
        _b64({**DOC, "k": ["bad id with spaces"]}),
        _b64({**DOC, "k": ["x" * 65]}),
        _b64({**DOC, "k": None}),
        json.dumps(DOC, indent=1).encode().hex(),
        base64.urlsafe_b64encode(json.dumps(DOC, indent=1).encode()).rstrip(b"=").decode(),  # not canonical
    ],
)
def test_anything_else_is_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        VEHICLES.decode(cursor, {})


@pytest.mark.parametrize(
    "key",
    [
        [0, 1],
        [-62135596800000001, 1],
        [253402300800000000, 1],
        [1, 0],
        [1, 2**63],
        [True, 1],
        [1.5, 1],
        ["1", 1],
    ],
)
def test_time_and_id_keys_are_range_checked(key: list) -> None:
    doc = json.loads(
        base64.urlsafe_b64decode(BOOKINGS.encode((dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1), {}) + "==")
    )
    cursor = _b64({**doc, "k": key})
    if key == [0, 1]:
        assert BOOKINGS.decode(cursor, {}) == (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), 1)
        return
    with pytest.raises(InvalidCursor):
        BOOKINGS.decode(cursor, {})


@given(st.text(max_size=80))
def test_random_text_only_ever_raises_invalid_cursor(text: str) -> None:
    with contextlib.suppress(InvalidCursor):
        VEHICLES.decode(text, {})


def test_a_page_has_a_next_cursor_only_when_more_rows_follow() -> None:
    rows = [("a",), ("b",), ("c",)]
    assert VEHICLES.page(rows, 3, lambda r: r, {}) == (rows, None)
    items, cursor = VEHICLES.page(rows, 2, lambda r: r, {})
    assert items == rows[:2] and cursor is not None and VEHICLES.decode(cursor, {}) == ("b",)
    assert VEHICLES.page([], 2, lambda r: r, {}) == ([], None)
