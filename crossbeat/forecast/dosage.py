"""An open evaluation of patrol dosage against outcomes (issue #13).

Method (stated so anyone can re-run it): among the boxes a forecast flagged, compare
the ratio of observed to forecast-expected incidents in the boxes that received at least
``threshold`` minutes of logged patrol (*dosed*) with the boxes that received less
(*undosed*). The rate ratio is ``(O_d / E_d) / (O_u / E_u)``: below 1, dosed boxes had
fewer incidents than the forecast expected, relative to the undosed ones. Conditional on
the total ``O_d + O_u``, ``O_d`` is binomial with ``p = E_d / (E_d + E_u)`` when dosage
has no effect; the p-value is the exact two-sided binomial test, and the 95 % interval is
the Clopper–Pearson interval for ``p`` turned into a rate ratio. This is an
observational comparison: boxes are not dosed at random, so it is evidence, not proof,
of an effect (the plan's seeded allocation makes a randomised design possible later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class DosageEffect:
    """Dosed against undosed boxes: counts, rate ratio, its 95 % interval and p-value."""

    dosed_boxes: int
    undosed_boxes: int
    dosed_observed: float
    dosed_expected: float
    undosed_observed: float
    undosed_expected: float
    rate_ratio: float
    ci_low: float
    ci_high: float
    p_value: float


def dosage_effect(
    minutes: np.ndarray, expected: np.ndarray, observed: np.ndarray, *, threshold: float = 10.0
) -> DosageEffect:
    """Compare outcomes in dosed and undosed flagged boxes (see the module docstring).

    Parameters
    ----------
    minutes
        Logged patrol minutes per flagged box.
    expected
        The forecast's expected count per box for the window.
    observed
        Incidents recorded per box in the window.
    threshold
        Minutes that make a box *dosed* (default 10: one Koper stay).

    Examples
    --------
    >>> e = dosage_effect(np.array([15.0, 0.0]), np.array([10.0, 10.0]), np.array([5.0, 10.0]))
    >>> round(e.rate_ratio, 2)
    0.5
    """
    minutes, expected, observed = (np.asarray(a, float) for a in (minutes, expected, observed))
    dosed = minutes >= threshold
    od, ou = float(observed[dosed].sum()), float(observed[~dosed].sum())
    ed, eu = float(expected[dosed].sum()), float(expected[~dosed].sum())
    nan = float("nan")
    if ed <= 0 or eu <= 0 or od + ou <= 0:
        return DosageEffect(
            int(dosed.sum()), int((~dosed).sum()), od, ed, ou, eu, nan, nan, nan, nan
        )
    ratio = (od / ed) / (ou / eu) if ou > 0 else float("inf")
    k, n = int(round(od)), int(round(od + ou))
    p0 = ed / (ed + eu)
    p_value = float(stats.binomtest(k, n, p0).pvalue)
    ci = stats.binomtest(k, n, p0).proportion_ci(0.95, method="exact")

    def to_ratio(p: float) -> float:
        return float("inf") if p >= 1 else (p / (1 - p)) / (ed / eu)

    return DosageEffect(
        int(dosed.sum()), int((~dosed).sum()), od, ed, ou, eu, ratio,
        to_ratio(ci.low), to_ratio(ci.high), p_value,
    )  # fmt: skip
