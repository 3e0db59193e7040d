"""Getis-Ord Gi* hot spots on H3 hexagons, a square grid or an area layer, with BH FDR.

Counts of incidents per cell are compared with the counts in their neighbourhood
(the cell itself and its neighbours: H3 ``grid_disk(cell, k)``, or the ``(2k+1)²``
square block). The z-score is the analytic Gi* of Ord and Getis (1995) with binary
weights including self; it is the same number PySAL esda's ``G_Local(star=True).Zs``
gives on those weights. P-values are two-sided normal; ``q`` are Benjamini-Hochberg
adjusted p-values over all cells, and a cell is a hot (cold) spot at FDR ``alpha`` when
``q < alpha`` and ``z > 0`` (``z < 0``).

Optional permutation inference (``permutations > 0``) shuffles the counts over all
cells (total randomisation) and reports pseudo p-values
``(1 + #{|z_sim| >= |z|}) / (permutations + 1)``: they can never go below
``1 / (permutations + 1)``, so over thousands of cells BH can pass none of them unless
``permutations`` is large (the smallest q is about ``cells / (permutations + 1)`` times
the smallest p). Decisions use the analytic p-values; the permutation ones are a check.

The study area matters: cells with no incident are real zeros. By default the study
area is every occupied cell and its ``k``-ring (so empty streets next to busy ones
count); pass ``cells`` to fix the area (e.g. every cell covering a jurisdiction).
"""

from __future__ import annotations

from dataclasses import dataclass

import h3
import numpy as np
import scipy.sparse as sp
import shapely
from scipy import stats

from crossbeat.analysis.budget import check_time
from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.analysis.points import to_metres, valid_lonlat


@dataclass(frozen=True)
class GiParams:
    """The parameters a Gi* run used.

    ``cells`` is ``"h3"`` or ``"grid"``; ``resolution`` the H3 resolution, or the cell
    size in metres for a grid (whose ``crs`` is then the projection used).
    """

    cells: str
    resolution: float
    k: int
    alpha: float
    permutations: int
    seed: int | None
    crs: str | None


@dataclass(frozen=True)
class GiResult:
    """Gi* per cell: ``cell`` ids (H3 strings or ``"col,row"``), ``count``, ``z``, ``p``, ``q``.

    ``hot`` / ``cold`` mark cells significant at FDR ``alpha``; ``p_sim`` is NaN
    without permutations. ``neighbours`` is the number of cells in each neighbourhood
    (including the cell itself).
    """

    cell: np.ndarray
    count: np.ndarray
    z: np.ndarray
    p: np.ndarray
    q: np.ndarray
    hot: np.ndarray
    cold: np.ndarray
    p_sim: np.ndarray
    neighbours: np.ndarray
    n_used: int
    skipped: Skipped
    params: GiParams


