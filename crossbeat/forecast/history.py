"""Incident history for forecasting: metric coordinates and time ranges (issue #13).

Times are float days since 1970-01-01 UTC. An incident known only as a range
``[t0, t1]`` counts as one incident spread uniformly over the range
(:meth:`History.weights`), so a forecast window receives the share of the range it covers;
exact times have ``t1 == t0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Transformer

from crossbeat.sharing.arrays import AnalysisArrays

_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Frame:
    """A local transverse Mercator frame in metres centred at ``(lon0, lat0)``.

    Distances and areas in it are within 0.1 % of the ground over a city.
    """

    lon0: float
    lat0: float

    def _proj(self) -> str:
        return (
            f"+proj=tmerc +lat_0={self.lat0} +lon_0={self.lon0} +k=1 +x_0=0 +y_0=0 "
            "+ellps=WGS84 +units=m"
        )

    def forward(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return metric ``(x, y)`` for WGS84 ``lon``/``lat``."""
        t = Transformer.from_crs("EPSG:4326", self._proj(), always_xy=True)
        x, y = t.transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x, float), np.asarray(y, float)

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return WGS84 ``(lon, lat)`` for metric ``x``/``y``."""
        t = Transformer.from_crs(self._proj(), "EPSG:4326", always_xy=True)
        lon, lat = t.transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lon, float), np.asarray(lat, float)


def days(t: np.ndarray) -> np.ndarray:
    """Return ``datetime64`` values as float days since 1970-01-01 (NaT → NaN)."""
    t = np.asarray(t).astype("datetime64[us]")
    out = t.astype("int64").astype(float) / _DAY_US
    out[np.isnat(t)] = np.nan
    return out


@dataclass(frozen=True)
class History:
    """Incidents as metric points with time ranges, one position per incident.

    ``x``/``y`` are metres in ``frame``; ``t0``/``t1`` float days (``t1 >= t0``);
    ``category`` and ``owner`` are string arrays.
    """

    frame: Frame
    x: np.ndarray
    y: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    category: np.ndarray
    owner: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, keep: np.ndarray) -> History:
        """Return the incidents selected by a boolean mask or index array."""
        return History(
            self.frame,
            self.x[keep],
            self.y[keep],
            self.t0[keep],
            self.t1[keep],
            self.category[keep],
            self.owner[keep],
        )

    def of(self, *categories: str) -> History:
        """Return the incidents of the given categories."""
        return self.take(np.isin(self.category, list(categories)))

    def before(self, t: float) -> History:
        """Return the incidents whose range starts before day ``t``.

        A range that straddles ``t`` is kept: only its part before ``t`` counts in
        :meth:`weights` windows that end by ``t``.
        """
        return self.take(self.t0 < t)

    def weights(self, start: float, end: float) -> np.ndarray:
        """Return each incident's share in ``[start, end)`` (its range spread uniformly)."""
        span = self.t1 - self.t0
        overlap = np.clip(np.minimum(self.t1, end) - np.maximum(self.t0, start), 0.0, None)
        exact = span <= 0
        w = np.where(exact, 0.0, overlap / np.where(exact, 1.0, span))
        w[exact] = ((self.t0[exact] >= start) & (self.t0[exact] < end)).astype(float)
        return w

    def midpoints(self) -> np.ndarray:
        """Return the middle of each incident's range, in days."""
        return 0.5 * (self.t0 + self.t1)


def history_from_lonlat(
    lon: np.ndarray,
    lat: np.ndarray,
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    category: np.ndarray,
    owner: np.ndarray | None = None,
    *,
    frame: Frame | None = None,
) -> History:
    """Build a :class:`History` from WGS84 points and ``datetime64`` ranges.

    Incidents without a point or a start time are dropped (they cannot be placed in a
    cell or a window). ``occurred_to`` NaT (or before the start) means an exact time.

    Examples
    --------
    >>> t = np.array(["2020-01-01T10", "2020-01-02T00"], dtype="datetime64[us]")
    >>> h = history_from_lonlat(np.array([-79.4, -79.41]), np.array([43.7, 43.7]), t,
    ...     np.array(["NaT", "2020-01-03T00"], dtype="datetime64[us]"), np.array(["a", "b"]))
    >>> [round(float(v), 3) for v in h.t1 - h.t0]
    [0.0, 1.0]
    """
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    t0 = days(occurred_from)
    t1 = days(occurred_to) if occurred_to is not None else t0.copy()
    t1 = np.where(np.isnan(t1) | (t1 < t0), t0, t1)
    keep = ~(np.isnan(lon) | np.isnan(lat) | np.isnan(t0))
    lon, lat = lon[keep], lat[keep]
    if frame is None:
        frame = Frame(
            float(np.median(lon)) if lon.size else 0.0, float(np.median(lat)) if lat.size else 0.0
        )
    x, y = frame.forward(lon, lat)
    own = np.asarray(owner if owner is not None else np.full(keep.shape[0], ""), dtype=object)
    return History(
        frame, x, y, t0[keep], t1[keep], np.asarray(category, dtype=object)[keep], own[keep]
    )


def history_from_arrays(
    arrays: AnalysisArrays, *, by: str = "nibrs_code", frame: Frame | None = None
) -> History:
    """Build a :class:`History` from the viewer's analysis arrays.

    Parameters
    ----------
    arrays
        From :func:`crossbeat.sharing.arrays.analysis_arrays` (policy applied, audited).
    by
        ``"nibrs_code"`` or ``"crime_against"``: which column is the category.
    frame
        Metric frame (default: centred at the median point).
    """
    cat = arrays.nibrs_code if by == "nibrs_code" else arrays.crime_against
    start, end = arrays.time_range()  # a coarsened time: to the end of its period
    return history_from_lonlat(
        arrays.lon,
        arrays.lat,
        start,
        end,
        cat,
        arrays.owner,
        frame=frame,
    )
