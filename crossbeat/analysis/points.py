"""Validating coordinates and projecting them to metres (local UTM or a given CRS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

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


def local_utm(lon: np.ndarray, lat: np.ndarray) -> str:
    """Return the EPSG code (``EPSG:32617``) of the WGS84 UTM zone at the points' centroid."""
    clon, clat = float(np.mean(lon)), float(np.mean(lat))
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(clon, clat, clon, clat),
    )
    if not infos:  # pragma: no cover - every point on Earth has a UTM zone
        raise AnalysisError(f"no UTM zone found for centroid {clon:.4f}, {clat:.4f}")
    return f"{infos[0].auth_name}:{infos[0].code}"


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
    parsed = CRS.from_user_input(target)
    if parsed.is_geographic:
        raise AnalysisError(f"CRS {target} is geographic (degrees); give a projected CRS in metres")
    x, y = Transformer.from_crs(WGS84, parsed, always_xy=True).transform(lon_k, lat_k)
    return Projected(np.asarray(x), np.asarray(y), keep, target, skipped)


def to_lonlat(x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Transform projected coordinates back to WGS84 longitude/latitude."""
    lon, lat = Transformer.from_crs(crs, WGS84, always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)