def gi_star_z(values: np.ndarray, weights: sp.spmatrix) -> np.ndarray:
    """Return the Gi* z-scores of ``values`` for a weights matrix that includes self.

    ``z_i = (sum_j w_ij x_j - xbar W_i) / (S sqrt((n S1_i - W_i^2) / (n - 1)))`` with
    ``W_i = sum_j w_ij``, ``S1_i = sum_j w_ij^2`` and ``S`` the population standard
    deviation (Ord and Getis 1995, eq. 3).
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 3:
        raise AnalysisError(f"Gi* needs at least three cells, got {n}")
    w = sp.csr_matrix(weights, dtype=float)
    xbar = x.mean()
    s = np.sqrt((x**2).mean() - xbar**2)
    if not s > 0:
        raise AnalysisError("every cell has the same count: Gi* is undefined (no variation)")
    wi = np.asarray(w.sum(axis=1)).ravel()
    s1 = np.asarray(w.multiply(w).sum(axis=1)).ravel()
    num = w @ x - xbar * wi
    den = s * np.sqrt(np.clip(n * s1 - wi**2, 0, None) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, 0.0)


def _perm_pvalues(
    x: np.ndarray, w: sp.csr_matrix, z: np.ndarray, permutations: int, seed: int | None
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(x)
    xbar = x.mean()
    s = np.sqrt((x**2).mean() - xbar**2)
    wi = np.asarray(w.sum(axis=1)).ravel()
    s1 = np.asarray(w.multiply(w).sum(axis=1)).ravel()
    den = s * np.sqrt(np.clip(n * s1 - wi**2, 0, None) / (n - 1))
    den = np.where(den > 0, den, np.inf)[:, None]
    exceed = np.zeros(n)
    done = 0
    while done < permutations:
        check_time()
        batch = min(64, permutations - done)
        sims = np.column_stack([x[rng.permutation(n)] for _ in range(batch)])
        zs = (w @ sims - (xbar * wi)[:, None]) / den
        exceed += (np.abs(zs) >= np.abs(z)[:, None]).sum(axis=1)
        done += batch
    return (exceed + 1) / (permutations + 1)


def _finish(cell, counts, w, *, alpha, permutations, seed, n_used, skipped, params) -> GiResult:
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1, got {alpha}")
    z = gi_star_z(counts, w)
    p = 2 * stats.norm.sf(np.abs(z))
    q = stats.false_discovery_control(p, method="bh")
    p_sim = (
        _perm_pvalues(counts, sp.csr_matrix(w), z, permutations, seed)
        if permutations > 0
        else np.full(len(z), np.nan)
    )
    return GiResult(
        cell=cell,
        count=counts,
        z=z,
        p=p,
        q=q,
        hot=(q < alpha) & (z > 0),
        cold=(q < alpha) & (z < 0),
        p_sim=p_sim,
        neighbours=np.diff(sp.csr_matrix(w).indptr),
        n_used=n_used,
        skipped=skipped,
        params=params,
    )


def h3_weights(cells: list[str], k: int = 1) -> sp.csr_matrix:
    """Return binary weights (self included) linking each cell to its ``k``-ring in ``cells``."""
    index = {c: i for i, c in enumerate(cells)}
    rows, cols = [], []
    for i, c in enumerate(cells):
        for nb in h3.grid_disk(c, k):
            j = index.get(nb)
            if j is not None:
                rows.append(i)
                cols.append(j)
    n = len(cells)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def _check_counts(lon, lat) -> tuple[np.ndarray, Skipped]:
    keep, skipped = valid_lonlat(lon, lat)
    n = int(keep.sum())
    if n == 0:
        raise AnalysisError("empty selection: no incident with usable coordinates")
    if n == 1:
        raise AnalysisError("a single incident cannot make a hot spot; Gi* needs many")
    return keep, skipped


def h3_hotspots(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    resolution: int = 9,
    k: int = 1,
    cells: list[str] | None = None,
    alpha: float = 0.05,
    permutations: int = 0,
    seed: int | None = None,
) -> GiResult:
    """Gi* hot spots of incident counts on H3 cells of ``resolution`` (9: ~0.1 km² each).

    Parameters
    ----------
    lon, lat
        WGS84 coordinates; rows with missing or invalid coordinates are skipped and counted.
    k
        Neighbourhood radius in rings (1: the cell and its six neighbours).
    cells
        The study area; default the occupied cells and their ``k``-rings. Incidents in
        cells outside it are skipped ("outside the study area").
    alpha
        False discovery rate for the hot/cold flags.
    permutations, seed
        Optional permutation p-values (see the module docstring); ``seed`` makes them
        reproducible.
    """
    keep, skipped = _check_counts(lon, lat)
    lon_k = np.asarray(lon, dtype=float)[keep]
    lat_k = np.asarray(lat, dtype=float)[keep]
    ids = np.array([h3.latlng_to_cell(a, b, resolution) for a, b in zip(lat_k, lon_k, strict=True)])
    occupied, counts_occ = np.unique(ids, return_counts=True)
    if cells is None:
        area = set()
        for c in occupied:
            area.update(h3.grid_disk(str(c), k))
        cell_list = sorted(area)
    else:
        cell_list = list(dict.fromkeys(cells))
    pos = {c: i for i, c in enumerate(cell_list)}
    counts = np.zeros(len(cell_list))
    outside = 0
    for c, n in zip(occupied, counts_occ, strict=True):
        i = pos.get(str(c))
        if i is None:
            outside += int(n)
        else:
            counts[i] = n
    if outside:
        skipped = skipped.merged(Skipped({"outside the study area": outside}))
    if len(occupied) == 1 and cells is None:
        raise AnalysisError("every incident is in one cell: there is no spatial pattern to test")
    return _finish(
        np.array(cell_list),
        counts,
        h3_weights(cell_list, k),
        alpha=alpha,
        permutations=permutations,
        seed=seed,
        n_used=int(keep.sum()) - outside,
        skipped=skipped,
        params=GiParams("h3", float(resolution), k, alpha, permutations, seed, None),
    )


def grid_hotspots(
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    cell_m: float = 250.0,
    k: int = 1,
    crs: str | None = None,
    alpha: float = 0.05,
    permutations: int = 0,
    seed: int | None = None,
) -> GiResult:
    """Gi* hot spots on a square grid of ``cell_m`` metres in a projected CRS.

    The study area is the bounding box of the incidents (every cell, occupied or not);
    neighbourhoods are the ``(2k+1)²`` block of cells around each cell (queen contiguity).
    Cell ids are ``"col,row"`` with origin at ``(0, 0)`` of the CRS.
    """
    _check_counts(lon, lat)
    proj = to_metres(lon, lat, crs)
    if not cell_m > 0:
        raise AnalysisError(f"cell size must be positive, got {cell_m}")
    col = np.floor(proj.x / cell_m).astype(np.int64)
    row = np.floor(proj.y / cell_m).astype(np.int64)
    c0, r0 = col.min(), row.min()
    nc, nr = int(col.max() - c0 + 1), int(row.max() - r0 + 1)
    if nc * nr == 1:
        raise AnalysisError("every incident is in one cell: there is no spatial pattern to test")
    if nc * nr > 5_000_000:
        raise AnalysisError(f"a {nc}×{nr} grid is too large; raise cell_m")
    flat = (col - c0) * nr + (row - r0)
    counts = np.bincount(flat, minlength=nc * nr).astype(float)
    w = grid_weights(nc, nr, k)
    cc, rr = np.divmod(np.arange(nc * nr), nr)
    ids = np.char.add(np.char.add((cc + c0).astype(str), ","), (rr + r0).astype(str))
    return _finish(
        ids,
        counts,
        w,
        alpha=alpha,
        permutations=permutations,
        seed=seed,
        n_used=len(proj.x),
        skipped=proj.skipped,
        params=GiParams("grid", float(cell_m), k, alpha, permutations, seed, proj.crs),
    )


def grid_weights(nc: int, nr: int, k: int) -> sp.csr_matrix:
    """Return binary weights (self included) of the ``(2k+1)²`` block around each cell.

    Cells are numbered column-major, ``col * nr + row``, as :func:`grid_hotspots` does.
    """
    idx = np.arange(nc * nr)
    cc, rr = np.divmod(idx, nr)
    rows, cols = [], []
    for dc in range(-k, k + 1):
        for dr in range(-k, k + 1):
            c2, r2 = cc + dc, rr + dr
            ok = (c2 >= 0) & (c2 < nc) & (r2 >= 0) & (r2 < nr)
            rows.append(idx[ok])
            cols.append(c2[ok] * nr + r2[ok])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(nc * nr, nc * nr))


def area_weights(polygons: list[shapely.Geometry]) -> sp.csr_matrix:
    """Return binary queen-contiguity weights (self included): areas that touch or overlap."""
    tree = shapely.STRtree(polygons)
    i, j = tree.query(polygons, predicate="intersects")
    n = len(polygons)
    return sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))


def area_hotspots(
    lon: np.ndarray,
    lat: np.ndarray,
    names: list[str],
    polygons: list[shapely.Geometry],
    *,
    alpha: float = 0.05,
    permutations: int = 0,
    seed: int | None = None,
) -> GiResult:
    """Gi* hot spots of incident counts on an area layer (precincts, beats, boroughs).

    Each incident counts in the first area (in ``names`` order) that contains it;
    incidents outside every area are skipped ("outside the area layer"). Neighbours are
    the areas that touch or overlap an area (queen contiguity), the area itself included.

    Parameters
    ----------
    lon, lat
        WGS84 coordinates.
    names, polygons
        The areas and their WGS84 (multi)polygons.
    alpha, permutations, seed
        As for :func:`h3_hotspots`.

    Examples
    --------
    >>> squares = [shapely.box(x, 0, x + 1, 1) for x in range(5)]
    >>> r = area_hotspots(np.array([0.5, 0.5, 0.5, 1.5, 3.5]), np.array([0.5] * 5),
    ...                   ["a", "b", "c", "d", "e"], squares)
    >>> r.count.tolist(), r.neighbours.tolist()
    ([3.0, 1.0, 0.0, 1.0, 0.0], [2, 3, 3, 3, 2])
    """
    if len(names) != len(polygons):
        raise AnalysisError("names and polygons must have the same length")
    if len(polygons) < 2:
        raise AnalysisError("an area layer of fewer than two areas has no spatial pattern to test")
    keep, skipped = _check_counts(lon, lat)
    idx = np.flatnonzero(keep)
    points = shapely.points(np.asarray(lon, dtype=float)[idx], np.asarray(lat, dtype=float)[idx])
    tree = shapely.STRtree(polygons)
    pt, area = tree.query(points, predicate="within")
    first = np.full(len(idx), len(polygons), dtype=np.int64)
    np.minimum.at(first, pt, area)
    inside = first < len(polygons)
    outside = int((~inside).sum())
    if outside:
        skipped = skipped.merged(Skipped({"outside the area layer": outside}))
    if not inside.any():
        raise AnalysisError("no incident lies inside the areas of this layer")
    counts = np.bincount(first[inside], minlength=len(polygons)).astype(float)
    if (counts > 0).sum() == 1:
        raise AnalysisError("every incident is in one area: there is no spatial pattern to test")
    w = area_weights(polygons)
    if (np.diff(w.indptr) == len(polygons)).all():
        raise AnalysisError(
            f"every area touches every other ({len(polygons)} areas): Gi* would compare each "
            "with the whole layer and can find no hot spot; use a finer layer or cells=h3"
        )
    return _finish(
        np.array(names, dtype=object), counts, w, alpha=alpha,
        permutations=permutations, seed=seed, n_used=int(inside.sum()), skipped=skipped,
        params=GiParams("area", 0.0, 1, alpha, permutations, seed, None),
    )  # fmt: skip
