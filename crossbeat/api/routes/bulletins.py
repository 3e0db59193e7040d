"""Interagency bulletins: send, list, read, acknowledge (issue #10).

Each route calls :mod:`crossbeat.live.bulletins`; sending and acknowledging need a
signed-in user (with the CSRF token), reading any credential of an agency.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from crossbeat.api.deps import ActorDep, CsrfDep, StoreDep, ViewerDep
from crossbeat.api.errors import ApiError
from crossbeat.api.routes.incidents import _record, _record_model
from crossbeat.api.schemas import ERRORS, FILTERED
from crossbeat.live.bulletins import (
    KINDS,
    BulletinError,
    UnknownBulletin,
    acknowledge,
    create_bulletin,
    get_bulletin,
    list_bulletins,
)
from crossbeat.sharing.request import Viewer, ViewerKind

router = APIRouter(tags=["bulletins"])


class BulletinIn(BaseModel):
    """A bulletin to send."""

    kind: Literal["bolo", "series", "officer_safety"] = Field(
        description="; ".join(f"{k}: {v}" for k, v in KINDS.items())
    )
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)
    anchor: dict[str, Any] = Field(
        description='{"type": "point", "lat": .., "lon": ..}, {"type": "area", "geometry": '
        '<GeoJSON polygon>} or {"type": "incidents"}'
    )
    recipients: list[str] = Field(
        min_length=1, max_length=100, description="Agency ids and group:NAME."
    )
    incident_ids: list[str] = Field(default_factory=list, max_length=200)
    expires_at: datetime | None = None


def _agency(viewer: Viewer) -> str:
    if viewer.kind is ViewerKind.PUBLIC or viewer.agency_id is None:
        from crossbeat.auth.errors import AuthenticationError

        raise AuthenticationError("bulletins are for agencies: sign in or send an API token")
    return viewer.agency_id


@router.get("/bulletins", responses=ERRORS, summary="List the bulletins your agency sent or got")
def get_bulletins(
    store: StoreDep,
    viewer: ViewerDep,
    unacknowledged: Annotated[
        bool, Query(description="Only those addressed to you and not acknowledged.")
    ] = False,
) -> JSONResponse:
    """Return your agency's bulletins, newest first; ``unacknowledged`` flags each one
    addressed to you that your agency has not acknowledged."""
    found = list_bulletins(store, _agency(viewer), unacknowledged=unacknowledged)
    return JSONResponse({"bulletins": [b.to_dict() for b in found]})


@router.post(
    "/bulletins",
    status_code=201,
    openapi_extra=FILTERED,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Send a bulletin to partner agencies or groups",
)
def post_bulletin(
    store: StoreDep, viewer: ViewerDep, actor: ActorDep, body: BulletinIn
) -> JSONResponse:
    """Send a be-on-the-lookout, series warning or officer-safety notice; incident
    references must be incidents you may see."""
    try:
        made = create_bulletin(store, viewer, actor, **body.model_dump())
    except BulletinError as exc:
        raise ApiError(400, "the bulletin is not valid", exc.problems) from None
    return JSONResponse(made.to_dict(), status_code=201)


@router.get(
    "/bulletins/{bulletin_id}", responses=ERRORS, summary="Read a bulletin and its incidents"
)
def get_one_bulletin(store: StoreDep, viewer: ViewerDep, bulletin_id: str) -> JSONResponse:
    """Return a bulletin sent by or to your agency, with its incidents as you may see
    them (an audited read)."""
    _agency(viewer)
    try:
        found = get_bulletin(store, viewer, bulletin_id)
    except UnknownBulletin as exc:
        raise ApiError(404, str(exc)) from None
    model = _record_model(viewer)
    shaped = [_record(model, r).model_dump(mode="json") for r in found.records]
    return JSONResponse(replace(found, records=shaped).to_dict())


@router.post(
    "/bulletins/{bulletin_id}/ack",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Acknowledge a bulletin addressed to your agency",
)
def ack_bulletin(store: StoreDep, actor: ActorDep, bulletin_id: str) -> JSONResponse:
    """Acknowledge for your agency (once; again changes nothing)."""
    try:
        return JSONResponse(acknowledge(store, actor, bulletin_id).to_dict())
    except UnknownBulletin as exc:
        raise ApiError(404, str(exc)) from None
