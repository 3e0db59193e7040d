"""Record authentication and account events in the audit log.

:mod:`crossbeat.auth` hands every sign-in, refusal and account change to an optional
sink inside the transaction of the change (:class:`crossbeat.auth.events.AuthEventSink`).
:func:`auth_sink` is that sink for the audit log: the event commits with the change,
and the agency of the account is an owner, so its auditors see its users' logins,
failed attempts and account changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from crossbeat.audit.events import Action, AuditEvent, Outcome
from crossbeat.audit.log import append

if TYPE_CHECKING:
    from crossbeat.auth.events import AuthEvent, AuthEventSink
    from crossbeat.store import Store

_ACTIONS = {
    "login.password_ok": Action.LOGIN,
    "login.succeeded": Action.LOGIN,
    "login.failed": Action.LOGIN_FAILED,
    "session.ended": Action.LOGOUT,
    "token.refused": Action.DENIED,
}
_OUTSIDERS = ("login.", "token.refused")  # attempts from someone not yet known


def auth_sink(store: Store, *, source_ip: str | None = None) -> AuthEventSink:
    """Return a :class:`~crossbeat.auth.events.AuthEventSink` writing to the audit log.

    Parameters
    ----------
    store
        The store holding the audit log (the same one the auth change runs on).
    source_ip
        The client address of the request being served, if any.

    Returns
    -------
    callable
        ``sink(conn, auth_event)``: appends the matching :class:`AuditEvent` on ``conn``.
    """

    def sink(conn: Connection, event: AuthEvent) -> None:
        append(store, audit_event_for(event, source_ip=source_ip), conn=conn)

    return sink


def audit_event_for(event: AuthEvent, *, source_ip: str | None = None) -> AuditEvent:
    """Translate an authentication event into an audit event.

    Parameters
    ----------
    event
        The event from :mod:`crossbeat.auth`.
    source_ip
        The client address, if known.

    Returns
    -------
    AuditEvent
        ``login``, ``login_failed``, ``logout``, ``denied`` (refused API token) or
        ``account_change``; the auth action, username and details go in ``details``.
    """
    actor = event.actor_user_id
    if actor is None:
        actor = "public" if event.action.startswith(_OUTSIDERS) else "system"
    outcome = {"success": Outcome.ALLOWED, "failure": Outcome.DENIED}.get(
        event.outcome, Outcome.ERROR
    )
    details: dict[str, Any] = {"auth_action": event.action}
    if event.username is not None:
        details["username"] = event.username
    details.update(_json_safe(dict(event.detail)))
    agency = event.agency_id
    return AuditEvent(
        action=_ACTIONS.get(event.action, Action.ACCOUNT_CHANGE),
        actor=actor,
        actor_agency=agency if event.actor_user_id is not None else None,
        source_ip=source_ip,
        outcome=outcome,
        resource_type=event.action.split(".", 1)[0].replace("login", "account"),
        owner_agencies=(agency,) if agency else (),
        record_ids=(event.subject_user_id,) if event.subject_user_id else (),
        details=details,
    )


def _json_safe(value: Any) -> Any:
    """Return ``value`` with anything the audit encoding refuses turned into text.

    A sink that raised would abort the sign-in or change it records, so floats, times
    and unknown objects are written as strings rather than refused.
    """
    if value is None or isinstance(value, bool | int | str):
        return value.replace("\x00", "") if isinstance(value, str) else value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).replace("\x00", "")
