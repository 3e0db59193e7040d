"""API tokens of your agency, for the admin page (issue #12).

Thin adapters over :mod:`crossbeat.auth.tokens`: agency admins manage their own
agency's tokens, auditors may list them; a new token's secret is answered once and
never again; creation and revocation are ``token.*`` events in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from crossbeat.api.deps import ActorDep, CsrfDep, EventsDep, StoreDep
from crossbeat.api.schemas import ERRORS
from crossbeat.auth.roles import Action, authorize
from crossbeat.auth.tokens import create_token, list_tokens, revoke_token

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    """A new token: what it may do and what it is for."""

    purpose: str = Field(max_length=32, description="ingest or read.")
    label: str | None = Field(default=None, max_length=200, description="What it is for.")
    agency: str | None = Field(
        default=None, max_length=64, description="The agency it acts for (default: yours)."
    )


@router.get("", responses=ERRORS, summary="List your agency's API tokens")
def get_tokens(
    store: StoreDep,
    actor: ActorDep,
    agency: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Agency (default: yours)."),
    ] = None,
) -> dict[str, Any]:
    """Return your agency's tokens, newest first, revoked ones included (never a secret)."""
    return {"tokens": [t.as_dict() for t in list_tokens(store, agency_id=agency, by=actor)]}


@router.post(
    "",
    status_code=201,
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Create an API token for your agency (platform admins: for any)",
)
def post_token(
    body: TokenIn, store: StoreDep, actor: ActorDep, events: EventsDep
) -> dict[str, Any]:
    """Create a token for your agency; ``secret`` is in this answer only, store it now."""
    # Who may create one is settled before the body is read (a refusal says nothing else).
    agency = body.agency or actor.agency_id
    authorize(actor, Action.MANAGE_TOKENS, agency)
    made = create_token(store, agency, body.purpose, label=body.label, by=actor, events=events)
    return {**made.token.as_dict(), "secret": made.secret}


@router.post(
    "/{token_id}/revoke",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Revoke an API token at once",
)
def post_revoke(
    token_id: Annotated[str, Path(min_length=1, max_length=64)],
    store: StoreDep,
    actor: ActorDep,
    events: EventsDep,
) -> dict[str, Any]:
    """Revoke a token: the next call with it is refused; revoking twice changes nothing."""
    return revoke_token(store, token_id, by=actor, events=events).as_dict()
