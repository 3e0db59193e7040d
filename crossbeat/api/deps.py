"""Route dependencies: the store, the clock, who is calling, CSRF, denied-attempt audit.

Who is calling is decided once per request by :func:`get_caller`:

* ``Authorization: Bearer cbt_...`` — an API read token of one agency
  (:func:`crossbeat.auth.tokens.authenticate_token`); it reads like an analyst.
* the session cookie — a signed-in user (:func:`crossbeat.auth.sessions.validate_session`
  checks the 30-minute idle and 12-hour limits on the server and records the activity).
* neither — the public.

A credential that is presented but not valid is refused with 401 (and the cookie
cleared), rather than silently read as the public, so that a client knows to sign in
again. Requests that change something and are authenticated by the cookie must carry
the session's CSRF token in the ``X-CSRF-Token`` header (:data:`CsrfDep`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection
from starlette.types import Scope

from crossbeat.audit import Action, AuditEvent, Outcome, append, auth_sink
from crossbeat.auth.csrf import check_csrf
from crossbeat.auth.errors import AuthenticationError, CsrfError, PermissionDenied, TokenInvalid
from crossbeat.auth.events import AuthEvent, AuthEventSink
from crossbeat.auth.roles import Actor
from crossbeat.auth.sessions import Session, validate_session
from crossbeat.auth.tokens import ApiToken, TokenPurpose, authenticate_token
from crossbeat.clock import Clock
from crossbeat.settings import Settings
from crossbeat.sharing.agreements import get_agreement
from crossbeat.sharing.request import Viewer
from crossbeat.store import Store

from .errors import SESSION_COOKIE

#: Header carrying the CSRF token on cookie-authenticated requests that change something.
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_store(request: Request) -> Store:
    """Return the application's store."""
    store: Store = request.app.state.store
    return store


def get_clock(request: Request) -> Clock:
    """Return the application's clock (the store's; tests pass a FrozenClock)."""
    return get_store(request).clock


def get_settings(request: Request) -> Settings:
    """Return the application's settings."""
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def client_ip(request: Request) -> str | None:
    """Return the client's IP address, or None when it is not an IP (e.g. a test client)."""
    return scope_ip(request.scope)


def scope_ip(scope: Scope) -> str | None:
    """Return the IP address of a request's client (its ASGI scope), or None."""
    client = scope.get("client")
    host = client[0] if client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def get_events(request: Request, store: StoreDep) -> AuthEventSink:
    """Return the audit sink for the authentication calls of this request."""
    return auth_sink(store, source_ip=client_ip(request))


