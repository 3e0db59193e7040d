"""Square forecast grids in a metric frame, clipped to the jurisdictions (issue #13).

A :class:`SquareGrid` is a raster of ``size``-metre cells; the *active* cells are the
ones that intersect the study area (the jurisdiction polygons when given, else the cells
within ``reach`` metres of a training incident). Each active cell carries the area of its
intersection with the study area, so a PAI computed on the grid uses the real area of
the jurisdiction. Per-cell values are 1-D arrays over active cells, in raster order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from crossbeat.forecast.history import Frame, History


@dataclass(frozen=True)
class SquareGrid:
    """A raster of square cells of ``size`` metres; ``active`` flat indices are forecast.

    ``area`` (m²) is each active cell's area inside the study area; ``clip`` is that
    study area (metric) when the grid was clipped to jurisdictions, so that
    :meth:`observed` counts only what happened inside the area the PAI divides by.
    """

    frame: Frame
    x0: float
    y0: float
    size: float
    nx: int
    ny: int
    active: np.ndarray
    area: np.ndarray
    clip: BaseGeometry | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        """Return the number of active cells."""
        return int(self.active.shape[0])

    @property
    def total_area(self) -> float:
        """Return the study area in m²."""
        return float(self.area.sum())

    def cell_index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the active-cell index of each point (-1 outside the active cells)."""
        ix = np.floor((np.asarray(x) - self.x0) / self.size).astype(np.int64)
        iy = np.floor((np.asarray(y) - self.y0) / self.size).astype(np.int64)
        inside = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        flat = np.where(inside, iy * self.nx + ix, -1)
        lookup = np.full(self.nx * self.ny, -1, dtype=np.int64)
        lookup[self.active] = np.arange(self.n)
        return np.where(inside, lookup[np.clip(flat, 0, None)], -1)

    def counts(self, history: History, weights: np.ndarray | None = None) -> np.ndarray:
        """Return the (weighted) number of incidents in each active cell."""
        idx = self.cell_index(history.x, history.y)
        w = np.ones(len(history)) if weights is None else weights
        ok = idx >= 0
        return np.bincount(idx[ok], weights=w[ok], minlength=self.n)

    def observed(self, history: History, weights: np.ndarray | None = None) -> np.ndarray:
        """Return :meth:`counts` of the incidents inside the study area only.

        The scores (PAI, hit rate, PEI) count what happened in each cell against the
        cell's area *inside* the study area, so an incident in a boundary cell but
        outside the jurisdictions (a partner's record across the border, a point just
        outside the polygon) is not observed there: it would raise the boundary cell's
        hits without its area. Models may still learn from such incidents
        (:meth:`counts`). Without ``clip`` (a study area of whole cells) the two agree.
        """
        if self.clip is None:
            return self.counts(history, weights)
        w = np.ones(len(history)) if weights is None else np.asarray(weights, float)
        inside = shapely.intersects_xy(self.clip, history.x, history.y)
        return self.counts(history, np.where(inside, w, 0.0))

    def raster(self, values: np.ndarray) -> np.ndarray:
        """Return a ``(ny, nx)`` raster with ``values`` on the active cells, 0 elsewhere."""
        r = np.zeros(self.nx * self.ny)
        r[self.active] = values
        return r.reshape(self.ny, self.nx)

    def smooth(self, values: np.ndarray, sigma_m: float) -> np.ndarray:
        """Return ``values`` convolved with a Gaussian kernel of ``sigma_m`` metres (binned KDE)."""
        if sigma_m <= 0:
            return np.asarray(values, float)
        r = ndimage.gaussian_filter(self.raster(values), sigma_m / self.size, mode="constant")
        return r.ravel()[self.active]

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the metric centres ``(x, y)`` of the active cells."""
        iy, ix = np.divmod(self.active, self.nx)
        return self.x0 + (ix + 0.5) * self.size, self.y0 + (iy + 0.5) * self.size

    def corners(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return metric ``(xmin, ymin, xmax, ymax)`` of the active cells."""
        iy, ix = np.divmod(self.active, self.nx)
        x = self.x0 + ix * self.size
        y = self.y0 + iy * self.size
        return x, y, x + self.size, y + self.size

    def polygons_lonlat(self, cells: np.ndarray | None = None) -> list[list[tuple[float, float]]]:
        """Return each (selected) active cell as a closed WGS84 ring of 5 ``(lon, lat)``."""
        xmin, ymin, xmax, ymax = (a if cells is None else a[cells] for a in self.corners())
        xs = np.stack([xmin, xmax, xmax, xmin, xmin], axis=1)
        ys = np.stack([ymin, ymin, ymax, ymax, ymin], axis=1)
        lon, lat = self.frame.inverse(xs.ravel(), ys.ravel())
        lon, lat = lon.reshape(xs.shape), lat.reshape(ys.shape)
        return [
            list(zip(map(float, a), map(float, b), strict=True))
            for a, b in zip(lon, lat, strict=True)
        ]


