"""Mann-Kendall: vectorised test equals pymannkendall and scipy's Kendall tau."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crossbeat.analysis import AnalysisError
from crossbeat.analysis.mannkendall import mann_kendall

mk = pytest.importorskip("pymannkendall")


def test_matches_pymannkendall_with_ties():
    rng = np.random.default_rng(2)
    series = rng.poisson(4, (40, 15)).astype(float)  # many ties
    series[:10] += np.arange(15) * 0.6  # some with a real upward trend
    series[10:15] -= np.arange(15) * 0.6
    res = mann_kendall(series)
    for k, row in enumerate(series):
        ref = mk.original_test(row)
        assert res.s[k] == ref.s
        assert res.var_s[k] == pytest.approx(ref.var_s)
        assert res.z[k] == pytest.approx(ref.z)
        assert res.p[k] == pytest.approx(ref.p)
        assert res.tau[k] == pytest.approx(ref.Tau)
    assert (res.p[:10] < 0.05).mean() > 0.8 and (res.z[:10] > 0).all()


def test_tau_without_ties_equals_scipy_kendalltau():
    rng = np.random.default_rng(3)
    series = rng.normal(size=(5, 12))
    res = mann_kendall(series)
    for k, row in enumerate(series):
        assert res.tau[k] == pytest.approx(stats.kendalltau(np.arange(12), row).statistic)


def test_errors():
    with pytest.raises(AnalysisError, match="three time steps"):
        mann_kendall(np.array([[1.0, 2.0]]))
    with pytest.raises(AnalysisError, match="missing"):
        mann_kendall(np.array([[1.0, np.nan, 2.0]]))
