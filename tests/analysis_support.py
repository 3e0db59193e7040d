"""Synthetic incident clouds for the analysis tests (seeded, in WGS84 around Toronto)."""

from __future__ import annotations

import numpy as np
from pyproj import Transformer

UTM17 = "EPSG:32617"
_TO_LONLAT = Transformer.from_crs(UTM17, "EPSG:4326", always_xy=True)
_TO_UTM = Transformer.from_crs("EPSG:4326", UTM17, always_xy=True)
ORIGIN = (630_000.0, 4_840_000.0)  # metres in UTM 17N, central Toronto


def lonlat_from_metres(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 coordinates of points given in metres from ``ORIGIN``."""
    lon, lat = _TO_LONLAT.transform(np.asarray(x) + ORIGIN[0], np.asarray(y) + ORIGIN[1])
    return np.asarray(lon), np.asarray(lat)


def utm(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTM 17N metres of WGS84 points (independent of crossbeat.analysis.points)."""
    x, y = _TO_UTM.transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def days(start: str, offsets: np.ndarray) -> np.ndarray:
    """datetime64[s] times ``offsets`` days (float) after ``start``."""
    secs = np.rint(np.asarray(offsets, dtype=float) * 86400).astype("int64")
    return np.datetime64(start, "s") + secs.astype("timedelta64[s]")
