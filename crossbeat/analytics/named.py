"""Every analysis by name, for the adapters: run it, render it as JSON, GeoJSON or PNG.

The CLI (``crossbeat analyse NAME``) and the API (``/api/v1/analysis/NAME``) both call
:func:`run_named` and :func:`render_named`, so they take the same parameters and give
the same answers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from crossbeat.analysis import budget
from crossbeat.analysis.errors import AnalysisError
from crossbeat.analytics import links, render, run
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.store import Store

Format = Literal["json", "geojson", "png"]


@dataclass(frozen=True)
class Analysis:
    """One analysis: how to run it and the formats it renders to."""

    run: Callable[..., Any]
    json: Callable[..., dict[str, Any]]
    png: Callable[[Any], bytes] | None = None
    geojson: bool = False


def _dup_json(found: links.Found, geojson: bool = False) -> dict[str, Any]:
    p = found.pairs
    from dataclasses import asdict

    return {
        "analysis": "duplicates",
        "params": asdict(p.params),
        "n_used": p.n_used,
        "skipped": p.skipped.reasons,
        "pairs": found.rows(),
    }


ANALYSES: Mapping[str, Analysis] = {
    "kde": Analysis(run.kde, render.kde_json, lambda o: render.kde_png(o.result), True),
    "hotspots": Analysis(
        run.hotspots,
        render.hotspots_json,
        lambda o: render.hotspots_png(o.result, shapes=o.shapes),
        True,
    ),
    "emerging": Analysis(
        run.emerging, render.emerging_json, lambda o: render.emerging_png(o.result), True
    ),
    "trends": Analysis(
        run.trends,
        lambda o, geojson=False: render.trends_json(o),
        lambda o: render.trends_png(o.result),
    ),
    "compstat": Analysis(run.compstat, lambda o, geojson=False: render.compstat_json(o)),
    "nearrepeat": Analysis(
        run.nearrepeat,
        lambda o, geojson=False: render.nearrepeat_json(o),
        lambda o: render.knox_png(o.result),
    ),
    "series": Analysis(
        run.series, lambda o, geojson=False: render.series_json(o), render.series_png
    ),
    "duplicates": Analysis(links.find, _dup_json),
}


#: The largest selection the analyses whose cost grows with the square of the incidents
#: accept, whatever the overall limit (``analysis_max_incidents``) says.
MAX_INCIDENTS: Mapping[str, int] = {"nearrepeat": 100_000, "series": 500_000}


def max_incidents(name: str, overall: int) -> int:
    """Return the largest selection analysis ``name`` accepts under an overall limit."""
    return min(overall, MAX_INCIDENTS.get(name, overall))


def parameters(name: str) -> set[str]:
    """Return the keyword parameters analysis ``name`` takes."""
    sig = inspect.signature(ANALYSES[name].run)
    return {p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


#: Allowed words of the analyses' word-valued parameters.
CHOICES: Mapping[str, tuple[str, ...]] = {
    "cells": ("h3", "grid", "area"),
    "period": ("day", "week", "month"),
    "by": ("agency", "region", "area"),
    "categories": ("crime_against", "nibrs_code"),
}
#: Whole-number parameters and their smallest and largest values (None: no bound).
INTEGERS: Mapping[str, tuple[int | None, int | None]] = {
    "resolution": (0, 15),  # H3's resolutions
    "k": (1, None),
    "permutations": (0, None),
    "seed": (None, None),
    "bins": (3, None),
    "years": (1, None),
    "min_samples": (2, None),
    "limit": (1, None),
}
#: Positive real parameters (``alpha`` and ``threshold`` also below 1).
POSITIVE = ("bandwidth", "cell_m", "eps_m", "eps_days", "eps_hours", "max_range_days")
FRACTIONS = ("alpha", "threshold")
EDGES = ("distance_edges_m", "time_edges_days")


def _coerce(key: str, value: Any) -> Any:
    """Return ``value`` as the type parameter ``key`` takes, or raise AnalysisError."""
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise AnalysisError(f"{key} must be one of {', '.join(CHOICES[key])}, got {value!r}")
        return value
    if key == "bandwidth" and value in ("scott", "silverman"):
        return value
    if key == "as_of":
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            raise AnalysisError(f"as_of must be a date (YYYY-MM-DD), got {value!r}") from None
    if key in EDGES:
        try:
            parts = value.split(",") if isinstance(value, str) else list(value)
            return tuple(float(v) for v in parts)
        except (TypeError, ValueError):
            raise AnalysisError(
                f"{key} must be band edges separated by commas, e.g. 0,100,200, got {value!r}"
            ) from None
    if key in INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnalysisError(f"{key} must be a whole number, got {value!r}")
        lo, hi = INTEGERS[key]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise AnalysisError(f"{key} must be {bounds}, got {value}")
        return value
    if key in POSITIVE or key in FRACTIONS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            what = "metres" if key in ("bandwidth", "cell_m", "eps_m") else "a number"
            extra = " or scott or silverman" if key == "bandwidth" else ""
            raise AnalysisError(f"{key} must be positive ({what}{extra}), got {value!r}")
        if key in FRACTIONS and value >= 1:
            raise AnalysisError(f"{key} must be between 0 and 1, got {value!r}")
        return float(value)
    return value


def run_named(
    name: str,
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None,
    params: Mapping[str, Any],
    *,
    max_incidents: int | None = None,
    seconds: float | None = None,
) -> Any:
    """Run analysis ``name`` with those of ``params`` it takes (None values are dropped).

    ``max_incidents`` and ``seconds`` limit the selection's size and the computing time
    (:mod:`crossbeat.analysis.budget`; None: no limit).

    Values are checked and converted (a word from its choices, a whole number in its
    range, a positive number, ``as_of`` from ISO text, band edges from ``0,100,200``),
    so the CLI's ``-p NAME=VALUE`` text gets the API's checks.

    Raises
    ------
    AnalysisError
        Unknown analysis, a parameter it does not take, a value it cannot take, or input
        it cannot use
        (:class:`~crossbeat.analysis.budget.SelectionTooLarge` beyond ``max_incidents``).
    BudgetExceeded
        When the analysis ran past ``seconds``.
    """
    if name not in ANALYSES:
        raise AnalysisError(f"unknown analysis {name!r} (known: {', '.join(ANALYSES)})")
    given = {k: v for k, v in params.items() if v is not None}
    extra = sorted(set(given) - parameters(name))
    if extra:
        raise AnalysisError(
            f"{name} takes no {', '.join(extra)} (it takes: {', '.join(sorted(parameters(name)))})"
        )
    given = {k: _coerce(k, v) for k, v in given.items()}
    with budget.limits(name, max_incidents=max_incidents, seconds=seconds):
        return ANALYSES[name].run(store, viewer, request, **given)


def render_named(name: str, outcome: Any, f: Format = "json") -> dict[str, Any] | bytes:
    """Render a result as a JSON-ready dict (``json``/``geojson``) or PNG bytes."""
    a = ANALYSES[name]
    if f == "png":
        if a.png is None:
            raise AnalysisError(f"{name} has no picture: ask for f=json")
        return a.png(outcome)
    if f == "geojson" and not a.geojson:
        raise AnalysisError(f"{name} has no GeoJSON form: ask for f=json")
    return a.json(outcome, geojson=(f == "geojson"))
