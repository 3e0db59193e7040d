"""The access log an agency's auditors read: every access to its data, by anyone (issue #3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from crossbeat.api.deps import ActorDep, CallerDep, StoreDep, audit_denied, client_ip
from crossbeat.api.errors import ApiError
from crossbeat.api.schemas import ERRORS, AuditEventOut, AuditListOut
from crossbeat.audit import Action, AuditEvent, append, events_for_owner, public_reads
from crossbeat.auth.errors import PermissionDenied
from crossbeat.auth.names import actor_names
from crossbeat.auth.roles import Action as RoleAction
from crossbeat.auth.roles import Actor, decide
from crossbeat.store import Store

router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    response_model=AuditListOut,
    responses=ERRORS,
    summary="Read the access log of your agency's data",
)
def get_audit(
    request: Request,
    store: StoreDep,
    caller: CallerDep,
    actor: ActorDep,
    agency: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Owner agency (default: yours; others: platform_admin).",
        ),
    ] = None,
    since: Annotated[datetime | None, Query(description="Events at or after (with zone).")] = None,
    until: Annotated[datetime | None, Query(description="Events before (with zone).")] = None,
    action: Annotated[str | None, Query(description="Only this action, e.g. read.")] = None,
    by: Annotated[str | None, Query(description="Only this actor (user or token id).")] = None,
    record_id: Annotated[str | None, Query(description="Only events listing this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditListOut:
    """Return every audited event that touched an agency's data, newest first.

    For the agency's auditors (and platform admins). Reading the log is itself
    recorded as an ``audit_view`` event.
    """
    owner = agency or actor.agency_id
    decision = decide(actor, RoleAction.READ_AUDIT, owner)
    if not decision.allowed:
        audit_denied(
            store, request, caller, decision.reason, resource_type="audit_log", owners=(owner,)
        )
        raise PermissionDenied(f"{decision.reason}: the audit log is for the agency's auditors")
    problems = _check(since, until, action)
    if problems:
        raise ApiError(400, "bad audit query: " + "; ".join(problems), problems)
    public_reads.write_buffered(store)  # this process's counts not yet written
    public_reads.flush(store, store.now())  # closed windows of public reads, as events
    events = events_for_owner(
        store,
        owner,
        since=since,
        until=until,
        actor=by,
        action=action,
        record_id=record_id,
        limit=limit,
        offset=offset,
    )
    filters = {"since": since, "until": until, "action": action, "actor": by,
               "record_id": record_id, "limit": limit, "offset": offset}  # fmt: skip
    _record_view(store, request, actor, owner, filters, len(events))
    names = actor_names(store, (e.actor for e in events))
    return AuditListOut(
        agency=owner,
        events=[
            AuditEventOut.model_validate({**e.to_dict(), "actor_name": names.get(e.actor)})
            for e in events
        ],
        limit=limit,
        offset=offset,
    )


def _record_view(
    store: Store,
    request: Request,
    actor: Actor,
    owner: str,
    filters: dict[str, Any],
    returned: int,
) -> None:
    """Append the ``audit_view`` event: reading the log is itself audited (issue #3)."""
    details = {k: str(v) if isinstance(v, datetime) else v for k, v in filters.items()}
    append(
        store,
        AuditEvent(
            action=Action.AUDIT_VIEW,
            actor=actor.user_id,
            actor_agency=actor.agency_id,
            source_ip=client_ip(request),
            resource_type="audit_log",
            owner_agencies=(owner,),
            record_count=returned,
            details={k: v for k, v in details.items() if v is not None},
        ),
    )


def _check(since: datetime | None, until: datetime | None, action: str | None) -> list[str]:
    problems = [
        f"{name}: give a time zone (e.g. 2026-03-01T00:00:00Z)"
        for name, value in (("since", since), ("until", until))
        if value is not None and value.tzinfo is None
    ]
    if action is not None and action not in {a.value for a in Action}:
        problems.append(
            f"action: unknown {action!r}; use one of {', '.join(a.value for a in Action)}"
        )
    return problems
