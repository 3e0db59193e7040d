"""The quarantine review of your agency, for the admin page (issue #12).

Quarantined rows hold raw source values (names, addresses): reading them is an audited
read by the signed-in agency admin (:func:`crossbeat.sharing.quarantine.read_quarantine`)
and dismissing them an audited change. A row is fixed by editing its raw values
(``POST /api/v1/quarantine/{id}/fix``, audited, values never logged) and retried with the
feed's profile (``POST /api/v1/quarantine/retry``): rows that now read are stored, as an
ingest stores them. A whole feed is fixed by correcting its profile and uploading again.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from crossbeat.api.deps import ActorDep, CsrfDep, StoreDep
from crossbeat.api.errors import ApiError
from crossbeat.api.schemas import ERRORS
from crossbeat.live.jobs import JobError, stored_profile
from crossbeat.sharing.quarantine import (
    FixError,
    dismiss_for,
    feeds_for,
    fix_for,
    read_quarantine,
    retry_for,
)

router = APIRouter(prefix="/quarantine", tags=["quarantine"])


class DismissIn(BaseModel):
    """Rows to dismiss, and why (kept in the audit log and on each row)."""

    ids: list[Annotated[int, Field(ge=0, le=2**62)]] = Field(max_length=1000)
    reason: str = Field(min_length=1, max_length=500)
    agency: str | None = Field(
        default=None, max_length=64, description="Whose rows (default: yours; platform admins)."
    )


class FixIn(BaseModel):
    """New raw values of one row's fields, and why."""

    changes: dict[Annotated[str, Field(max_length=200)], str | None] = Field(
        max_length=50, description="Field name (as in the source) to its value (at least one)."
    )
    reason: str = Field(min_length=1, max_length=500)
    agency: str | None = Field(
        default=None, max_length=64, description="Whose row (default: yours; platform admins)."
    )


class RetryIn(BaseModel):
    """Rows to retry, with the feed's profile."""

    ids: list[Annotated[int, Field(ge=0, le=2**62)]] = Field(max_length=1000)
    profile: str | None = Field(
        default=None,
        max_length=200_000,
        description="The profile's TOML; default: the last uploaded profile of the rows' feed.",
    )
    accept_timezone: bool = Field(
        default=False, description="Accept a profile time zone that differs from the agency's."
    )
    agency: str | None = Field(
        default=None, max_length=64, description="Whose rows (default: yours; platform admins)."
    )


@router.get("", responses=ERRORS, summary="Your agency's quarantined rows, with their reasons")
def get_quarantine(
    store: StoreDep,
    actor: ActorDep,
    status: Annotated[
        Literal["open", "resolved", "dismissed"], Query(description="Which rows.")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    agency: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Agency (default: yours)."),
    ] = None,
) -> dict[str, Any]:
    """Return your agency's quarantined rows (raw values included): an audited read."""
    entries = read_quarantine(
        store, agency_id=agency, status=status, limit=limit, offset=offset, by=actor
    )
    return {"entries": [e.as_dict() for e in entries]}


@router.post(
    "/dismiss",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Dismiss quarantined rows (kept, with the reason)",
)
def post_dismiss(body: DismissIn, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Mark open rows of your agency dismissed; answers how many changed."""
    try:
        dismissed = dismiss_for(store, actor, body.ids, body.reason, agency_id=body.agency)
        return {"dismissed": dismissed}
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


@router.post(
    "/{entry_id}/fix",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Edit a quarantined row's raw values (then retry it)",
)
def post_fix(entry_id: str, body: FixIn, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Replace raw values of an open row of your agency; answers the row, still open.

    Audited as a change naming the fields edited, never their values. 404 for an id
    that is no quarantined row of the agency.
    """
    number = int(entry_id) if entry_id.isdigit() and len(entry_id) < 19 else -1
    try:
        entry = fix_for(store, actor, number, body.changes, body.reason, agency_id=body.agency)
    except FixError as exc:
        raise ApiError(404 if exc.unknown else 400, str(exc)) from None
    return {"entry": entry.as_dict()}


@router.post(
    "/retry",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Retry quarantined rows with their feed's profile",
)
def post_retry(body: RetryIn, store: StoreDep, actor: ActorDep) -> dict[str, Any]:
    """Normalise the rows again: those that now read are stored and resolved.

    Without ``profile``, the last profile of the rows' feed uploaded by your agency
    (``POST /api/v1/uploads``). Each stored group is audited as an ingest.
    """
    agency = body.agency or actor.agency_id
    names = feeds_for(store, actor, body.ids, agency_id=agency)
    if not names:
        raise ApiError(404, "none of these rows is an open quarantined row of " + agency)
    if len(names) > 1 and body.profile is None:
        raise ApiError(400, f"these rows come from several feeds ({', '.join(names)}): retry each")
    try:
        text = body.profile if body.profile is not None else stored_profile(store, agency, names[0])
        summary = retry_for(
            store, actor, text, body.ids, agency_id=agency, accept_timezone=body.accept_timezone
        )
    except (JobError, ValueError) as exc:  # a bad profile (ProfileError) included
        raise ApiError(400, str(exc)) from None
    return {"retry": summary.as_dict()}
