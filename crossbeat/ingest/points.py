"""Validate a record's point: numbers, CRS transform, range, swaps, distance from home.

Pure functions used by the normaliser. Each raises :class:`PointError` whose message
is the quarantine reason (naming the columns and values), so every way a point can be
wrong is described once, here.
"""

from __future__ import annotations

import math

from shapely.errors import GEOSException
from shapely.geometry import shape

from crossbeat.geo.crs import distance_to_extent_m, to_wgs84
from crossbeat.model import LocationPrecision

#: Points further than this outside the agency's extent are rejected as misplaced.
MAX_DISTANCE_OUTSIDE_M = 100_000.0

_ORDER = [
    LocationPrecision.EXACT,
    LocationPrecision.BLOCK,
    LocationPrecision.SNAPPED,
    LocationPrecision.AREA,
    LocationPrecision.NONE,
]
_GEOMETRY_PRECISION = {
    "Polygon": LocationPrecision.AREA,
    "MultiPolygon": LocationPrecision.AREA,
    "LineString": LocationPrecision.BLOCK,
    "MultiLineString": LocationPrecision.BLOCK,
}

Extent = tuple[float, float, float, float]


class PointError(ValueError):
    """A point cannot be stored; the message says why."""


def coarsest(a: LocationPrecision, b: LocationPrecision) -> LocationPrecision:
    """Return the less precise of two location precisions."""
    return max(a, b, key=_ORDER.index)


def parse_coordinate(text: str, column: str) -> float:
    """Parse one coordinate value.

    Raises
    ------
    PointError
        When the text is not a finite number.
    """
    try:
        number = float(text)
    except ValueError:
        raise PointError(f"column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise PointError(f"column {column!r}: {text!r} is not a finite number")
    return number


def geometry_point(geometry: dict) -> tuple[float, float, LocationPrecision] | None:
    """Return a point for a GeoJSON geometry and the precision its type implies.

    A Point is itself (``exact``); a polygon gives its representative point
    (``area``), a line its representative point (``block``). Empty geometry gives None.

    Raises
    ------
    PointError
        When the geometry is not valid GeoJSON.
    """
    try:
        geom = shape(geometry)
    except (GEOSException, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise PointError(f"invalid GeoJSON geometry: {exc}") from exc
    if geom.is_empty:
        return None
    if geom.geom_type == "Point":
        return float(geom.x), float(geom.y), LocationPrecision.EXACT
    point = geom.representative_point()
    kind = _GEOMETRY_PRECISION.get(geom.geom_type, LocationPrecision.AREA)
    return float(point.x), float(point.y), kind


def _in_range(lon: float, lat: float) -> bool:
    return math.isfinite(lon) and math.isfinite(lat) and -90 <= lat <= 90 and -180 <= lon <= 180


def _fmt(value: float) -> str:
    return f"{value:.6f}" if math.isfinite(value) else str(value)


def _inside(lon: float, lat: float, extent: Extent | None) -> bool:
    return extent is None or distance_to_extent_m(lon, lat, extent) == 0


def validate_point(
    x: float, y: float, crs: str, extent: Extent | None, label: str
) -> tuple[float, float]:
    """Transform a source point to WGS84 and check it is plausible.

    Parameters
    ----------
    x, y
        The point in ``crs`` (longitude/latitude for EPSG:4326).
    crs
        The source CRS.
    extent
        ``(min_lon, min_lat, max_lon, max_lat)`` of the agency's jurisdictions, or None.
    label
        Where the point came from, for messages (``"columns 'X', 'Y'"``).

    Returns
    -------
    tuple of float
        ``(lon, lat)`` in WGS84.

    Raises
    ------
    PointError
        When the point is out of range, looks swapped (the swapped point is valid and
        inside the extent, while the point is not), or lies more than
        :data:`MAX_DISTANCE_OUTSIDE_M` outside the extent.
    """
    lon, lat = to_wgs84(x, y, crs)
    valid = _in_range(lon, lat)
    if valid and _inside(lon, lat, extent):
        return lon, lat
    where = f"{label} ({x!r}, {y!r}) in {crs}"
    slon, slat = to_wgs84(y, x, crs)
    if _in_range(slon, slat) and _inside(slon, slat, extent) and (not valid or extent):
        raise PointError(
            f"latitude and longitude look swapped: {where} gives ({_fmt(lat)}, {_fmt(lon)}) "
            f"but swapped it is ({_fmt(slat)}, {_fmt(slon)})"
            + (", inside the agency's area" if extent else "")
            + "; check location.x / location.y"
        )
    if not valid:
        raise PointError(
            f"{where} is not a valid point (latitude {_fmt(lat)}, longitude {_fmt(lon)}): "
            "check location.x / location.y and the CRS"
        )
    assert extent is not None
    distance = distance_to_extent_m(lon, lat, extent)
    if distance > MAX_DISTANCE_OUTSIDE_M:
        raise PointError(
            f"{where} is at ({_fmt(lat)}, {_fmt(lon)}), {distance / 1000:.0f} km outside the "
            "agency's area: a geocoding error, or the wrong CRS?"
        )
    return lon, lat
