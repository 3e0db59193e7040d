"""Cross-jurisdiction analytics: pure functions over numpy arrays of incidents.

No module here reads the database: callers pass the viewer's policy-filtered incidents
as arrays (WGS84 ``lon``/``lat``, ``occurred_from``/``occurred_to`` as datetime64,
categories, groups), and every result is a frozen dataclass carrying the parameters it
used and a :class:`Skipped` report of the inputs it left out and why.

* :mod:`.kde` — kernel density on a projected grid with highest-density contours.
* :mod:`.hotspots` — Getis-Ord Gi* on H3 cells or a square grid, with BH FDR.
* :mod:`.emerging` — emerging hot spot patterns over time bins (Mann-Kendall trend).
* :mod:`.nearrepeat` — Knox test with Monte Carlo permutation of times.
* :mod:`.trends` — counts by period, seasonal expected values, change tests, CompStat.
* :mod:`.timespread` — spreading incidents known only as a time range over bins.
* :mod:`.mannkendall` — the Mann-Kendall trend test, vectorised.
"""

from crossbeat.analysis.errors import AnalysisError, Skipped

__all__ = ["AnalysisError", "Skipped"]
