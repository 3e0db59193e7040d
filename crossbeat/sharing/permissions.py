"""Who may manage sharing: the one permission check of agreements, groups and policies.

Every sharing-management operation (agreements, groups, public-policy tightenings,
previews) and every web route that shows agreements asks :func:`check_permission`
before it does anything, so that the rule and the audit of a refusal live in one place
(issue #3).
"""

from __future__ import annotations

from crossbeat.audit import Action, AuditEvent, Outcome, append
from crossbeat.auth.errors import PermissionDenied
from crossbeat.auth.roles import Actor, Role
from crossbeat.store import Store


def authorize_sharing(by: Actor | None, agency_id: str | None, what: str) -> None:
    """Raise :class:`PermissionDenied` unless ``by`` may manage sharing for ``agency_id``.

    The pure rule, without audit; call :func:`check_permission` instead, so that a
    refusal is recorded.

    Parameters
    ----------
    by
        The signed-in user, or None for the local operator (always allowed).
    agency_id
        The agency whose sharing is managed; None for what spans agencies (groups).
    what
        What is attempted, as a verb phrase for the message ("revoke sharing agreements").

    Raises
    ------
    PermissionDenied
        Unless ``by`` is a platform_admin, or an agency_admin of ``agency_id``.
    """
    if by is None or Role.PLATFORM_ADMIN in by.roles:
        return
    if agency_id is not None and Role.AGENCY_ADMIN in by.roles and by.agency_id == agency_id:
        return
    scope = f"of {agency_id}" if agency_id else "across agencies"
    raise PermissionDenied(
        f"{by.username} may not {what}: it needs an agency_admin {scope} or a platform_admin"
    )


#: Roles whose holders may approve their own agency's sharing agreements.
APPROVER_ROLES = frozenset({Role.AGENCY_ADMIN, Role.PLATFORM_ADMIN})


def may_approve(by: Actor, owner: str) -> bool:
    """Return whether ``by`` may approve agreements that share ``owner``'s data.

    Only an admin *of the owner agency* (an agency_admin or platform_admin whose account
    belongs to it) approves: a platform_admin of another agency may propose an
    agreement but never put another agency's data in force (issue #7, finding 5).
    """
    return by.agency_id == owner and bool(APPROVER_ROLES & by.roles)


def check_approver(store: Store, by: Actor, owner: str, what: str) -> None:
    """Check that ``by`` may approve ``owner``'s agreements; audit and raise if not.

    Raises
    ------
    PermissionDenied
        Unless ``by`` is an agency_admin or platform_admin of ``owner`` (the refusal is
        audited with ``owner`` as owner agency, so the owner sees the attempt).
    """
    if may_approve(by, owner):
        return
    why = (
        f"{by.username} may not {what}: only an agency_admin or platform_admin of {owner} "
        "approves sharing its data"
    )
    _audit_denied(store, by, owner, what, why)
    raise PermissionDenied(why)


def check_permission(store: Store, by: Actor | None, owner: str | None, what: str) -> None:
    """Check that ``by`` may manage ``owner``'s sharing; audit and raise if not.

    Parameters
    ----------
    store
        The store whose audit log records a refusal.
    by
        The signed-in user, or None for the local operator (always allowed).
    owner
        The agency whose agreements, policy or preview are concerned; None for what
        spans agencies (groups), which only a platform_admin may manage.
    what
        What is attempted, as a verb phrase ("list sharing agreements"); it appears in
        the error message and in the audit event.

    Raises
    ------
    PermissionDenied
        Unless ``by`` is a platform_admin, or an agency_admin of ``owner``. A ``denied``
        event naming ``owner`` is appended to the audit log first, in its own
        transaction, so that it outlives the caller's rollback.
    """
    try:
        authorize_sharing(by, owner, what)
    except PermissionDenied as exc:
        _audit_denied(store, by, owner, what, str(exc))
        raise


def _audit_denied(store: Store, by: Actor | None, owner: str | None, what: str, why: str) -> None:
    append(
        store,
        AuditEvent(
            action=Action.DENIED,
            actor=by.user_id if by else "system",
            actor_agency=by.agency_id if by else None,
            source_ip=by.source_ip if by else None,
            outcome=Outcome.DENIED,
            resource_type="agreement",
            owner_agencies=(owner,) if owner else (),
            details={"operation": what, "reason": why},
        ),
    )
