"""Shared plumbing of the sharing-management operations: errors, permissions, audit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from crossbeat.audit import Action, AuditEvent, Outcome, append
from crossbeat.auth.errors import PermissionDenied
from crossbeat.auth.roles import Actor, Role
from crossbeat.store import Store


class AgreementError(ValueError):
    """A sharing-management operation was given bad input; nothing was changed.

    Attributes
    ----------
    problems
        Every problem found, each naming the field and what to do.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def actor_name(by: Actor | None) -> str:
    """Return how a change's author is recorded (username, or the local operator)."""
    return "local-operator" if by is None else by.username


def authorize_sharing(by: Actor | None, agency_id: str | None, what: str) -> None:
    """Raise PermissionDenied unless ``by`` may manage sharing for ``agency_id``."""
    if by is None or Role.PLATFORM_ADMIN in by.roles:
        return
    if agency_id is not None and Role.AGENCY_ADMIN in by.roles and by.agency_id == agency_id:
        return
    scope = f"of {agency_id}" if agency_id else "across agencies"
    raise PermissionDenied(
        f"{by.username} may not {what}: it needs an agency_admin {scope} or a platform_admin"
    )


def _audit_denied(store: Store, by: Actor | None, owner: str | None, what: str, why: str) -> None:
    append(
        store,
        AuditEvent(
            action=Action.DENIED,
            actor=by.user_id if by else "system",
            actor_agency=by.agency_id if by else None,
            outcome=Outcome.DENIED,
            resource_type="agreement",
            owner_agencies=(owner,) if owner else (),
            details={"operation": what, "reason": why},
        ),
    )


def check_permission(store: Store, by: Actor | None, owner: str | None, what: str) -> None:
    """Raise PermissionDenied (and audit the denied attempt) unless ``by`` may do ``what``."""
    try:
        authorize_sharing(by, owner, what)
    except PermissionDenied as exc:
        _audit_denied(store, by, owner, what, str(exc))
        raise


def audit_change(
    store: Store,
    conn: Connection,
    by: Actor | None,
    resource_type: str,
    owners: Iterable[str],
    details: Mapping[str, Any],
) -> None:
    """Append an ``agreement_change`` event inside the caller's transaction."""
    append(
        store,
        AuditEvent(
            action=Action.AGREEMENT_CHANGE,
            actor=by.user_id if by else "system",
            actor_agency=by.agency_id if by else None,
            resource_type=resource_type,
            owner_agencies=tuple(sorted(set(owners))),
            details=dict(details),
        ),
        conn=conn,
    )
