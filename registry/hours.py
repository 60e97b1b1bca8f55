"""Opening hours and quiet hours as people write them, and as the database keeps them.

Opening hours: `"mon-fri 08:00-18:00; sat 09:00-12:30"`: day ranges or single days (mon..sun),
each with one or more `HH:MM-HH:MM` spans separated by commas; a day not named is closed. Stored
as `{"mon": [["08:00", "18:00"]], ...}`. Quiet hours: one span, `"22:00-07:00"`, which may cross
midnight. Pure functions; they raise ValueError with a message for the person who wrote the text.
"""

from __future__ import annotations

import datetime as dt
import re

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")

OpeningHours = dict[str, list[list[str]]]


def parse_span(text: str) -> tuple[str, str]:
    """`"08:00-18:00"` -> ("08:00", "18:00"). Raises ValueError."""
    match = _SPAN.match(text.strip())
    if match is None or (match.group(3) == "24" and match.group(4) != "00"):
        raise ValueError(f"{text.strip()!r} is not a time span HH:MM-HH:MM")
    start, end = text.strip().split("-")
    return start, end


def parse_opening_hours(text: str) -> OpeningHours:
    """Raises ValueError naming the part it cannot read."""
    hours: OpeningHours = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        days_text, _, spans_text = part.partition(" ")
        days = _days(days_text.lower())
        spans = []
        for span_text in spans_text.split(","):
            start, end = parse_span(span_text)
            if end <= start:
                raise ValueError(f"{span_text.strip()!r}: a span must end after it starts, on the same day")
            spans.append([start, end])
        if not spans_text.strip():
            raise ValueError(f"{part!r} names days but no hours")
        for day in days:
            if day in hours:
                raise ValueError(f"{day} appears twice in {text!r}")
            hours[day] = sorted(spans)
    return {day: hours[day] for day in DAYS if day in hours}


def format_opening_hours(hours: OpeningHours) -> str:
    """The text form of stored opening hours, one day per part (parses back to the same)."""
    return "; ".join(f"{day} " + ",".join(f"{a}-{b}" for a, b in hours[day]) for day in DAYS if day in hours)


def _days(text: str) -> list[str]:
    first, _, last = text.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(f"{text!r} is not a day or a day range of {', '.join(DAYS)}")
    if not last:
        return [first]
    i, j = DAYS.index(first), DAYS.index(last)
    if j < i:
        raise ValueError(f"{text!r}: a day range runs forward within the week")
    return list(DAYS[i : j + 1])


def parse_quiet_hours(text: str) -> tuple[dt.time, dt.time]:
    """`"22:00-07:00"` -> (22:00, 07:00); the span may cross midnight. Raises ValueError."""
    start, end = parse_span(text)
    if start == end:
        raise ValueError(f"{text!r}: quiet hours must not start and end at the same time")
    return dt.time.fromisoformat(start), dt.time.fromisoformat("00:00" if end == "24:00" else end)


def format_quiet_hours(start: dt.time, end: dt.time) -> str:
    return f"{start:%H:%M}-{end:%H:%M}"
