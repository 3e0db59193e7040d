"""Kernel density estimation on a projected grid (binned FFT via KDEpy).

Points are projected to metres (the local UTM zone from the data's centroid, or a given
CRS), a Gaussian kernel density is computed on a regular grid by linear binning and FFT
convolution (KDEpy ``FFTKDE``), and the density is scaled to *incidents per km²*: the
estimated number of incidents per square kilometre at each grid node, so the raster
integrates (times the cell area) to the number of incidents.

Contours are highest-density regions: the ``0.5`` contour is the smallest area holding
half of the estimated density mass, drawn with contourpy's filled contours and returned
as shapely polygons in WGS84.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import shapely
from contourpy import FillType, contour_generator
from KDEpy import FFTKDE

from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.analysis.points import to_lonlat, to_metres

if TYPE_CHECKING:
    from contourpy._contourpy import FillReturn_OuterOffset

Bandwidth = Literal["scott", "silverman"] | float


@dataclass(frozen=True)
class KdeParams:
    """The parameters a KDE used, enough to reproduce it."""

    crs: str
    bandwidth_m: float
    bandwidth_rule: str
    cell_m: float
    kernel: str
    mass_levels: tuple[float, ...]


@dataclass(frozen=True)
class KdeResult:
    """A density raster (nodes ``x[i], y[j]``) and its highest-density contours.

    ``density[i, j]`` is incidents per km² at projected node ``(x[i], y[j])``, whose WGS84
    position is ``(lon[i, j], lat[i, j])``. ``contours[level]`` is the WGS84 (multi)polygon
    holding ``level`` of the mass; ``thresholds[level]`` its density cut-off.
    """

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    density: np.ndarray
    contours: dict[float, shapely.Geometry]
    thresholds: dict[float, float]
    n_used: int
    skipped: Skipped
    params: KdeParams


def rule_of_thumb(x: np.ndarray, y: np.ndarray, rule: str = "scott") -> float:
    """Return an isotropic Gaussian bandwidth in metres for projected points.

    Both rules give ``sigma * n ** (-1/6)`` (in two dimensions Scott's and Silverman's
    factors coincide); they differ in the spread ``sigma``: ``scott`` uses the mean of
    the two standard deviations, ``silverman`` the robust ``min(std, IQR / 1.349)`` per
    axis, which a few far-away incidents cannot inflate.
    """
    n = len(x)
    if rule == "scott":
        sigma = (np.std(x, ddof=1) + np.std(y, ddof=1)) / 2
    elif rule == "silverman":
        parts = []
        for v in (x, y):
            iqr = np.subtract(*np.percentile(v, [75, 25])) / 1.349
            sd = np.std(v, ddof=1)
            parts.append(min(sd, iqr) if iqr > 0 else sd)
        sigma = sum(parts) / 2
    else:
        raise AnalysisError(f"unknown bandwidth rule {rule!r}: use 'scott', 'silverman' or metres")
    if not sigma > 0:
        raise AnalysisError("every incident is at one point: a rule-of-thumb bandwidth is zero")
    return float(sigma * n ** (-1 / 6))


def _mass_threshold(density: np.ndarray, level: float) -> float:
    flat = np.sort(density.ravel())[::-1]
    cum = np.cumsum(flat)
    k = int(np.searchsorted(cum, level * cum[-1]))
    return float(flat[min(k, len(flat) - 1)])


def kernel_density(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    bandwidth: Bandwidth = "scott",
    cell_m: float | None = None,
    crs: str | None = None,
    weights: np.ndarray | None = None,
    mass_levels: tuple[float, ...] = (0.5, 0.75, 0.9),
    max_nodes: int = 1024,
) -> KdeResult:
    """Estimate a Gaussian kernel density of incidents, in incidents per km².

    Parameters
    ----------
    lon, lat
        WGS84 coordinates; rows with missing or invalid coordinates are skipped and counted.
    bandwidth
        ``"scott"``, ``"silverman"`` (rules of thumb on projected coordinates) or the
        kernel's standard deviation in metres.
    cell_m
        Grid spacing in metres; default bandwidth / 4 (at most ``max_nodes`` per side).
    crs
        Projected CRS (e.g. ``"EPSG:32617"``); default the UTM zone of the centroid.
    weights
        Optional non-negative weight per incident (e.g. 1/size of a linked duplicate group).
    mass_levels
        Fractions of mass for the highest-density contours.

    Raises
    ------
    AnalysisError
        For an empty selection, a single incident, every incident at one point, or a
        non-positive bandwidth or cell size.
    """
    proj = to_metres(lon, lat, crs)
    x, y = proj.x, proj.y
    n = len(x)
    if n < 2:
        raise AnalysisError("a kernel density needs at least two incidents, got one")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=float)[proj.keep]
        if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise AnalysisError("weights must be finite, non-negative and not all zero")
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        raise AnalysisError(
            "every incident is at one point: a density surface would only show the kernel"
        )
    rule: str
    if isinstance(bandwidth, str):
        bw = rule_of_thumb(x, y, bandwidth)
        rule = bandwidth
    else:
        bw, rule = float(bandwidth), "metres"
    if not bw >= 0.01:
        raise AnalysisError(f"bandwidth must be positive (at least 0.01 m), got {bandwidth!r}")
    width = max(np.ptp(x), np.ptp(y)) + 8 * bw
    cell = float(cell_m) if cell_m is not None else max(bw / 4, width / (max_nodes - 1))
    if not cell > 0:
        raise AnalysisError(f"cell size must be positive, got {cell_m!r}")
    # At least one whole cell beyond the outermost incidents, so every point lies strictly
    # inside the grid (the binned FFT needs it) whatever the cell size.
    pad = max(4 * bw, 1.5 * cell)
    xs = np.arange(x.min() - pad, x.max() + pad + cell, cell)
    ys = np.arange(y.min() - pad, y.max() + pad + cell, cell)
    if len(xs) * len(ys) > 16 * max_nodes * max_nodes:
        raise AnalysisError(f"grid of {len(xs)}×{len(ys)} nodes is too large; raise cell_m")
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    # KDEpy truncates the kernel where its value falls below an absolute tolerance, which
    # in metres (peak ~1/bw²) cuts most of it away: work in units of the bandwidth.
    pdf = FFTKDE(kernel="gaussian", bw=1.0).fit(np.column_stack([x, y]) / bw, weights=w)
    pdf = pdf.evaluate(grid / bw) / (bw * bw)
    total = float(w.sum()) if w is not None else float(n)
    density = np.clip(pdf.reshape(len(xs), len(ys)), 0, None) * total * 1e6
    lon_g, lat_g = to_lonlat(gx, gy, proj.crs)
    contours: dict[float, shapely.Geometry] = {}
    thresholds: dict[float, float] = {}
    gen = contour_generator(xs, ys, density.T, fill_type=FillType.OuterOffset)
    for level in mass_levels:
        if not 0 < level < 1:
            raise AnalysisError(f"mass levels must be between 0 and 1, got {level}")
        cut = _mass_threshold(density, level)
        thresholds[level] = cut
        polys = []
        # filled() is typed as the union over every fill type; the generator was made
        # with FillType.OuterOffset, so it returns (points, offsets) lists.
        filled = cast("FillReturn_OuterOffset", gen.filled(cut, float(density.max()) + 1.0))
        points_list, offsets_list = filled
        for pts, offs in zip(points_list, offsets_list, strict=True):
            lon_p, lat_p = to_lonlat(pts[:, 0], pts[:, 1], proj.crs)
            rings = [
                np.column_stack([lon_p[a:b], lat_p[a:b]])
                for a, b in zip(offs[:-1], offs[1:], strict=True)
            ]
            polys.append(shapely.Polygon(rings[0], rings[1:]))
        contours[level] = shapely.MultiPolygon(polys) if polys else shapely.MultiPolygon()
    return KdeResult(
        x=xs,
        y=ys,
        lon=lon_g,
        lat=lat_g,
        density=density,
        contours=contours,
        thresholds=thresholds,
        n_used=n,
        skipped=proj.skipped,
        params=KdeParams(proj.crs, bw, rule, cell, "gaussian", tuple(mass_levels)),
    )
