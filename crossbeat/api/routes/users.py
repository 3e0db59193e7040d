"""Users and roles of your agency, for the admin page (issue #12).

Thin adapters over :mod:`crossbeat.auth.accounts`: who may list or manage whom is
decided there (agency admins their own agency's accounts, platform admins every
agency's), and every change is an ``account.*`` event in the audit log, written in the
same transaction through the request's audit sink.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from crossbeat.api.deps import ActorDep, CsrfDep, EventsDep, StoreDep
from crossbeat.api.schemas import ERRORS
from crossbeat.auth.accounts import (
    User,
    disable_user,
    enable_user,
    get_user,
    list_users,
    set_roles,
)
from crossbeat.auth.roles import Action, authorize

router = APIRouter(prefix="/users", tags=["users"])

Username = Annotated[str, Path(min_length=1, max_length=200, description="The username.")]


class RolesIn(BaseModel):
    """The roles a user is to have (all of them: this replaces the current set)."""

    roles: list[Annotated[str, Field(max_length=64)]] = Field(max_length=10)


def _user(user: User) -> dict[str, Any]:
    return user.as_dict()


@router.get("", responses=ERRORS, summary="List your agency's users and their roles")
def get_users(
    store: StoreDep,
    actor: ActorDep,
    agency: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Agency (default: yours)."),
    ] = None,
) -> dict[str, Any]:
    """Return the accounts of your agency (platform admins: of ``agency``), by username."""
    return {"users": [_user(u) for u in list_users(store, agency_id=agency, by=actor)]}


@router.put(
    "/{username}/roles",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Replace a user's roles",
)
def put_roles(
    username: Username, body: RolesIn, store: StoreDep, actor: ActorDep, events: EventsDep
) -> dict[str, Any]:
    """Give a user exactly these roles (audited, with the roles before and after)."""
    # Who may manage the account is settled before the roles asked for are read:
    # another agency's admin learns nothing from the validation of the body.
    authorize(actor, Action.MANAGE_USERS, get_user(store, username).agency_id)
    return _user(set_roles(store, username, body.roles, by=actor, events=events))


@router.post(
    "/{username}/disable",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Disable a user (ends their sessions)",
)
def post_disable(
    username: Username, store: StoreDep, actor: ActorDep, events: EventsDep
) -> dict[str, Any]:
    """Disable an account: its sessions end at once; it can be enabled again."""
    return _user(disable_user(store, username, by=actor, events=events))


@router.post(
    "/{username}/enable",
    responses=ERRORS,
    dependencies=[CsrfDep],
    summary="Enable a disabled user",
)
def post_enable(
    username: Username, store: StoreDep, actor: ActorDep, events: EventsDep
) -> dict[str, Any]:
    """Enable an account that was disabled (by an admin or for inactivity)."""
    return _user(enable_user(store, username, by=actor, events=events))
