"""Roles, the people acting, and what each role may manage.

Every user belongs to one agency and holds one or more roles. Roles other than
``platform_admin`` act within the user's own agency; ``platform_admin`` acts on
every agency. What each role may *read* of the incident data is the sharing
layer's business; this module covers only accounts, API tokens and the audit log.

=============== ============================================================
role            may manage
=============== ============================================================
officer         nothing
analyst         nothing
supervisor      list the users of their agency
agency_admin    users and API tokens of their agency (create, roles except
                ``platform_admin``, password, TOTP reset, disable/enable,
                unlock, revoke)
auditor         list users and API tokens of their agency; read its audit log
platform_admin  everything, in every agency, including granting
                ``platform_admin``
=============== ============================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from crossbeat.auth.errors import PermissionDenied, UnknownRole


class Role(StrEnum):
    """A role a user can hold."""

    OFFICER = "officer"
    ANALYST = "analyst"
    SUPERVISOR = "supervisor"
    AGENCY_ADMIN = "agency_admin"
    AUDITOR = "auditor"
    PLATFORM_ADMIN = "platform_admin"


class Action(StrEnum):
    """A management operation that needs a role."""

    READ_USERS = "users.read"
    MANAGE_USERS = "users.manage"
    UNLOCK_USERS = "users.unlock"
    READ_TOKENS = "tokens.read"
    MANAGE_TOKENS = "tokens.manage"
    READ_AUDIT = "audit.read"
    REVIEW_QUARANTINE = "quarantine.review"


GRANTS: dict[Role, frozenset[Action]] = {
    Role.OFFICER: frozenset(),
    Role.ANALYST: frozenset(),
    Role.SUPERVISOR: frozenset({Action.READ_USERS}),
    Role.AGENCY_ADMIN: frozenset(
        {
            Action.READ_USERS,
            Action.MANAGE_USERS,
            Action.UNLOCK_USERS,
            Action.READ_TOKENS,
            Action.MANAGE_TOKENS,
            Action.REVIEW_QUARANTINE,
        }
    ),
    Role.AUDITOR: frozenset({Action.READ_USERS, Action.READ_TOKENS, Action.READ_AUDIT}),
    Role.PLATFORM_ADMIN: frozenset(Action),
}
"""The actions each role allows (within the user's own agency, except platform_admin)."""


def parse_roles(names: Iterable[str | Role]) -> frozenset[Role]:
    """Turn role names into :class:`Role` values.

    Parameters
    ----------
    names
        Role names such as ``"analyst"``; case, ``-`` and spaces are forgiven, so
        ``"agency-admin"`` and ``"Agency admin"`` both mean ``agency_admin``.

    Returns
    -------
    frozenset[Role]
        At least one role.

    Raises
    ------
    UnknownRole
        For an unknown name or for no roles at all; the message lists the valid roles.
    """
    valid = ", ".join(r.value for r in Role)
    roles = set()
    for name in names:
        key = "_".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())
        try:
            roles.add(Role(key))
        except ValueError:
            raise UnknownRole(f"unknown role {str(name)!r}: use one of {valid}") from None
    if not roles:
        raise UnknownRole(f"give at least one role: {valid}")
    return frozenset(roles)


@dataclass(frozen=True)
class Actor:
    """A signed-in user acting through the API, web UI or a library call.

    Management functions take ``by: Actor | None``; ``None`` means the local
    operator running the ``crossbeat`` command with direct database access, who
    is trusted like a platform administrator. ``source_ip`` is the client address of
    the web request, recorded on the audit events the actor causes.
    """

    user_id: str
    username: str
    agency_id: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    source_ip: str | None = None


@dataclass(frozen=True)
class Decision:
    """Whether an actor may do something, and why."""

    allowed: bool
    reason: str


def decide(actor: Actor | None, action: Action, agency_id: str) -> Decision:
    """Decide whether ``actor`` may perform ``action`` on ``agency_id``'s accounts or tokens.

    Parameters
    ----------
    actor
        The signed-in user, or None for the local operator.
    action
        The operation.
    agency_id
        The agency whose users or tokens are affected.

    Returns
    -------
    Decision
        Allowed or not, with the reason.
    """
    if actor is None:
        return Decision(True, "local operator with database access")
    if action in GRANTS[Role.PLATFORM_ADMIN] and Role.PLATFORM_ADMIN in actor.roles:
        return Decision(True, "platform_admin may manage every agency")
    granting = sorted(r.value for r in actor.roles if action in GRANTS[r])
    if not granting:
        held = ", ".join(sorted(r.value for r in actor.roles)) or "no roles"
        return Decision(False, f"{actor.username} ({held}) may not {action.value}")
    if actor.agency_id != agency_id:
        return Decision(
            False,
            f"{actor.username} may {action.value} only in their own agency "
            f"{actor.agency_id!r}, not {agency_id!r}",
        )
    return Decision(True, f"{granting[0]} of agency {agency_id!r}")


def authorize(actor: Actor | None, action: Action, agency_id: str) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` may perform ``action`` on the agency.

    Parameters
    ----------
    actor
        The signed-in user, or None for the local operator.
    action
        The operation.
    agency_id
        The agency whose users or tokens are affected.
    """
    decision = decide(actor, action, agency_id)
    if not decision.allowed:
        raise PermissionDenied(decision.reason)


def authorize_roles(actor: Actor | None, roles: Iterable[Role]) -> None:
    """Raise :class:`PermissionDenied` if ``actor`` may not grant or revoke these roles.

    Only a platform administrator (or the local operator) may grant, revoke or
    otherwise manage the ``platform_admin`` role.
    """
    if actor is None or Role.PLATFORM_ADMIN in actor.roles:
        return
    if Role.PLATFORM_ADMIN in set(roles):
        raise PermissionDenied(
            f"{actor.username} may not grant or manage platform_admin: ask a platform admin"
        )
