"""The bounding box the map routes take (hazards, H3 cells, roads): four query parameters, checked.

Owns: the box's parameters and their rules: latitudes in [-90, 90] and longitudes in [-180, 180]
(stated in OpenAPI, so a client sees them), the minimum below the maximum, and a bounded area (at
most `MAX_SPAN_DEG` degrees each way, so no request reads a continent). A box across the
antimeridian is not supported: ask for its two halves. Every violation is a 422 naming the fields.
Leaves the SQL to `api.map_queries`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from fastapi.exceptions import RequestValidationError

MAX_SPAN_DEG = 2.0  # about 220 km north-south: a metropolitan area, not a country


@dataclass(frozen=True, slots=True)
class Bbox:
    """A box in WGS84 degrees, min below max, at most MAX_SPAN_DEG each way."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


def _problems(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> list[dict[str, object]]:
    def problem(field: str, msg: str, value: float) -> dict[str, object]:
        return {"type": "value_error", "loc": ("query", field), "msg": msg, "input": value}

    out = []
    for low, high, low_value, high_value in (
        ("min_lon", "max_lon", min_lon, max_lon),
        ("min_lat", "max_lat", min_lat, max_lat),
    ):
        if not low_value < high_value:
            out.append(problem(high, f"{high} must be greater than {low}", high_value))
        elif high_value - low_value > MAX_SPAN_DEG:
            out.append(problem(high, f"{high} - {low} must be at most {MAX_SPAN_DEG} degrees", high_value))
    return out


def bbox(
    min_lon: Annotated[float, Query(ge=-180, le=180, description="West edge, degrees (WGS84)")],
    min_lat: Annotated[float, Query(ge=-90, le=90, description="South edge, degrees (WGS84)")],
    max_lon: Annotated[
        float,
        Query(ge=-180, le=180, description=f"East edge, degrees: above min_lon, by at most {MAX_SPAN_DEG}"),
    ],
    max_lat: Annotated[
        float,
        Query(ge=-90, le=90, description=f"North edge, degrees: above min_lat, by at most {MAX_SPAN_DEG}"),
    ],
) -> Bbox:
    """A route dependency: the box from the query. Raises RequestValidationError (422) when a
    minimum is not below its maximum or a side is longer than MAX_SPAN_DEG."""
    problems = _problems(min_lon, min_lat, max_lon, max_lat)
    if problems:
        raise RequestValidationError(problems)
    return Bbox(min_lon, min_lat, max_lon, max_lat)
