"""NIJ rule mode: the 2017 Real-Time Crime Forecasting Challenge's limits and files (issue #13).

The challenge fixed each cell's area between 62,500 and 360,000 sq ft (square cells of
250–600 ft a side), the flagged area between 0.25 and 0.75 sq mi, and the windows to
1 week, 2 weeks, 1, 2 and 3 months from the forecast date. :func:`nij_forecast` refuses
anything outside those limits, flags only whole cells inside the study area (a clipped
boundary cell would fall below the minimum cell area), and :func:`write_submission`
writes what an independent scorer needs: ``flagged.geojson`` (one WGS84 polygon per
flagged cell) and ``grid.csv`` (every cell of the study area: id, WKT polygon, area in
m², flagged 0/1, expected count). :func:`search` picks the cell size and flagged area
inside the limits by a rolling backtest before the forecast date
(:func:`crossbeat.forecast.cells.grid_search` with the NIJ limits).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Polygon

from crossbeat.forecast.cells import grid_search
from crossbeat.forecast.grid import SquareGrid, grid_for
from crossbeat.forecast.history import History
from crossbeat.forecast.models import Model

SQ_FT = 0.09290304
SQ_MI = 2_589_988.110336
CELL_MIN_M2 = 62_500 * SQ_FT
CELL_MAX_M2 = 360_000 * SQ_FT
FLAGGED_MIN_M2 = 0.25 * SQ_MI
FLAGGED_MAX_M2 = 0.75 * SQ_MI
#: Window names and their lengths (months are calendar months from the start).
WINDOWS = {"1w": "7D", "2w": "14D", "1m": "1M", "2m": "2M", "3m": "3M"}


class NijRuleError(ValueError):
    """A request outside the NIJ challenge's limits."""


def window_end(start: float, name: str) -> float:
    """Return the end (float days) of the NIJ window ``name`` starting at day ``start``.

    Examples
    --------
    >>> window_end(0.0, "2w"), window_end(0.0, "1m"), window_end(31.0, "3m")
    (14.0, 31.0, 120.0)
    """
    if name not in WINDOWS:
        raise NijRuleError(f"unknown NIJ window {name!r}: use one of {', '.join(WINDOWS)}")
    spec = WINDOWS[name]
    if spec.endswith("D"):
        return start + float(spec[:-1])
    day = np.datetime64(int(np.floor(start)), "D")
    month = day.astype("datetime64[M]")
    if day != month.astype("datetime64[D]"):
        raise NijRuleError("monthly NIJ windows start on the first day of a month")
    end = (month + int(spec[:-1])).astype("datetime64[D]")
    return float(end.astype("int64"))


def check_cell(size_m: float) -> None:
    """Refuse a square cell whose area is outside 62,500–360,000 sq ft."""
    a = size_m * size_m
    if not CELL_MIN_M2 - 1e-6 <= a <= CELL_MAX_M2 + 1e-6:
        raise NijRuleError(
            f"cell of {size_m:g} m is {a / SQ_FT:,.0f} sq ft: NIJ cells are 62,500–360,000 sq ft "
            f"(square cells of {CELL_MIN_M2**0.5:.1f}–{CELL_MAX_M2**0.5:.1f} m)"
        )


def check_flagged(area_m2: float) -> None:
    """Refuse a flagged area outside 0.25–0.75 sq mi."""
    if not FLAGGED_MIN_M2 - 1e-6 <= area_m2 <= FLAGGED_MAX_M2 + 1e-6:
        raise NijRuleError(f"flagged area {area_m2 / SQ_MI:.3f} sq mi: NIJ allows 0.25–0.75 sq mi")


@dataclass(frozen=True)
class NijForecast:
    """A compliant forecast: expected counts per cell and the flagged cells."""

    grid: SquareGrid
    start: float
    end: float
    window: str
    model: str
    expected: np.ndarray
    flagged: np.ndarray

    @property
    def flagged_area(self) -> float:
        """Return the flagged area in m²."""
        return float(self.grid.area[self.flagged].sum())


def _whole(grid: SquareGrid) -> np.ndarray:
    return grid.area >= grid.size * grid.size * (1 - 1e-9)


