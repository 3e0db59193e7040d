"""Every analysis by name, for the adapters: run it, render it as JSON, GeoJSON or PNG.

The CLI (``crossbeat analyse NAME``) and the API (``/api/v1/analysis/NAME``) both call
:func:`run_named` and :func:`render_named`, so they take the same parameters and give
the same answers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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

    Raises
    ------
    AnalysisError
        Unknown analysis, a parameter it does not take, or input it cannot use
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
