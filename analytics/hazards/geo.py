"""Positions as the hazard kernels need them: Earth-centred metres for neighbour search, and a
local east/north frame at a site for shapes and headings.

Chord distance in Earth-centred coordinates equals the ground distance to well under a millimetre
at the few tens of metres the map works with, and needs no reference point, so one k-d tree serves
a fleet spread over a continent. Pure: no I/O.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


def ecef_m(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """(n, 3) points on a sphere of the Earth's mean radius, in metres."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    c = np.cos(lat)
    return EARTH_RADIUS_M * np.stack([c * np.cos(lon), c * np.sin(lon), np.sin(lat)], axis=-1)


def latlon_of(points_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (degrees) of Earth-centred points (any length: they are normalised)."""
    x, y, z = points_m[..., 0], points_m[..., 1], points_m[..., 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def east_north_m(
    lat0_deg: np.ndarray, lon0_deg: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """East and north offsets (metres) of points from origins, pairwise (broadcasting)."""
    lat0, lon0 = np.radians(lat0_deg), np.radians(lon0_deg)
    d = ecef_m(lat_deg, lon_deg) - ecef_m(lat0_deg, lon0_deg)
    east = -np.sin(lon0) * d[..., 0] + np.cos(lon0) * d[..., 1]
    north = (
        -np.sin(lat0) * np.cos(lon0) * d[..., 0]
        - np.sin(lat0) * np.sin(lon0) * d[..., 1]
        + np.cos(lat0) * d[..., 2]
    )
    return east, north


def offset_latlon(
    lat0_deg: np.ndarray, lon0_deg: np.ndarray, east_m: np.ndarray, north_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The points `east_m`, `north_m` from the origins (small offsets: a local tangent plane)."""
    lat = lat0_deg + np.degrees(north_m / EARTH_RADIUS_M)
    lon = lon0_deg + np.degrees(east_m / (EARTH_RADIUS_M * np.cos(np.radians(lat0_deg))))
    return lat, lon


def axis_deg(heading_deg: np.ndarray) -> np.ndarray:
    """The road's direction regardless of travel direction: heading modulo 180 degrees."""
    return np.mod(heading_deg, 180.0)


def axis_difference_deg(a_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """Smallest angle (0–90 degrees) between two undirected axes."""
    d = np.abs(np.mod(a_deg - b_deg, 180.0))
    return np.minimum(d, 180.0 - d)
