"""Forecasts with their model cards, shared patrol plans and dosage logs (issue #13).

Thin adapters over :mod:`crossbeat.forecast.service` and :mod:`crossbeat.forecast.plans`:
a forecast reads the signed-in user's view of the data (the sharing policy applies) and
returns its model card, with the backtest scores and accountability figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from crossbeat.api.deps import ActorDep, CsrfDep, StoreDep, ViewerDep
from crossbeat.api.errors import ApiError
from crossbeat.api.schemas import ERRORS, FILTERED
from crossbeat.forecast.nij import NijRuleError
from crossbeat.forecast.patrol import PatrolRules
from crossbeat.forecast.plans import (
    Position,
    dosage_from_positions,
    evaluate_dosage,
    log_dosage,
    save_patrol_plan,
)
from crossbeat.forecast.service import ForecastError, get_model_card, list_model_cards, run_forecast

router = APIRouter(tags=["forecasts"])


class ForecastIn(BaseModel):
    """A forecast request."""

    category: str = Field(
        min_length=1,
        max_length=80,
        pattern=r"^[0-9A-Za-z]{2,4}( *, *[0-9A-Za-z]{2,4})*$",
        description="NIBRS code, e.g. 220, or several joined by commas, forecast together "
        "(e.g. 120,13A,13B).",
    )
    start: datetime = Field(description="Window start, with a time zone.")
    window_days: float = Field(7.0, gt=0, le=366)
    model: str = Field(
        "ensemble-decayed",
        description="Forecasting model, e.g. naive, shrunk, counts-selected or borrowed; the "
        "default is the one chosen on validation windows (docs/forecasting.md).",
    )
    cell_m: float = Field(150.0, ge=10, le=5000, description="Square cell side (cells=square).")
    fraction: float = Field(0.01, gt=0, lt=1)
    cells: str = Field(
        "square",
        max_length=80,
        pattern=r"^(square|h3:\d{1,2}|area:[A-Za-z0-9_.-]+)$",
        description="Cell kind: square (of cell_m), h3:RESOLUTION (5-11) or area:LAYER "
        "(one of your agency's area layers).",
    )


class PatrolPlanIn(BaseModel):
    """A patrol plan request over a model card."""

    model_card_id: str = Field(min_length=1, max_length=36)
    units: int = Field(ge=1, le=500)
    shift_start: datetime
    shift_hours: float = Field(8.0, ge=0.5, le=24)
    seed: int = 0


class DosageIn(BaseModel):
    """Time a unit spent in a box."""

    plan_id: str | None = Field(None, max_length=36)
    cell: int
    unit: str = Field(min_length=1, max_length=64)
    started_at: datetime
    minutes: float = Field(gt=0, le=1440)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (ForecastError, NijRuleError) as exc:
        raise ApiError(400, str(exc)) from exc


@router.post(
    "/forecasts",
    status_code=201,
    openapi_extra=FILTERED,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Forecast a category and store its model card",
)
def post_forecast(
    body: ForecastIn, store: StoreDep, viewer: ViewerDep, actor: ActorDep
) -> dict[str, Any]:
    """Fit on your view of the data before ``start``, backtest, flag cells; return the card."""
    card = _call(
        run_forecast,
        store,
        viewer,
        category=body.category,
        start=body.start,
        window_days=body.window_days,
        model=body.model,
        cell_m=body.cell_m,
        fraction=body.fraction,
        cells=body.cells,
    )
    return dict(card.to_dict())


@router.get("/forecasts", responses=ERRORS, summary="List your agency's model cards")
def get_forecasts(
    store: StoreDep, actor: ActorDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[dict[str, Any]]:
    """Return your agency's model cards, newest first."""
    return [c.to_dict() for c in list_model_cards(store, actor.agency_id, limit=limit)]


@router.get("/forecasts/{card_id}", responses=ERRORS, summary="One model card")
def get_forecast(card_id: str, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Return one of your agency's model cards."""
    try:
        return dict(get_model_card(store, card_id, actor.agency_id).to_dict())
    except ForecastError as exc:
        raise ApiError(404, str(exc)) from exc


@router.post(
    "/patrol-plans",
    status_code=201,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Plan your units' patrols over a model card's hot spots",
)
def post_patrol_plan(body: PatrolPlanIn, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Allocate and route units (boxes in partners' plans for the same shift are left to them)."""
    get_forecast(body.model_card_id, store, actor)  # 404 for a card that is not yours
    return dict(
        _call(
            save_patrol_plan,
            store,
            actor.agency_id,
            body.model_card_id,
            units=body.units,
            shift_start=body.shift_start,
            seed=body.seed,
            rules=PatrolRules(shift_minutes=body.shift_hours * 60),
            by=actor.user_id,
        )
    )


@router.post(
    "/dosage",
    status_code=201,
    openapi_extra=FILTERED,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Log time a unit spent in a box",
)
def post_dosage(body: DosageIn, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Record a stay in a box (from the field app)."""
    new = _call(
        log_dosage,
        store,
        actor.agency_id,
        plan_id=body.plan_id,
        cell=body.cell,
        unit=body.unit,
        started_at=body.started_at,
        minutes=body.minutes,
        by=actor.user_id,
    )
    return {"id": new}


class PositionIn(BaseModel):
    """Where a unit was at a moment."""

    unit: str = Field(min_length=1, max_length=64)
    at: datetime
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class PositionsIn(BaseModel):
    """A batch of unit positions (a vehicle locator's or the field app's pings)."""

    positions: list[PositionIn] = Field(max_length=20_000)
    max_gap_minutes: float = Field(5.0, gt=0, le=60)


@router.post(
    "/patrol-plans/{plan_id}/positions",
    status_code=201,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Derive dosage from your units' posted positions",
)
def post_positions(
    plan_id: str, body: PositionsIn, store: StoreDep, actor: ActorDep
) -> dict[str, Any]:
    """Log the stays in the plan's boxes that the positions show (positions are not stored)."""
    try:
        stays = dosage_from_positions(
            store,
            actor.agency_id,
            plan_id,
            [Position(p.unit, p.at, p.lon, p.lat) for p in body.positions],
            max_gap_minutes=body.max_gap_minutes,
            by=actor.user_id,
        )
    except ForecastError as exc:
        if str(exc).startswith("no patrol plan"):
            raise ApiError(404, str(exc)) from exc
        raise ApiError(400, str(exc)) from exc
    return {"stays": stays, "minutes": sum(s["minutes"] for s in stays)}


@router.get(
    "/patrol-plans/{plan_id}/dosage-evaluation",
    openapi_extra=FILTERED,
    responses=ERRORS,
    summary="Evaluate a patrol plan's logged dosage against outcomes",
)
def get_dosage_evaluation(
    plan_id: str,
    store: StoreDep,
    viewer: ViewerDep,
    actor: ActorDep,
    threshold: Annotated[
        float, Query(gt=0, le=1440, description="Minutes that make a box dosed.")
    ] = 10.0,
) -> dict[str, Any]:
    """Compare observed/expected incidents in dosed and undosed boxes (method in the answer).

    Incidents are read through your view of the data (the sharing policy applies).
    """
    try:
        return dict(evaluate_dosage(store, viewer, plan_id, threshold=threshold))
    except ForecastError as exc:
        if str(exc).startswith("no patrol plan"):
            raise ApiError(404, str(exc)) from exc
        raise ApiError(400, str(exc)) from exc
