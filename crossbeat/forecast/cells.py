"""Forecast cells of any shape: H3 hexagons and area-layer polygons (issue #13).

A :class:`CellGrid` is a set of polygons in a metric frame, each clipped to the study
area (the jurisdictions forecast for, when given), with the area of its part inside. It
offers what scoring needs (``n``, ``area``, ``counts``) like
:class:`crossbeat.forecast.grid.SquareGrid`, so :func:`crossbeat.forecast.backtest.rolling_backtest`
and the metrics work on it unchanged. Models run on a fine square raster and
:class:`OnCells` sums their forecast into the cells (each fine square goes to the cell
that holds its centre), so every model works on every cell shape.

:func:`grid_search` picks a cell size (or H3 resolution) and an area fraction inside
given limits by a rolling backtest on validation windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h3
import numpy as np
import shapely
from scipy.sparse import csr_matrix
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from crossbeat.forecast.grid import SquareGrid
from crossbeat.forecast.history import Frame, History


@dataclass(frozen=True)
class CellGrid:
    """Polygons (metric, clipped to the study area) forecast for; ``area`` in m²."""

    frame: Frame
    kind: str
    ids: tuple[str, ...]
    polygons: np.ndarray
    area: np.ndarray
    _tree: shapely.STRtree = field(repr=False, compare=False)

    @property
    def n(self) -> int:
        """Return the number of cells."""
        return len(self.ids)

    @property
    def total_area(self) -> float:
        """Return the study area in m²."""
        return float(self.area.sum())

    def cell_index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the cell holding each point (-1 outside every cell)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        out = np.full(x.shape[0], -1, dtype=np.int64)
        if not x.size:
            return out
        pts, cells = self._tree.query(shapely.points(x, y), predicate="intersects")
        # A point on a shared edge: the first cell that holds it.
        first = np.unique(pts, return_index=True)[1]
        out[pts[first]] = cells[first]
        return out

    def counts(self, history: History, weights: np.ndarray | None = None) -> np.ndarray:
        """Return the (weighted) number of incidents in each cell."""
        idx = self.cell_index(history.x, history.y)
        w = np.ones(len(history)) if weights is None else weights
        ok = idx >= 0
        return np.bincount(idx[ok], weights=w[ok], minlength=self.n)

    def observed(self, history: History, weights: np.ndarray | None = None) -> np.ndarray:
        """Return :meth:`counts`: the cells are already clipped to the study area."""
        return self.counts(history, weights)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Return a point inside each cell (its representative point), metric."""
        p = shapely.point_on_surface(self.polygons)
        return shapely.get_x(p), shapely.get_y(p)

    def polygons_lonlat(self) -> list[BaseGeometry]:
        """Return each cell as a WGS84 (lon/lat) shapely geometry."""
        f = self.frame
        return list(
            shapely.transform(
                self.polygons, lambda xy: np.column_stack(f.inverse(xy[:, 0], xy[:, 1]))
            )
        )


def _metric(geom: BaseGeometry, frame: Frame) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: np.column_stack(frame.forward(xy[:, 0], xy[:, 1])))


def _build(
    frame: Frame,
    kind: str,
    ids: Sequence[str],
    polys: Sequence[BaseGeometry],
    area: BaseGeometry | None,
) -> CellGrid:
    arr = np.asarray(polys, dtype=object)
    if area is not None:
        arr = shapely.intersection(arr, area)
    size = shapely.area(arr)
    keep = size > 1e-6 * max(float(np.max(size, initial=0.0)), 1e-9)
    arr, size = arr[keep], size[keep]
    kept = tuple(i for i, k in zip(ids, keep, strict=True) if k)
    if not kept:
        raise ValueError("no cell inside the study area")
    return CellGrid(frame, kind, kept, arr, np.asarray(size, float), shapely.STRtree(arr))


def h3_grid(
    history: History,
    resolution: int,
    *,
    area: BaseGeometry | None = None,
    reach: float = 500.0,
) -> CellGrid:
    """Return the H3 cells of ``resolution`` over the study area, clipped to it.

    Parameters
    ----------
    history
        Training incidents (their frame is the grid's; without ``area`` the cells within
        ``reach`` metres of an incident form the study area, as in
        :func:`crossbeat.forecast.grid.grid_for`).
    resolution
        H3 resolution, 0–15 (7 ≈ 5 km², 9 ≈ 0.1 km², 10 ≈ 0.015 km²).
    area
        The jurisdictions forecast for (WGS84 shapely geometry): cells are clipped to it.
    """
    if not 0 <= resolution <= 15:
        raise ValueError("H3 resolution must be between 0 and 15")
    f = history.frame
    if area is not None:
        inner = set(h3.geo_to_cells(area, resolution))
        seeds = inner or {h3.latlng_to_cell(area.centroid.y, area.centroid.x, resolution)}
        # Cells crossing the boundary with their centre outside neighbour an inside one.
        ring = {n for c in seeds for n in h3.grid_disk(c, 1)}
        cells = sorted(seeds | ring)
        metric_area = _metric(area, f)
    else:
        if not len(history):
            raise ValueError("no incidents and no area: the study area is empty")
        lon, lat = f.inverse(history.x, history.y)
        seeds = {
            h3.latlng_to_cell(float(b), float(a), resolution) for a, b in zip(lon, lat, strict=True)
        }
        edge = h3.average_hexagon_edge_length(resolution, "m")
        k = int(np.ceil(reach / (edge * np.sqrt(3)))) if reach > 0 else 0
        cells = sorted({n for c in seeds for n in h3.grid_disk(c, k)})
        metric_area = None
    polys = []
    for c in cells:
        ring_ll = h3.cell_to_boundary(c)
        x, y = f.forward(np.array([p[1] for p in ring_ll]), np.array([p[0] for p in ring_ll]))
        polys.append(Polygon(np.column_stack([x, y])))
    return _build(f, f"h3:{resolution}", cells, polys, metric_area)