def flag_area(expected: np.ndarray, grid: SquareGrid, area_m2: float) -> np.ndarray:
    """Return the highest-risk whole cells covering ``area_m2``, kept inside the NIJ limits.

    The number of cells is the most that fit in ``area_m2``, raised to the fewest that
    reach 0.25 sq mi when rounding down would fall below it.
    """
    check_cell(grid.size)
    check_flagged(area_m2)
    cell = grid.size * grid.size
    k = int(np.floor(area_m2 / cell * (1 + 1e-9)))
    if k * cell < FLAGGED_MIN_M2 - 1e-6:
        k = int(np.ceil(FLAGGED_MIN_M2 / cell * (1 - 1e-9)))
    check_flagged(k * cell)
    whole = np.flatnonzero(_whole(grid))
    if whole.size < k:
        raise NijRuleError("the study area has too few whole cells for the flagged area")
    order = np.lexsort((whole, -np.asarray(expected, float)[whole]))
    return np.sort(whole[order[:k]])


def nij_forecast(
    model: Model, history: History, grid: SquareGrid, start: float, window: str, area_m2: float
) -> NijForecast:
    """Fit ``model`` before ``start`` and flag ``area_m2`` of whole cells for the NIJ window."""
    check_cell(grid.size)
    check_flagged(area_m2)
    end = window_end(start, window)
    model.fit(history, grid, start)
    expected = model.predict(start, end)
    return NijForecast(
        grid, start, end, window, model.name, expected, flag_area(expected, grid, area_m2)
    )


def write_submission(
    forecast: NijForecast, directory: Path, area: shapely.Geometry | None = None
) -> tuple[Path, Path]:
    """Write ``flagged.geojson`` and ``grid.csv`` for an independent scorer.

    ``area`` (WGS84) clips the boundary cells' polygons in ``grid.csv`` (flagged cells
    are whole cells, never clipped).
    """
    directory.mkdir(parents=True, exist_ok=True)
    g = forecast.grid
    rings = g.polygons_lonlat()
    flagged = {int(i) for i in forecast.flagged}
    features = [
        {
            "type": "Feature",
            "properties": {"cell": int(i), "expected": float(forecast.expected[i])},
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in rings[i]]]},
        }
        for i in sorted(flagged)
    ]
    meta = {
        "window": forecast.window,
        "model": forecast.model,
        "cell_size_m": g.size,
        "flagged_area_sq_mi": forecast.flagged_area / SQ_MI,
        "start": str(np.datetime64(int(round(forecast.start * 86400)), "s")),
        "end": str(np.datetime64(int(round(forecast.end * 86400)), "s")),
    }
    gj = directory / "flagged.geojson"
    gj.write_text(
        json.dumps({"type": "FeatureCollection", "properties": meta, "features": features})
    )
    path = directory / "grid.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cell", "wkt", "area_m2", "flagged", "expected"])
        for i, ring in enumerate(rings):
            poly: shapely.Geometry = Polygon(ring)
            if area is not None and g.area[i] < g.size * g.size * (1 - 1e-9):
                poly = shapely.intersection(poly, area)
            w.writerow(
                [i, poly.wkt, f"{g.area[i]:.3f}", int(i in flagged), f"{forecast.expected[i]:.6g}"]
            )
    return gj, path


@dataclass(frozen=True)
class SearchResult:
    """The best cell size and flagged area found, and every combination's mean PAI."""

    cell_ft: float
    area_sq_mi: float
    pai: float
    table: list[tuple[float, float, float]]


def search(
    history: History,
    make_model: Callable[[], Model],
    windows: Sequence[tuple[float, float]],
    *,
    cells_ft: Sequence[float] = (250.0, 350.0, 450.0, 600.0),
    areas_sq_mi: Sequence[float] = (0.25, 0.5, 0.75),
    area: shapely.Geometry | None = None,
) -> SearchResult:
    """Pick the cell size and flagged area (inside the NIJ limits) with the best mean PAI.

    The backtest ``windows`` must end before the forecast date (the caller's
    validation period), so the choice never sees the period it is scored on.
    """
    for ft in cells_ft:
        check_cell(ft * 0.3048)
    for a in areas_sq_mi:
        check_flagged(a * SQ_MI)
    found = grid_search(
        history,
        make_model,
        lambda ft: grid_for(history.before(windows[0][0]), ft * 0.3048, area=area),
        windows,
        sizes=cells_ft,
        fractions=areas_sq_mi,
        size_limits=(CELL_MIN_M2**0.5 / 0.3048 - 1e-6, CELL_MAX_M2**0.5 / 0.3048 + 1e-6),
        fraction_limits=(0.25, 0.75),
        to_fraction=lambda grid, sq_mi: sq_mi * SQ_MI / grid.total_area,
    )
    return SearchResult(found.size, found.fraction, found.score, found.table)
