"""Validate a record's point: numbers, CRS transform, range, swaps, distance from home.

Pure functions used by the normaliser. Each raises :class:`PointError` whose message
is the quarantine reason (naming the columns and values), so every way a point can be
wrong is described once, here.
"""

from __future__ import annotations

import math

from shapely.errors import ShapelyError
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

#: How deeply each GeoJSON geometry type nests its positions (a Point is one position).
_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}
#: What each GeoJSON geometry type's coordinates must be.
_SHAPES = {
    "Point": "a position [x, y] (two or three numbers)",
    "MultiPoint": "a list of positions [x, y]",
    "LineString": "a list of positions [x, y]",
    "MultiLineString": "a list of lines, each a list of positions [x, y]",
    "Polygon": "a list of rings, each a list of positions [x, y]",
    "MultiPolygon": "a list of polygons, each a list of rings of positions [x, y]",
}
#: Where to look when a point from x/y columns, or from a GeoJSON geometry, is wrong.
_CHECK_XY = "location.x / location.y"
_CHECK_GEOMETRY = "the geometry / location.crs"

Extent = tuple[float, float, float, float]


class PointError(ValueError):
    """A point cannot be stored; the message says why."""


#: Rounding (metres) up to which a point still counts as ``exact``.
EXACT_MAX_M = 25.0
#: Rounding (metres) up to which a point counts as ``block``; beyond it, ``area``.
BLOCK_MAX_M = 500.0
#: Metres per degree of latitude (and of longitude at the equator), for rounding.
METRES_PER_DEGREE = 111_320.0


def rounding_precision(metres: float | None) -> LocationPrecision:
    """Return the finest precision a point rounded by the source to ``metres`` can have.

    Examples
    --------
    >>> rounding_precision(1.1).value, rounding_precision(111).value, rounding_precision(1113).value
    ('exact', 'block', 'area')
    """
    if metres is None or metres <= EXACT_MAX_M:
        return LocationPrecision.EXACT
    return LocationPrecision.BLOCK if metres <= BLOCK_MAX_M else LocationPrecision.AREA


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
        When the geometry is not valid GeoJSON; the message names the geometry and
        what is wrong with it.
    """
    try:
        geom = shape(geometry)
    except (ShapelyError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise PointError(geometry_problem(geometry, exc)) from exc
    if geom.is_empty:
        return None
    if geom.geom_type == "Point":
        return float(geom.x), float(geom.y), LocationPrecision.EXACT
    point = geom.representative_point()
    kind = _GEOMETRY_PRECISION.get(geom.geom_type, LocationPrecision.AREA)
    return float(point.x), float(point.y), kind


def geometry_problem(geometry: object, exc: Exception) -> str:
    """Return why a GeoJSON geometry that shapely refused is invalid, in GeoJSON's terms.

    Shapely's own message (``exc``) is used only when the geometry has the right
    structure, e.g. a line with one position.

    Examples
    --------
    >>> why = geometry_problem({"type": "Point", "coordinates": [7]}, ValueError())
    >>> why.removeprefix("invalid GeoJSON geometry: ")
    "the Point's coordinates [7] are not a position [x, y] (two or three numbers)"
    """
    head = "invalid GeoJSON geometry: "
    if not isinstance(geometry, dict):
        return head + f"a {type(geometry).__name__}, not an object with type and coordinates"
    kind = geometry.get("type")
    if kind is None:
        return head + 'it has no "type" (Point, LineString, Polygon ...)'
    if kind == "GeometryCollection":
        return head + "a GeometryCollection with an invalid member geometry"
    if kind not in _DEPTH:
        return (
            head
            + f"type {_short(kind)} is not a GeoJSON geometry type (Point, LineString, Polygon ...)"
        )
    if "coordinates" not in geometry:
        return head + f'the {kind} has no "coordinates"'
    coordinates = geometry["coordinates"]
    if not _nested_positions(coordinates, _DEPTH[kind]):
        return head + f"the {kind}'s coordinates {_short(coordinates)} are not {_SHAPES[kind]}"
    return head + f"the {kind} is not valid: {str(exc).strip() or type(exc).__name__}"


def _nested_positions(value: object, depth: int) -> bool:
    """Return whether ``value`` is positions nested ``depth`` lists deep."""
    if not isinstance(value, list):
        return False
    if depth == 0:
        return 2 <= len(value) <= 3 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        )
    return all(_nested_positions(v, depth - 1) for v in value)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _in_range(lon: float, lat: float) -> bool:
    return math.isfinite(lon) and math.isfinite(lat) and -90 <= lat <= 90 and -180 <= lon <= 180


def _fmt(value: float) -> str:
    return f"{value:.6f}" if math.isfinite(value) else str(value)


def _inside(lon: float, lat: float, extent: Extent | None) -> bool:
    return extent is None or distance_to_extent_m(lon, lat, extent) == 0


def validate_point(
    x: float,
    y: float,
    crs: str,
    extent: Extent | None,
    label: str,
    *,
    from_geometry: bool = False,
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
    from_geometry
        The point is a GeoJSON geometry's: messages point at the geometry and the CRS,
        not at ``location.x`` / ``location.y``.

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
    where = f"{label} (x={x!r}, y={y!r}) in {crs}"
    check = _CHECK_GEOMETRY if from_geometry else _CHECK_XY
    slon, slat = to_wgs84(y, x, crs)
    if _in_range(slon, slat) and _inside(slon, slat, extent) and (not valid or extent):
        raise PointError(
            f"latitude and longitude look swapped: {where} gives {_lat_lon(lat, lon)} "
            f"but swapped it is {_lat_lon(slat, slon)}"
            + (", inside the agency's area" if extent else "")
            + f"; check {check}"
        )
    if not valid:
        raise PointError(
            f"{where} is not a valid point (latitude {_fmt(lat)}, longitude {_fmt(lon)}): "
            + (f"check {check}" if from_geometry else f"check {check} and the CRS")
        )
    assert extent is not None
    distance = distance_to_extent_m(lon, lat, extent)
    if distance > MAX_DISTANCE_OUTSIDE_M:
        raise PointError(
            f"{where} is at {_lat_lon(lat, lon)}, {distance / 1000:.0f} km outside the "
            "agency's area: a geocoding error, or the wrong CRS?"
        )
    return lon, lat


def _lat_lon(lat: float, lon: float) -> str:
    return f"(lat={_fmt(lat)}, lon={_fmt(lon)})"
