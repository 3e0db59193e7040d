"""Coordinate reference systems: transforming source coordinates to WGS84.

Agencies export points in their own CRS (Oregon State Plane feet, British National
Grid, UTM ...). Everything CrossBeat stores is WGS84 longitude/latitude, so the
ingest transforms each point once with pyproj. Building a pyproj ``Transformer`` is
expensive (it searches the PROJ database), so transformers are cached per CRS.
"""

from __future__ import annotations

import math
from functools import lru_cache

from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError as _PyprojCRSError

#: The CRS everything is stored in: WGS84 longitude/latitude.
WGS84 = "EPSG:4326"

_GEOD = Geod(ellps="WGS84")


class CRSError(ValueError):
    """A coordinate reference system is unknown or cannot be transformed to WGS84."""


@lru_cache(maxsize=64)
def parse_crs(crs: str) -> CRS:
    """Return the pyproj CRS for a user-given code such as ``EPSG:2913``.

    Parameters
    ----------
    crs
        An EPSG code (``EPSG:2913``), or anything else pyproj accepts (WKT, PROJ string).

    Returns
    -------
    CRS
        The parsed coordinate reference system.

    Raises
    ------
    CRSError
        When pyproj does not know the CRS.
    """
    try:
        return CRS.from_user_input(crs)
    except _PyprojCRSError as exc:
        raise CRSError(
            f"unknown CRS {crs!r}: give an EPSG code such as 'EPSG:4326' (WGS84 lon/lat) "
            f"or 'EPSG:2913' (Oregon North state plane, feet) ({exc})"
        ) from exc


@lru_cache(maxsize=64)
def is_wgs84(crs: str) -> bool:
    """Return True when ``crs`` is WGS84 geographic coordinates (no transform needed)."""
    return parse_crs(crs) == parse_crs(WGS84)


@lru_cache(maxsize=64)
def transformer_to_wgs84(crs: str) -> Transformer:
    """Return a cached transformer from ``crs`` to WGS84 with x = longitude, y = latitude.

    Parameters
    ----------
    crs
        The source CRS (see :func:`parse_crs`).

    Returns
    -------
    Transformer
        A pyproj transformer built with ``always_xy=True``.

    Raises
    ------
    CRSError
        When the CRS is unknown or no transformation to WGS84 exists.
    """
    source = parse_crs(crs)
    try:
        return Transformer.from_crs(source, parse_crs(WGS84), always_xy=True)
    except _PyprojCRSError as exc:  # pragma: no cover - PROJ knows a path for real CRSs
        raise CRSError(f"cannot transform {crs!r} to WGS84: {exc}") from exc


def to_wgs84(x: float, y: float, crs: str) -> tuple[float, float]:
    """Transform one point to WGS84.

    Parameters
    ----------
    x, y
        Easting/northing (or longitude/latitude) in ``crs``.
    crs
        The source CRS.

    Returns
    -------
    tuple of float
        ``(lon, lat)``; either may be ``inf`` when the point is outside the CRS's domain.

    Examples
    --------
    >>> lon, lat = to_wgs84(7643645.0, 681349.0, "EPSG:2913")  # Portland City Hall
    >>> round(lat, 4), round(lon, 4)
    (45.5149, -122.6789)
    """
    if is_wgs84(crs):
        return float(x), float(y)
    lon, lat = transformer_to_wgs84(crs).transform(x, y, errcheck=False)
    return float(lon), float(lat)


def distance_to_extent_m(
    lon: float, lat: float, extent: tuple[float, float, float, float]
) -> float:
    """Return the geodesic distance in metres from a point to a lon/lat bounding box.

    Parameters
    ----------
    lon, lat
        The point (WGS84).
    extent
        ``(min_lon, min_lat, max_lon, max_lat)``.

    Returns
    -------
    float
        0 when the point is inside the box, else the distance to its nearest edge point.
    """
    min_lon, min_lat, max_lon, max_lat = extent
    near_lon = min(max(lon, min_lon), max_lon)
    near_lat = min(max(lat, min_lat), max_lat)
    if near_lon == lon and near_lat == lat:
        return 0.0
    _, _, dist = _GEOD.inv(lon, lat, near_lon, near_lat)
    return float(dist) if math.isfinite(dist) else math.inf