EventsDep = Annotated[AuthEventSink, Depends(get_events)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: a signed-in user, an API token, or the public.

    Attributes
    ----------
    viewer
        What the sharing policy reads for.
    session
        The live session, for a user signed in with the cookie.
    token
        The API token, for a machine client.
    session_token
        The cookie's value (needed to check the CSRF token); never logged.
    """

    viewer: Viewer
    session: Session | None = None
    token: ApiToken | None = None
    session_token: str | None = field(default=None, repr=False)

    @property
    def actor(self) -> Actor | None:
        """Return the signed-in user as an :class:`Actor` (None for tokens and the public)."""
        return self.session.actor() if self.session is not None else None

    @property
    def audit_id(self) -> str:
        """Return how the caller is named in the audit log."""
        return self.viewer.id


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenInvalid()
    return value.strip()


class _Counting:
    """An auth event sink that counts what it passes on."""

    def __init__(self, sink: AuthEventSink) -> None:
        self.sink = sink
        self.count = 0

    def __call__(self, conn: Connection, event: AuthEvent) -> None:
        self.count += 1
        self.sink(conn, event)


def get_caller(request: Request, store: StoreDep, events: EventsDep) -> Caller:
    """Identify the caller from the bearer token, else the session cookie, else the public.

    A refused credential is audited: by :mod:`crossbeat.auth` when it records the
    refusal itself (a revoked token, a session that just timed out), here otherwise
    (an unknown token or session).

    Raises
    ------
    AuthenticationError
        An invalid, revoked or out-of-scope token, or an ended or expired session.
    """
    counting = _Counting(events)
    ip = client_ip(request)
    try:
        secret = _bearer(request)
        if secret is not None:
            token = authenticate_token(store, secret, purpose=TokenPurpose.READ, events=counting)
            return Caller(Viewer.token(token.id, token.agency_id, source_ip=ip), token=token)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None:
            session = validate_session(store, cookie, events=counting)
            viewer = Viewer.user(session.user_id, session.agency_id, session.roles, source_ip=ip)
            return Caller(viewer, session=session, session_token=cookie)
    except AuthenticationError as exc:
        if counting.count == 0:
            what = "API token" if request.headers.get("authorization") else "session"
            audit_denied(
                store, request, Caller(Viewer.public(source_ip=ip)), str(exc), resource_type=what
            )
        raise
    return Caller(Viewer.public(source_ip=ip))


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_viewer(caller: CallerDep) -> Viewer:
    """Return the caller as the sharing policy's :class:`Viewer`."""
    return caller.viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def audit_denied(
    store: Store,
    request: Request,
    caller: Caller,
    reason: str,
    *,
    resource_type: str,
    owners: tuple[str, ...] = (),
) -> None:
    """Record a refused request in the audit log (issue #3: every denied attempt).

    Parameters
    ----------
    store
        The store holding the audit log.
    request
        The refused request (its method, path and client address are recorded).
    caller
        Who was refused.
    reason
        Why, as told to the caller.
    resource_type
        What was asked for (``audit_log``, ``agreement``...).
    owners
        Agencies whose data or settings the attempt concerned (their auditors see it).
        Default: the caller's own agency (a user's or an API token's), so that an agency
        sees the refused attempts of its own credentials (issue #7, finding 9).
    """
    if not owners and caller.viewer.agency_id:
        owners = (caller.viewer.agency_id,)
    append(
        store,
        AuditEvent(
            action=Action.DENIED,
            actor=caller.audit_id,
            actor_agency=caller.viewer.agency_id,
            source_ip=client_ip(request),
            outcome=Outcome.DENIED,
            resource_type=resource_type,
            owner_agencies=owners,
            details={"request": f"{request.method} {request.url.path}", "reason": reason},
        ),
    )


def require_user(request: Request, store: StoreDep, caller: CallerDep) -> Actor:
    """Return the signed-in user; refuse API tokens and the public (the refusal is audited).

    Raises
    ------
    AuthenticationError
        401 for the public: sign in first.
    PermissionDenied
        403 for an API token: management needs a person's account.
    """
    actor = caller.actor
    if actor is not None:
        return replace(actor, source_ip=client_ip(request))
    if caller.token is not None:
        exc: Exception = PermissionDenied(
            "API tokens cannot do this: sign in with a user account of the agency"
        )
    else:
        exc = AuthenticationError("not signed in: sign in first (POST /auth/login)")
    audit_denied(store, request, caller, str(exc), resource_type=request.url.path)
    raise exc


ActorDep = Annotated[Actor, Depends(require_user)]


def require_signed_in(request: Request, store: StoreDep, caller: CallerDep) -> Caller:
    """Return the caller if signed in (a user or an API token); refuse the public (audited).

    Raises
    ------
    AuthenticationError
        401 for the public: sign in first.
    """
    if caller.actor is not None or caller.token is not None:
        return caller
    exc = AuthenticationError("not signed in: sign in first (POST /auth/login)")
    audit_denied(store, request, caller, str(exc), resource_type=request.url.path)
    raise exc


SignedInDep = Annotated[Caller, Depends(require_signed_in)]


def require_csrf(request: Request, store: StoreDep) -> None:
    """Refuse a cookie-authenticated request that changes something without the CSRF token.

    Requests with a bearer token or no credentials are not exposed to cross-site request
    forgery (a browser never adds those on its own) and pass; the route then decides
    whether they may act. The caller is only identified (for the audit of a refusal)
    when the check fails, so that routes taking other credentials than read tokens
    (ingest tokens send field reports and uploads) can use it too.

    Raises
    ------
    CsrfError
        403: the ``X-CSRF-Token`` header is missing or not this session's token.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    if request.method in SAFE_METHODS or cookie is None or _bearer(request) is not None:
        return
    try:
        check_csrf(cookie, request.headers.get(CSRF_HEADER))
    except CsrfError as exc:
        caller = get_caller(request, store, get_events(request, store))
        audit_denied(
            store,
            request,
            caller,
            "missing or wrong CSRF token",
            resource_type="csrf",
            owners=_concerned(store, request, caller),
        )
        raise exc from None


def _concerned(store: Store, request: Request, caller: Caller) -> tuple[str, ...]:
    """Return the agencies a refused request concerns: the caller's, and the owner of the
    agreement named in the path (a refused revocation is shown to that agency too)."""
    owners = {caller.viewer.agency_id} if caller.viewer.agency_id else set()
    agreement_id = request.path_params.get("agreement_id")
    if isinstance(agreement_id, str):
        found = get_agreement(store, agreement_id)
        if found is not None:
            owners.add(found.owner)
    return tuple(sorted(owners))


CsrfDep = Depends(require_csrf)
"""Add to ``dependencies=[...]`` of every route that changes something."""