def area_grid(
    history: History,
    areas: Mapping[str, BaseGeometry],
    *,
    layer: str = "areas",
    area: BaseGeometry | None = None,
) -> CellGrid:
    """Return an area layer's polygons (WGS84, by name) as forecast cells, clipped to ``area``."""
    if not areas:
        raise ValueError("the area layer has no areas")
    f = history.frame
    names = sorted(areas)
    polys = [_metric(areas[n], f) for n in names]
    return _build(f, f"areas:{layer}", names, polys, _metric(area, f) if area is not None else None)


@dataclass
class OnCells:
    """Run ``model`` on a fine square raster and sum its forecast into the cells.

    Each fine square of ``fine`` metres goes to the cell that holds its centre; squares
    outside every cell are dropped, so the forecast covers exactly the cells.
    """

    model: Any
    fine: float = 50.0
    name: str = ""
    _key: object = field(default=None, repr=False)
    _raster: SquareGrid | None = field(default=None, repr=False)
    _sum: csr_matrix | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Name the wrapper after its model."""
        self.name = self.name or self.model.name

    def _prepare(self, grid: CellGrid) -> SquareGrid:
        if self._key is grid and self._raster is not None:
            return self._raster
        xmin, ymin, xmax, ymax = shapely.total_bounds(grid.polygons)
        s = self.fine
        x0, y0 = np.floor(xmin / s) * s, np.floor(ymin / s) * s
        nx, ny = int(np.ceil((xmax - x0) / s)) or 1, int(np.ceil((ymax - y0) / s)) or 1
        iy, ix = np.divmod(np.arange(nx * ny), nx)
        owner = grid.cell_index(x0 + (ix + 0.5) * s, y0 + (iy + 0.5) * s)
        active = np.flatnonzero(owner >= 0)
        raster = SquareGrid(grid.frame, x0, y0, s, nx, ny, active, np.full(active.size, s * s))
        self._sum = csr_matrix(
            (np.ones(active.size), (owner[active], np.arange(active.size))),
            shape=(grid.n, active.size),
        )
        self._key, self._raster = grid, raster
        return raster

    def fit(self, history: History, grid: CellGrid, origin: float) -> None:
        """Fit the model on the fine raster covering the cells."""
        self.model.fit(history, self._prepare(grid), origin)

    def predict(self, start: float, end: float) -> np.ndarray:
        """Return the expected count per cell."""
        if self._sum is None:
            raise RuntimeError("fit the model before predicting")
        return np.asarray(self._sum @ self.model.predict(start, end))

    def params(self) -> dict[str, Any]:
        """Return the model's parameters and the fine raster's size."""
        return {**self.model.params(), "fine_raster_m": self.fine}


@dataclass(frozen=True)
class GridSearch:
    """The best size and area fraction found, and every combination's mean score."""

    size: float
    fraction: float
    score: float
    table: list[tuple[float, float, float]]


def grid_search(
    history: History,
    make_model: Callable[[], Any],
    make_grid: Callable[[float], Any],
    windows: Sequence[tuple[float, float]],
    *,
    sizes: Sequence[float],
    fractions: Sequence[float],
    size_limits: tuple[float, float],
    fraction_limits: tuple[float, float],
    metric: str = "pai",
    to_fraction: Callable[[Any, float], float] | None = None,
) -> GridSearch:
    """Pick the cell size and area fraction with the best mean ``metric`` on ``windows``.

    ``make_grid(size)`` builds a grid (a square side in metres, an H3 resolution, ...);
    every size and fraction must lie inside its limits (else ``ValueError``). The windows
    must end by the forecast date (validation data only): the choice never sees the
    period it is then scored on. ``to_fraction(grid, value)`` turns each value of
    ``fractions`` into a share of that grid's area when the values are something else
    (the NIJ mode searches flagged areas in sq mi); by default they are shares already.
    A score that cannot be computed (NaN: no incident in any window) never wins; ties
    go to the smaller size, then the smaller fraction.
    """
    from crossbeat.forecast.backtest import rolling_backtest

    lo, hi = size_limits
    flo, fhi = fraction_limits
    bad = [s for s in sizes if not lo <= s <= hi] + [f for f in fractions if not flo <= f <= fhi]
    if bad or not sizes or not fractions:
        raise ValueError(
            f"cell sizes must be in [{lo:g}, {hi:g}] and fractions in [{flo:g}, {fhi:g}]"
        )
    table = []
    for size in sizes:
        grid = make_grid(size)
        shares = [to_fraction(grid, f) if to_fraction else float(f) for f in fractions]
        bt = rolling_backtest(history, grid, [make_model()], windows, tuple(shares))
        for f, share in zip(fractions, shares, strict=True):
            table.append((float(size), float(f), bt.results[0].mean(share, metric)))
    best = max(table, key=lambda r: (np.nan_to_num(r[2], nan=-np.inf), -r[0]))
    return GridSearch(best[0], best[1], best[2], table)
