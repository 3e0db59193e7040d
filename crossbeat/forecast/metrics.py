"""Forecast accuracy: PAI, PEI, hit rate and calibration (issue #13).

Cells are flagged in descending order of risk (ties by cell index, so results are
reproducible) until adding the next cell would exceed the area budget.

* hit rate = incidents in flagged cells / all incidents (Chainey et al. 2008);
* PAI = hit rate / (flagged area / total area) (Chainey et al. 2008);
* PEI = incidents in flagged cells / the most incidents any set of as many cells could hold
  (Hunt 2016; NIJ 2017 uses it with the same number of cells).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def flag(risk: np.ndarray, area: np.ndarray, budget: float) -> np.ndarray:
    """Return the indices of the highest-risk cells whose summed area stays within ``budget``.

    Examples
    --------
    >>> flag(np.array([0.1, 0.9, 0.5]), np.array([1.0, 1.0, 1.0]), 2.0).tolist()
    [1, 2]
    """
    order = np.lexsort((np.arange(risk.size), -np.asarray(risk, float)))
    cum = np.cumsum(np.asarray(area, float)[order])
    return order[: int(np.searchsorted(cum, budget * (1 + 1e-9), side="right"))]


@dataclass(frozen=True)
class Score:
    """Accuracy of one forecast at one area fraction."""

    fraction: float
    area: float
    cells: int
    hits: float
    total: float
    hit_rate: float
    pai: float
    pei: float


def score(risk: np.ndarray, observed: np.ndarray, area: np.ndarray, fraction: float) -> Score:
    """Score a forecast: flag ``fraction`` of the total area and count what falls in it.

    Examples
    --------
    >>> s = score(np.array([3.0, 2, 1, 0]), np.array([2.0, 0, 1, 1]), np.ones(4), 0.25)
    >>> s.hit_rate, s.pai, s.pei
    (0.5, 2.0, 1.0)
    """
    area = np.asarray(area, float)
    total_area = float(area.sum())
    chosen = flag(risk, area, fraction * total_area)
    total = float(np.sum(observed))
    hits = float(np.sum(observed[chosen]))
    best = float(np.sum(np.sort(observed)[::-1][: chosen.size]))
    flagged_area = float(area[chosen].sum())
    hr = hits / total if total > 0 else float("nan")
    pai = hr / (flagged_area / total_area) if flagged_area > 0 and total > 0 else float("nan")
    pei = hits / best if best > 0 else float("nan")
    return Score(fraction, flagged_area, int(chosen.size), hits, total, hr, pai, pei)


def calibration(
    expected: np.ndarray, observed: np.ndarray, bins: int = 10
) -> list[tuple[float, float, int]]:
    """Return ``(mean expected, mean observed, cells)`` per decile of expected count.

    A calibrated model's expected counts match the observed ones in every bin.
    """
    order = np.argsort(expected, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if part.size:
            out.append((float(expected[part].mean()), float(observed[part].mean()), int(part.size)))
    return out
