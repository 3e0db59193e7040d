"""Validating coordinates and projecting them to metres (local UTM or a given CRS)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from crossbeat.analysis.errors import AnalysisError, Skipped

WGS84 = "EPSG:4326"


@dataclass(frozen=True)
class Projected:
    """Valid points in metres, with the mask of the inputs kept and why others were not."""

    x: np.ndarray
    y: np.ndarray
    keep: np.ndarray
    crs: str
    skipped: Skipped


def valid_lonlat(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, Skipped]:
    """Return the mask of usable WGS84 points and a report of the others.

    A point is unusable when a coordinate is missing (NaN) or outside the valid range.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.shape != lat.shape or lon.ndim != 1:
        raise AnalysisError(
            f"lon and lat must be 1-D arrays of one length, got {lon.shape} and {lat.shape}"
        )
    missing = np.isnan(lon) | np.isnan(lat)
    bad = ~missing & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    reasons = {
        "missing coordinates": int(missing.sum()),
        "coordinates out of range": int(bad.sum()),
    }
    return ~(missing | bad), Skipped({k: v for k, v in reasons.items() if v})


def utm_zone(lon: float, lat: float) -> str:
    """Return the EPSG code of the WGS84 UTM zone containing a point (``EPSG:32617``).

    The plain 6° zones, as the EPSG area of use of each zone defines them (the
    military grid's Norway and Svalbard exceptions are not applied: for measuring
    distances the zone whose central meridian is nearest is the better choice).
    Computed rather than looked up in the PROJ database, which takes ~0.1 s a query.
    """
    zone = int((lon + 180) // 6) % 60 + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def local_utm(lon: np.ndarray, lat: np.ndarray) -> str:
    """Return the EPSG code (``EPSG:32617``) of the WGS84 UTM zone at the points' centroid."""
    return utm_zone(float(np.mean(lon)), float(np.mean(lat)))


@lru_cache(maxsize=32)
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def to_metres(lon: np.ndarray, lat: np.ndarray, crs: str | None = None) -> Projected:
    """Project valid WGS84 points to metres: ``crs`` if given, else the local UTM zone.

    Raises
    ------
    AnalysisError
        When no point is usable, or ``crs`` is geographic (degrees, not metres).
    """
    keep, skipped = valid_lonlat(lon, lat)
    if not keep.any():
        raise AnalysisError(f"empty selection: no incident with usable coordinates ({skipped})")
    lon_k = np.asarray(lon, dtype=float)[keep]
    lat_k = np.asarray(lat, dtype=float)[keep]
    target = crs or local_utm(lon_k, lat_k)
    try:
        parsed = CRS.from_user_input(target)
    except CRSError as exc:
        raise AnalysisError(
            f"unknown CRS {target!r}: give an EPSG code such as 'EPSG:32617'"
        ) from exc
    if parsed.is_geographic:
        raise AnalysisError(f"CRS {target} is geographic (degrees); give a projected CRS in metres")
    x, y = _transformer(WGS84, target).transform(lon_k, lat_k)
    return Projected(np.asarray(x), np.asarray(y), keep, target, skipped)


def to_lonlat(x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Transform projected coordinates back to WGS84 longitude/latitude."""
    lon, lat = _transformer(crs, WGS84).transform(x, y)
    return np.asarray(lon), np.asarray(lat)
