"""Emerging hot spots: each cell classified by the history of its Gi* over time bins.

Incidents are counted per H3 cell and time bin (an incident known only as a range is
spread over the bins it may fall in, see :mod:`crossbeat.analysis.timespread`); Gi* is
computed per bin over the same study area and weights as :mod:`hotspots` (spatial
neighbours within the bin; Esri can also add earlier bins to the neighbourhood, we do
not), and a bin is a hot (cold) spot when its Benjamini-Hochberg q over all cells of
that bin is below ``alpha`` with ``z > 0`` (``z < 0``). The Mann-Kendall test on each
cell's series of z-scores gives the trend in the intensity of clustering.

Categories, following Esri's Emerging Hot Spot Analysis ("hot" below; "cold" mirrors it,
and is checked when the cell is not a hot pattern). Let ``H`` be the share of bins that
are hot, ``last`` whether the final bin is hot, and ``trend`` the Mann-Kendall result at
``alpha``:

* **new** — ``last`` and never hot before.
* **consecutive** — a single uninterrupted run of at least two hot bins ending at the
  final bin, never hot before that run, and ``H < 0.9``.
* **intensifying** — ``H >= 0.9``, ``last``, and a significant upward trend.
* **persistent** — ``H >= 0.9``, ``last``, and no significant trend.
* **diminishing** — ``H >= 0.9``, ``last``, and a significant downward trend.
* **sporadic** — ``H < 0.9``, hot in some bins (on and off) and never cold
  (and not new or consecutive).
* **oscillating** — ``last``, ``H < 0.9``, and cold in some earlier bin.
* **historical** — not ``last`` but ``H >= 0.9``.
* **none** — none of the above.
"""

from __future__ import annotations

from dataclasses import dataclass

import h3
import numpy as np
from scipy import stats

from crossbeat.analysis.budget import check_time
from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.analysis.hotspots import gi_star_z, h3_weights
from crossbeat.analysis.mannkendall import mann_kendall
from crossbeat.analysis.points import valid_lonlat
from crossbeat.analysis.timespread import spread_over_bins

PATTERNS = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
)


@dataclass(frozen=True)
class EmergingParams:
    """The parameters an emerging hot spot run used."""

    resolution: int
    k: int
    alpha: float
    bin_edges: tuple[str, ...]
    #: The IANA time zone whose local days, weeks or months the bins are (``bin_edges``
    #: are UTC instants: the local midnights that begin them).
    timezone: str = "UTC"


@dataclass(frozen=True)
class EmergingResult:
    """Per cell: ``pattern`` (e.g. ``"new hot"``, ``"persistent cold"``, ``"none"``).

    ``counts``, ``z`` and ``state`` (+1 hot, -1 cold, 0 neither) are ``(cells, bins)``;
    ``trend_z`` and ``trend_p`` are the Mann-Kendall test on each cell's z-scores.
    """

    cell: np.ndarray
    pattern: np.ndarray
    counts: np.ndarray
    z: np.ndarray
    state: np.ndarray
    trend_z: np.ndarray
    trend_p: np.ndarray
    n_used: int
    skipped: Skipped
    params: EmergingParams


def classify(state: np.ndarray, trend_z: np.ndarray, trend_p: np.ndarray, alpha: float) -> str:
    """Return the Esri pattern of one cell from its per-bin states (+1/-1/0) and trend."""
    for sign, name in ((1, "hot"), (-1, "cold")):
        on = state == sign
        other = state == -sign
        share = on.mean()
        last = bool(on[-1])
        up = trend_p < alpha and trend_z * sign > 0
        down = trend_p < alpha and trend_z * sign < 0
        if share >= 0.9:
            if not last:
                return f"historical {name}"
            if up:
                return f"intensifying {name}"
            if down:
                return f"diminishing {name}"
            return f"persistent {name}"
        if last:
            before = on[:-1]
            if not before.any():
                return f"new {name}"
            run = len(on) - np.flatnonzero(~on)[-1] - 1 if (~on).any() else len(on)
            if run >= 2 and not on[: len(on) - run].any():
                return f"consecutive {name}"
            if other[:-1].any():
                return f"oscillating {name}"
            return f"sporadic {name}"
        if on.any() and not other.any():
            return f"sporadic {name}"
    return "none"


def emerging_hotspots(
    lon: np.ndarray,
    lat: np.ndarray,
    occurred_from: np.ndarray,
    occurred_to: np.ndarray | None,
    bin_edges: np.ndarray,
    *,
    resolution: int = 8,
    k: int = 1,
    alpha: float = 0.05,
) -> EmergingResult:
    """Classify each H3 cell's hot spot history over time bins ``bin_edges`` (datetime64).

    Raises
    ------
    AnalysisError
        For an empty selection, a single incident, fewer than three bins, or no
        variation in any bin.
    """
    edges = np.asarray(bin_edges)
    if len(edges) < 4:
        raise AnalysisError("emerging hot spots need at least three time bins (four edges)")
    keep, skipped = valid_lonlat(lon, lat)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        raise AnalysisError("empty selection: no incident with usable coordinates")
    if len(idx) == 1:
        raise AnalysisError("a single incident cannot make a hot spot")
    of = np.asarray(occurred_from)[idx]
    ot = None if occurred_to is None else np.asarray(occurred_to)[idx]
    bw = spread_over_bins(of, ot, edges)
    skipped = skipped.merged(bw.skipped)
    if bw.outside:
        skipped = skipped.merged(Skipped({"outside the time bins": int(round(bw.outside))}))
    lon_k = np.asarray(lon, dtype=float)[idx]
    lat_k = np.asarray(lat, dtype=float)[idx]
    ids = np.array([h3.latlng_to_cell(a, b, resolution) for a, b in zip(lat_k, lon_k, strict=True)])
    used = np.unique(bw.incident)
    if len(used) < 2:
        raise AnalysisError("fewer than two incidents fall in the time bins")
    occupied = np.unique(ids[used])
    if len(occupied) == 1:
        raise AnalysisError("every incident is in one cell: there is no spatial pattern to test")
    area: set[str] = set()
    for c in occupied:
        area.update(h3.grid_disk(str(c), k))
    cells = sorted(area)
    pos = {c: i for i, c in enumerate(cells)}
    cell_of = np.array([pos[str(c)] for c in ids])
    counts = bw.counts_by(cell_of, len(cells))
    w = h3_weights(cells, k)
    n_bins = counts.shape[1]
    z = np.zeros_like(counts)
    state = np.zeros(counts.shape, dtype=np.int8)
    for b in range(n_bins):
        check_time()
        col = counts[:, b]
        if np.ptp(col) == 0:
            continue  # nothing (or the same everywhere) in this bin: no hot or cold spot
        z[:, b] = gi_star_z(col, w)
        q = stats.false_discovery_control(2 * stats.norm.sf(np.abs(z[:, b])), method="bh")
        state[:, b] = np.where(q < alpha, np.sign(z[:, b]), 0).astype(np.int8)
    if not state.any() and not z.any():
        raise AnalysisError("no bin shows any variation between cells")
    mk = mann_kendall(z)
    pattern = np.array(
        [classify(state[i], mk.z[i], mk.p[i], alpha) for i in range(len(cells))], dtype=object
    )
    return EmergingResult(
        cell=np.array(cells),
        pattern=pattern,
        counts=counts,
        z=z,
        state=state,
        trend_z=mk.z,
        trend_p=mk.p,
        n_used=len(used),
        skipped=skipped,
        params=EmergingParams(resolution, k, alpha, tuple(str(e) for e in edges)),
    )
