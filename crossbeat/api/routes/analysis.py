"""Cross-jurisdiction analytics over the incidents you may see (issue #11).

``GET /api/v1/analysis/{name}`` runs one analysis of :mod:`crossbeat.analytics.named`
(kde, hotspots, emerging, trends, compstat, nearrepeat, series, duplicates) on the
caller's policy-filtered incidents (one audited read) and returns JSON, GeoJSON
(``f=geojson``) or a PNG picture (``f=png``). ``GET /api/v1/incidents/{id}/similar``
ranks the incidents most like one. Both need a signed-in user or an API token (the
public's map has the aggregates and tiles); bad input answers 400 with the reason.

Limits (settings, :mod:`crossbeat.analysis.budget`): a selection larger than
``analysis_max_incidents`` (the Knox test at most 100,000, series 500,000) answers 422
before any computing; an analysis still computing after ``analysis_time_budget``
seconds is stopped and answers 503 with ``Retry-After``; and at most
``analysis_concurrency`` analyses compute at once per process, a further one answering
503 with ``Retry-After`` at once rather than queueing for a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from crossbeat.analysis.budget import BudgetExceeded, SelectionTooLarge, limits
from crossbeat.analysis.errors import AnalysisError, NotComparable
from crossbeat.analytics import render, run
from crossbeat.analytics.named import max_incidents, render_named, run_named
from crossbeat.api.deps import SettingsDep, SignedInDep, StoreDep, ViewerDep
from crossbeat.api.errors import ApiError
from crossbeat.api.filters import Agency, Area, Bbox, Filters, Offence, Purpose, Since, Until
from crossbeat.api.schemas import ERRORS, FILTERED, ErrorOut

router = APIRouter(tags=["analysis"])

Name = Literal[
    "kde", "hotspots", "emerging", "trends", "compstat", "nearrepeat", "series", "duplicates"
]
Opt = Query(default=None)


#: Seconds a client is asked to wait when every analysis slot is taken, or after an
#: analysis ran out of time.
BUSY_RETRY_AFTER = 10
BUDGET_RETRY_AFTER = 60

T = TypeVar("T")

_SLOTS_LOCK = threading.Lock()


def _slots(request: Request, size: int) -> threading.BoundedSemaphore:
    """Return the application's semaphore of analysis slots (made on first use)."""
    with _SLOTS_LOCK:
        sem = getattr(request.app.state, "analysis_slots", None)
        if sem is None:
            sem = threading.BoundedSemaphore(size)
            request.app.state.analysis_slots = sem
        return sem


@contextmanager
def _slot(request: Request, size: int) -> Iterator[None]:
    """Hold one analysis slot, or answer 503 with Retry-After when all are taken."""
    sem = _slots(request, size)
    if not sem.acquire(blocking=False):
        raise ApiError(
            503,
            f"the server is computing {size} analyses already: retry in {BUSY_RETRY_AFTER} s",
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )
    try:
        yield
    finally:
        sem.release()


def _limited(request: Request, settings: Any, fn: Callable[[], T]) -> T:
    """Run ``fn`` in an analysis slot, mapping the limits to the API's errors."""
    with _slot(request, settings.analysis_concurrency):
        try:
            return fn()
        except SelectionTooLarge as exc:
            raise ApiError(422, str(exc)) from None
        except BudgetExceeded as exc:
            raise ApiError(
                503, str(exc), headers={"Retry-After": str(BUDGET_RETRY_AFTER)}
            ) from None
        except AnalysisError as exc:
            raise ApiError(400, str(exc)) from None


def _json(body: dict[str, Any], geojson: bool) -> JSONResponse:
    return JSONResponse(body, media_type="application/geo+json" if geojson else "application/json")


