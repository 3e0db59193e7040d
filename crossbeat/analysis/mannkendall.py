"""The Mann-Kendall trend test, vectorised over many series (one per row)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from crossbeat.analysis.errors import AnalysisError


@dataclass(frozen=True)
class MannKendall:
    """Per series: Kendall's ``s``, its variance (tie-corrected), ``z``, two-sided ``p``, ``tau``.

    ``tau`` is Kendall's tau-a, ``s / (n (n - 1) / 2)``; ``z`` uses the continuity
    correction ``(s - sign(s)) / sqrt(var_s)``, as Mann (1945) and Kendall (1975), and
    pymannkendall's ``original_test``.
    """

    s: np.ndarray
    var_s: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau: np.ndarray


def mann_kendall(series: np.ndarray) -> MannKendall:
    """Run the Mann-Kendall test on each row of ``series`` (rows: series, columns: time).

    Raises
    ------
    AnalysisError
        With fewer than three time steps or missing values.
    """
    x = np.atleast_2d(np.asarray(series, dtype=float))
    n = x.shape[1]
    if n < 3:
        raise AnalysisError(f"a trend test needs at least three time steps, got {n}")
    if np.isnan(x).any():
        raise AnalysisError("series contain missing values")
    iu, ju = np.triu_indices(n, k=1)
    s = np.zeros(x.shape[0])
    ties = np.zeros(x.shape[0])
    for start in range(0, x.shape[0], 4096):
        block = x[start : start + 4096]
        s[start : start + len(block)] = np.sign(block[:, ju] - block[:, iu]).sum(axis=1)
        # Size of each value's tie group; sum over groups of t(t-1)(2t+5) is the sum over
        # elements of (t-1)(2t+5).
        t = (block[:, :, None] == block[:, None, :]).sum(axis=2)
        ties[start : start + len(block)] = ((t - 1) * (2 * t + 5)).sum(axis=1)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var_s > 0, (s - np.sign(s)) / np.sqrt(var_s), 0.0)
    p = 2 * stats.norm.sf(np.abs(z))
    return MannKendall(s=s, var_s=var_s, z=z, p=p, tau=s / (n * (n - 1) / 2))
