"""Analytics for a viewer: the policy-filtered incidents read once, then each analysis.

:mod:`crossbeat.analysis` is pure statistics over numpy arrays and never touches the
database. This package is the thin service between it and the adapters (CLI, API):

* :mod:`.selection` — the viewer's incidents as arrays through
  :func:`crossbeat.sharing.arrays.analysis_arrays` (one query, audited), with linked
  duplicates counted once and clear refusals for an empty selection;
* :mod:`.run` — one function per analysis, returning its typed result;
* :mod:`.links` — cross-agency duplicate links (found by splink, stored, audited);
* :mod:`.render` — results as JSON, GeoJSON and PNG.
"""

from crossbeat.analytics.selection import Selection, select

__all__ = ["Selection", "select"]
