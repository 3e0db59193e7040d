"""The quarantine review of your agency, for the admin page (issue #12).

Quarantined rows hold raw source values (names, addresses): reading them is an audited
read by the signed-in agency admin (:func:`crossbeat.sharing.quarantine.read_quarantine`)
and dismissing them an audited change. To fix rows, correct the feed's profile and upload
again (``POST /api/v1/uploads``): rows that now read are stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from crossbeat.api.deps import ActorDep, CsrfDep, StoreDep
from crossbeat.api.errors import ApiError
from crossbeat.api.schemas import ERRORS
from crossbeat.sharing.quarantine import dismiss_for, read_quarantine

router = APIRouter(prefix="/quarantine", tags=["quarantine"])


class DismissIn(BaseModel):
    """Rows to dismiss, and why (kept in the audit log and on each row)."""

    ids: list[Annotated[int, Field(ge=0, le=2**62)]] = Field(max_length=1000)
    reason: str = Field(min_length=1, max_length=500)
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