def grid_for(
    history: History,
    size: float,
    *,
    area: BaseGeometry | None = None,
    reach: float = 500.0,
) -> SquareGrid:
    """Return a square grid of ``size`` metres over the study area.

    Parameters
    ----------
    history
        Training incidents (their frame is the grid's frame; without ``area`` they
        define the study area).
    size
        Cell side in metres.
    area
        The jurisdictions forecast for, as a WGS84 (lon/lat) shapely geometry. Cells are
        clipped to it: a boundary cell's area is its part inside.
    reach
        Without ``area``: cells within this many metres of a training incident form the
        study area (a conservative stand-in for a boundary: it excludes water and empty
        land, which would inflate PAI).

    Examples
    --------
    >>> from crossbeat.forecast.history import History, Frame
    >>> h = History(Frame(0, 0), np.array([0.0, 950.0]), np.array([0.0, 40.0]),
    ...     np.zeros(2), np.zeros(2), np.array(["a", "a"]), np.array(["", ""]))
    >>> g = grid_for(h, 100.0, reach=0.0)
    >>> g.n, g.total_area
    (2, 20000.0)
    """
    if size <= 0:
        raise ValueError("cell size must be positive")
    if area is not None:
        f = history.frame
        metric = shapely.transform(area, lambda xy: np.column_stack(f.forward(xy[:, 0], xy[:, 1])))
        xmin, ymin, xmax, ymax = metric.bounds
    else:
        if not len(history):
            raise ValueError("no incidents and no area: the study area is empty")
        xmin, xmax = float(history.x.min()) - reach, float(history.x.max()) + reach
        ymin, ymax = float(history.y.min()) - reach, float(history.y.max()) + reach
    x0 = np.floor(xmin / size) * size
    y0 = np.floor(ymin / size) * size
    nx = int(np.ceil((xmax - x0) / size)) or 1
    ny = int(np.ceil((ymax - y0) / size)) or 1
    if area is not None:
        iy, ix = np.divmod(np.arange(nx * ny), nx)
        boxes = shapely.box(
            x0 + ix * size, y0 + iy * size, x0 + (ix + 1) * size, y0 + (iy + 1) * size
        )
        shapely.prepare(metric)
        hit = shapely.intersects(metric, boxes)
        cells = np.flatnonzero(hit)
        part = shapely.area(shapely.intersection(boxes[cells], metric))
        keep = part > 1e-6 * size * size
        return SquareGrid(history.frame, x0, y0, size, nx, ny, cells[keep], part[keep], clip=metric)
    ix = np.floor((history.x - x0) / size).astype(np.int64)
    iy = np.floor((history.y - y0) / size).astype(np.int64)
    occupied = np.zeros((ny, nx), dtype=bool)
    occupied[iy, ix] = True
    r = int(np.ceil(reach / size))
    if r > 0:
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disk = (xx * xx + yy * yy) * size * size <= reach * reach
        occupied = ndimage.binary_dilation(occupied, structure=disk)
    cells = np.flatnonzero(occupied.ravel())
    return SquareGrid(history.frame, x0, y0, size, nx, ny, cells, np.full(cells.size, size * size))