@router.get(
    "/analysis/{name}",
    openapi_extra=FILTERED,
    responses={
        **ERRORS,
        422: {
            "model": ErrorOut,
            "description": "The selection is larger than the analysis accepts",
        },
        200: {
            "description": "The analysis (JSON), its map layer (f=geojson) or a picture (f=png).",
            "content": {"application/json": {}, "application/geo+json": {}, "image/png": {}},
        },
    },
    summary="Run an analysis on the incidents you may see",
)
def analysis(
    name: Name,
    http: Request,
    settings: SettingsDep,
    store: StoreDep,
    viewer: ViewerDep,
    _signed_in: SignedInDep,
    bbox: Bbox = None,
    since: Since = None,
    until: Until = None,
    offence: Offence = None,
    agency: Agency = None,
    area: Area = None,
    purpose: Purpose = None,
    f: Annotated[Literal["json", "geojson", "png"], Query(description="Output format.")] = "json",
    bandwidth: Annotated[
        float | None, Query(gt=0, description="kde: kernel sd in metres (default Scott's rule).")
    ] = None,
    cell_m: Annotated[
        float | None, Query(gt=0, description="kde/hotspots: grid cell in metres.")
    ] = None,
    cells: Annotated[
        Literal["h3", "grid", "area"] | None,
        Query(description="hotspots: H3 cells, a square grid or an area layer (with layer=)."),
    ] = None,
    layer: Annotated[
        str | None,
        Query(
            description="hotspots with cells=area, trends/compstat with by=area: the area "
            "layer, LAYER (your agency's) or AGENCY/LAYER."
        ),
    ] = None,
    resolution: Annotated[
        int | None, Query(ge=5, le=11, description="hotspots/emerging: H3 resolution.")
    ] = None,
    permutations: Annotated[
        int | None, Query(ge=0, le=9999, description="hotspots/nearrepeat: permutations.")
    ] = None,
    seed: Annotated[int | None, Query(description="Seed of anything random.")] = None,
    period: Annotated[
        Literal["day", "week", "month"] | None, Query(description="emerging/trends: bin.")
    ] = None,
    bins: Annotated[
        int | None, Query(ge=3, le=520, description="emerging/trends: number of bins.")
    ] = None,
    by: Annotated[
        Literal["agency", "region", "area"] | None,
        Query(
            description="trends/compstat: per agency (jurisdiction), per area of layer= "
            "(precinct, district, beat ...) or for the region."
        ),
    ] = None,
    years: Annotated[
        int | None,
        Query(ge=1, le=10, description="trends: years of seasonal baseline for the last period."),
    ] = None,
    as_of: Annotated[
        datetime | None, Query(description="compstat: last day (default: latest incident).")
    ] = None,
    eps_m: Annotated[float | None, Query(gt=0, description="series: metres apart.")] = None,
    eps_days: Annotated[float | None, Query(gt=0, description="series: days apart.")] = None,
    min_samples: Annotated[int | None, Query(ge=2, description="series: core size.")] = None,
    threshold: Annotated[
        float | None, Query(gt=0, lt=1, description="duplicates: min probability.")
    ] = None,
) -> Response:
    """Run analysis ``name`` on your policy-filtered incidents (unknown parameters: 400).

    Each answer carries the parameters used, the count per owner agency and what was
    skipped and why (linked duplicates are counted once).
    """
    request = Filters(
        bbox=bbox,
        since=since,
        until=until,
        offence=offence,
        agency=agency,
        purpose=purpose,
        area=area,
    ).request()
    params = {
        "bandwidth": bandwidth,
        "cell_m": cell_m,
        "cells": cells,
        "resolution": resolution,
        "permutations": permutations,
        "seed": seed,
        "period": period,
        "bins": bins,
        "by": by,
        "as_of": as_of,
        "years": years,
        "eps_m": eps_m,
        "eps_days": eps_days,
        "min_samples": min_samples,
        "threshold": threshold,
        "layer": layer,
    }
    seconds = settings.analysis_time_budget or None
    limit = max_incidents(name, settings.analysis_max_incidents)

    def compute() -> dict[str, Any] | bytes:
        outcome = run_named(
            name, store, viewer, request, params, max_incidents=limit, seconds=seconds
        )
        return render_named(name, outcome, f)

    body = _limited(http, settings, compute)
    if isinstance(body, bytes):
        return Response(body, media_type="image/png")
    return _json(body, f == "geojson")


@router.get(
    "/incidents/{incident_id}/similar",
    openapi_extra=FILTERED,
    responses={
        **ERRORS,
        422: {
            "model": ErrorOut,
            "description": "The selection is larger than the analysis accepts",
        },
    },
    summary="Incidents most like one",
)
def similar(
    incident_id: str,
    http: Request,
    settings: SettingsDep,
    store: StoreDep,
    viewer: ViewerDep,
    _signed_in: SignedInDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    eps_m: Annotated[float, Query(gt=0)] = 3000.0,
    eps_days: Annotated[float, Query(gt=0)] = 30.0,
) -> JSONResponse:
    """Rank the incidents you may see by likeness to one: same offence, near, same MO.

    An incident without a usable place, time or offence code answers an empty list with
    ``comparable: false`` and the reason (it is not a bad request).
    """

    def compute() -> dict[str, Any]:
        with limits(
            "similar",
            max_incidents=settings.analysis_max_incidents,
            seconds=settings.analysis_time_budget or None,
        ):
            try:
                outcome = run.similar(
                    store, viewer, incident_id, limit=limit, eps_m=eps_m, eps_days=eps_days
                )
            except LookupError as exc:
                raise ApiError(404, str(exc)) from None
            except NotComparable as exc:  # it exists; nothing can be ranked against it
                return {"analysis": "similar", "comparable": False, "reason": str(exc),
                        "results": []}  # fmt: skip
        return render.similar_json(outcome) | {"comparable": True}

    return _json(_limited(http, settings, compute), False)
