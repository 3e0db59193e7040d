"""Signing in and out: password, then one-time code, then a session cookie (issue #3).

The session token travels only in an ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` unless the ``secure_cookies`` setting is off); scripts never see it. They
get the session's CSRF token instead, to send in ``X-CSRF-Token`` with every request
that changes something. Every call hands the audit log's sink to :mod:`crossbeat.auth`,
so sign-ins, failures, lockouts and logouts are recorded with the client's address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response

from crossbeat.api.deps import (
    CSRF_HEADER,
    Caller,
    CallerDep,
    EventsDep,
    SettingsDep,
    StoreDep,
    audit_denied,
    client_ip,
)
from crossbeat.api.errors import SESSION_COOKIE, ApiError
from crossbeat.api.schemas import (
    ERRORS,
    PUBLIC,
    LoginIn,
    LogoutOut,
    MfaChallengeOut,
    MfaIn,
    SessionOut,
    SignedInOut,
    UserOut,
)
from crossbeat.api.throttle import LoginThrottle
from crossbeat.audit import Action, AuditEvent, Outcome, public_reads
from crossbeat.auth.accounts import User, get_user
from crossbeat.auth.csrf import check_csrf, csrf_token
from crossbeat.auth.errors import AccountError, AuthenticationError, CsrfError
from crossbeat.auth.login import begin_login, complete_login
from crossbeat.auth.sessions import ABSOLUTE_TIMEOUT, Session, logout, validate_session
from crossbeat.sharing.request import Viewer
from crossbeat.store import Store

router = APIRouter(prefix="/auth", tags=["auth"])

_LOCKED: dict[int | str, dict[str, Any]] = {
    423: {"model": ERRORS[401]["model"], "description": "Account locked after failed sign-ins"},
    429: {"model": ERRORS[401]["model"], "description": "Too many failed sign-ins from here"},
}


@router.post(
    "/login",
    openapi_extra=PUBLIC,
    response_model=MfaChallengeOut,
    responses={**ERRORS, **_LOCKED},
    summary="Sign in, step 1: check the password",
)
def post_login(
    body: LoginIn, request: Request, store: StoreDep, events: EventsDep
) -> MfaChallengeOut:
    """Check the username and password; return a ticket for the one-time code (5 minutes).

    An unknown username, a wrong password and a locked account get the same 401 after
    the same work; five failures in 15 minutes lock the account until an administrator
    unlocks it. An address with too many failed sign-ins gets 429 (``Retry-After``),
    and its attempts are then not checked at all (they cannot lock anyone).
    """
    with _throttled(request, store):
        challenge = begin_login(store, body.username, body.password, events=events)
    return MfaChallengeOut(mfa_ticket=challenge.ticket, expires_at=challenge.expires_at)


@contextlib.contextmanager
def _throttled(request: Request, store: Store) -> Iterator[None]:
    """Refuse an address over its failed sign-ins (429, audited); count its failures."""
    throttle: LoginThrottle = request.app.state.login_throttle
    ip = client_ip(request)
    if not throttle.allows(ip):
        reason = "too many failed sign-ins from this address: wait and try again"
        refusal = AuditEvent(
            action=Action.DENIED,
            actor="public",
            source_ip=ip,
            outcome=Outcome.DENIED,
            resource_type="login",
            details={"request": f"{request.method} {request.url.path}", "reason": reason},
        )
        with store.begin() as conn:  # one event per window and address, not per attempt
            public_reads.tally(store, conn, [refusal], store.now())
        wait = throttle.retry_after(ip)
        raise ApiError(429, f"{reason} in {wait} s", headers={"Retry-After": str(wait)})
    try:
        yield
    except (AuthenticationError, AccountError):
        throttle.failed(ip)
        raise


@router.post(
    "/mfa",
    openapi_extra=PUBLIC,
    response_model=SignedInOut,
    responses={**ERRORS, **_LOCKED},
    summary="Sign in, step 2: check the one-time code and start the session",
)
def post_mfa(
    body: MfaIn,
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    events: EventsDep,
) -> SignedInOut:
    """Check the authenticator code for a ticket; set the session cookie.

    Returns the user and the CSRF token to send in ``X-CSRF-Token`` with every
    request that changes something. A session this browser held before is ended.
    """
    with _throttled(request, store):
        result = complete_login(store, body.ticket, body.code, events=events)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous is not None:
        logout(store, previous, events=events)
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        max_age=int(ABSOLUTE_TIMEOUT.total_seconds()),
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="strict",
    )
    return _signed_in(result.session, result.token, result.user)


@router.get(
    "/me",
    response_model=SignedInOut,
    responses=ERRORS,
    summary="Return the signed-in user, the session's end and its CSRF token",
)
def get_me(request: Request, store: StoreDep, caller: CallerDep) -> SignedInOut:
    """Return who is signed in with the session cookie (this counts as activity)."""
    if caller.session is None or caller.session_token is None:
        exc = AuthenticationError("not signed in: sign in first (POST /auth/login)")
        audit_denied(store, request, caller, str(exc), resource_type="session")
        raise exc
    user = get_user(store, caller.session.username)
    return _signed_in(caller.session, caller.session_token, user)


@router.post(
    "/logout",
    # Anyone may call it: it only ends the caller's own session, if there is one.
    openapi_extra=PUBLIC,
    response_model=LogoutOut,
    responses=ERRORS,
    summary="Sign out: end the session on the server and clear the cookie",
)
def post_logout(
    request: Request, response: Response, store: StoreDep, events: EventsDep
) -> LogoutOut:
    """End the session at once (needs the CSRF token); signing out twice is not an error."""
    token = request.cookies.get(SESSION_COOKIE)
    ended = False
    if token is not None:
        try:
            check_csrf(token, request.headers.get(CSRF_HEADER))
        except CsrfError as exc:
            # A cross-site page must not be able to sign the user out either.
            caller = _cookie_caller(store, token)
            audit_denied(store, request, caller, str(exc), resource_type="csrf")
            raise
        ended = logout(store, token, events=events)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return LogoutOut(ended=ended)


def _cookie_caller(store: Store, token: str) -> Caller:
    """Return whom a session cookie belongs to, without counting it as activity."""
    try:
        session = validate_session(store, token, touch=False)
    except AuthenticationError:
        return Caller(Viewer.public())
    viewer = Viewer.user(session.user_id, session.agency_id, session.roles)
    return Caller(viewer, session=session, session_token=token)


def _signed_in(session: Session, token: str, user: User) -> SignedInOut:
    return SignedInOut(
        user=UserOut(
            username=user.username,
            agency=user.agency_id,
            display_name=user.display_name,
            roles=sorted(r.value for r in user.roles),
        ),
        session=SessionOut(expires_at=session.expires_at, idle_expires_at=session.idle_expires_at),
        csrf_token=csrf_token(token),
    )
