"""Signing in: password, then a one-time code, then a session; lockout after failures.

Two steps, as a browser does it: :func:`begin_login` checks the password and returns
an :class:`MfaChallenge` (valid for 5 minutes); :func:`complete_login` checks the
one-time code and starts the session. :func:`login` does both in one call. No session
is ever issued without an accepted one-time code.

Five failed attempts (wrong password, wrong code, or a replayed code) within 15
minutes lock the account until an administrator unlocks it (CJIS 5.5.3). Failures are
rows in ``login_failures``, so the count holds across processes; a successful sign-in
or an unlock clears them. While locked, every attempt is refused with
:class:`AccountLocked` without checking the password, so it reveals nothing. An
unknown username gets the same :class:`InvalidCredentials` as a wrong password, after
the same argon2 work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update

from crossbeat.auth import passwords, totp
from crossbeat.auth._secret import new_secret, plausible, secret_hash
from crossbeat.auth.accounts import User, disable_in, find_user_row, is_inactive, user_from_row
from crossbeat.auth.errors import (
    AccountDisabled,
    AccountLocked,
    AuthenticationError,
    InvalidCredentials,
    MalformedSignIn,
    MfaChallengeExpired,
    MfaRequired,
    TotpReplay,
)
from crossbeat.auth.events import AuthEvent, AuthEventSink, emit
from crossbeat.auth.sessions import ABSOLUTE_TIMEOUT, Session, end_user_sessions, start_session
from crossbeat.auth.tables import login_failures, mfa_challenges, users
from crossbeat.clock import Clock
from crossbeat.store import Store
from crossbeat.vault.keys import require_vault
from crossbeat.vault.totp_seeds import WHAT as SEALED_SEEDS
from crossbeat.vault.totp_seeds import open_seed

MAX_FAILURES = 5
#: The one answer of the password step to an unknown name, a wrong password or a lock.
SIGN_IN_REFUSED = (
    "invalid username or password (after 5 failed attempts in 15 minutes an account is "
    "locked until an administrator unlocks it)"
)
FAILURE_WINDOW = timedelta(minutes=15)
MFA_TIMEOUT = timedelta(minutes=5)
TICKET_PREFIX = "cbm_"


@dataclass(frozen=True)
class MfaChallenge:
    """The password was right; send ``ticket`` back with the one-time code before ``expires_at``."""

    ticket: str
    username: str
    expires_at: datetime


@dataclass(frozen=True)
class LoginResult:
    """A successful sign-in: ``token`` goes to the client (e.g. an HttpOnly cookie)."""

    token: str
    session: Session
    user: User


def begin_login(
    store: Store,
    username: str,
    password: str,
    *,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> MfaChallenge:
    """Check the password: the first of the two sign-in steps.

    Parameters
    ----------
    store
        The store.
    username
        As typed (case does not matter).
    password
        As typed.
    clock
        Time source (default: the store's).
    events
        Receives ``login.password_ok``, ``login.failed`` and ``account.locked``.

    Returns
    -------
    MfaChallenge
        To be completed with :func:`complete_login` within 5 minutes.

    Raises
    ------
    InvalidCredentials
        Unknown username, wrong password, or a locked account (not saying which: the
        same answer after the same work, so accounts and locks cannot be probed).
    MalformedSignIn
        A username or password that is not text or holds a NUL character (audited).
    AccountDisabled
        The password was right but the account is disabled (or was just disabled
        for 90 days without use).
    """
    now = (clock or store.clock).now()
    failure: AuthenticationError | None = None
    if _malformed(username) or _malformed(password):
        with store.begin() as conn:  # an access attempt all the same: audited
            emit(events, conn, _failed(now, None, _printable(username), "malformed"))
        raise MalformedSignIn(
            "username and password must be text without NUL characters: check the request"
        )
    with store.begin() as conn:
        row = find_user_row(conn, username)
        if row is not None:  # serialise attempts on one account (PostgreSQL row lock)
            row = _lock_row(conn, row["id"])
        # An unknown name, a wrong password and a locked account (whose password is not
        # looked at) answer the same, after the same argon2 work, so that neither the
        # existence of an account nor its lock can be probed (issue #7, finding 8).
        if row is None:
            passwords.verify_password(None, password)
            emit(events, conn, _failed(now, None, username[:64], "password"))
            failure = InvalidCredentials(SIGN_IN_REFUSED)
        elif _locked(conn, row, now, events):
            passwords.verify_password(None, password)
            emit(events, conn, _failed(now, row, row["username"], "locked"))
            failure = InvalidCredentials(SIGN_IN_REFUSED)
        elif not passwords.verify_password(row["password_hash"], password):
            _record_failure(conn, row, "password", now, events)
            failure = InvalidCredentials(SIGN_IN_REFUSED)
        elif row["status"] != "active" or is_inactive(row["last_active_at"], now):
            if row["status"] == "active":
                disable_in(conn, user_from_row(conn, row), "inactive", now, events)
            emit(events, conn, _failed(now, row, row["username"], "disabled"))
            failure = AccountDisabled()
        else:
            if passwords.needs_rehash(row["password_hash"]):
                new_hash = passwords.hash_password(password)
                conn.execute(
                    update(users).where(users.c.id == row["id"]).values(password_hash=new_hash)
                )
            conn.execute(
                delete(mfa_challenges)
                .where(mfa_challenges.c.user_id == row["id"])
                .where(mfa_challenges.c.expires_at <= now)
            )
            ticket = new_secret(TICKET_PREFIX)
            conn.execute(
                insert(mfa_challenges).values(
                    id=secret_hash(ticket),
                    user_id=row["id"],
                    created_at=now,
                    expires_at=now + MFA_TIMEOUT,
                )
            )
            emit(events, conn, _event("login.password_ok", now, row))
            return MfaChallenge(ticket, row["username"], now + MFA_TIMEOUT)
    raise failure  # after the commit that recorded it


def complete_login(
    store: Store,
    ticket: str,
    code: str,
    *,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> LoginResult:
    """Check the one-time code for a challenge and start a session: the second step.

    A wrong code leaves the challenge open (until it expires or the account locks),
    so the user can type the code again.

    Parameters
    ----------
    store
        The store.
    ticket
        From :func:`begin_login`.
    code
        The 6-digit code the authenticator app shows.
    clock
        Time source (default: the store's).
    events
        Receives ``login.succeeded``, ``login.failed`` and ``account.locked``.

    Returns
    -------
    LoginResult
        The session token and session.

    Raises
    ------
    MfaChallengeExpired
        Unknown, used or expired ticket.
    InvalidCredentials
        Wrong or malformed code (counts as a failed attempt).
    TotpReplay
        A code already used, or older than one already used (counts as a failed attempt).
    AccountLocked, AccountDisabled
        The account was locked or disabled since the password step.
    KeyConfigError
        When the store was opened without a KEK (the TOTP seed is sealed); nothing
        is written.
    """
    vault = require_vault(store, SEALED_SEEDS)
    now = (clock or store.clock).now()
    failure: AuthenticationError | None = None
    with store.begin() as conn:
        challenge = None
        if plausible(ticket, TICKET_PREFIX):
            challenge = conn.execute(
                select(mfa_challenges).where(mfa_challenges.c.id == secret_hash(ticket))
            ).first()
        if challenge is None or challenge.used_at is not None or now >= challenge.expires_at:
            raise MfaChallengeExpired()
        row = _lock_row(conn, challenge.user_id)
        assert row is not None  # the foreign key guarantees it
        if _locked(conn, row, now, events):
            emit(events, conn, _failed(now, row, row["username"], "locked"))
            failure = AccountLocked()
        elif row["status"] != "active":
            emit(events, conn, _failed(now, row, row["username"], "disabled"))
            failure = AccountDisabled()
        else:
            try:
                seed = open_seed(vault, conn, row)
                totp.accept_code(conn, row["id"], seed, code, now)
            except TotpReplay:
                failure = _record_failure(conn, row, "replay", now, events)
            except InvalidCredentials:
                failure = _record_failure(conn, row, "totp", now, events)
            else:
                return _succeed(conn, row, challenge.id, now, events)
    raise failure


def login(
    store: Store,
    username: str,
    password: str,
    code: str | None,
    *,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> LoginResult:
    """Sign in with username, password and one-time code in one call.

    Raises
    ------
    MfaRequired
        ``code`` is missing; the exception's ``challenge`` can be completed with
        :func:`complete_login`. No session is issued.
    InvalidCredentials, TotpReplay, AccountLocked, AccountDisabled, KeyConfigError
        As for :func:`begin_login` and :func:`complete_login`.
    """
    require_vault(store, SEALED_SEEDS)  # before the password step writes a challenge
    challenge = begin_login(store, username, password, clock=clock, events=events)
    if not code:
        raise MfaRequired(challenge)
    return complete_login(store, challenge.ticket, code, clock=clock, events=events)


def recent_failures(conn: Connection, user_id: str, now: datetime) -> int:
    """Return how many failed attempts of a user count towards the lockout at ``now``."""
    return conn.execute(
        select(func.count())
        .select_from(login_failures)
        .where(login_failures.c.user_id == user_id)
        .where(login_failures.c.at > now - FAILURE_WINDOW)
    ).scalar_one()


def _succeed(
    conn: Connection,
    row: RowMapping,
    challenge_id: str,
    now: datetime,
    events: AuthEventSink | None,
) -> LoginResult:
    conn.execute(
        update(mfa_challenges).where(mfa_challenges.c.id == challenge_id).values(used_at=now)
    )
    conn.execute(delete(login_failures).where(login_failures.c.user_id == row["id"]))
    conn.execute(
        update(users).where(users.c.id == row["id"]).values(last_login_at=now, last_active_at=now)
    )
    token, session_id = start_session(conn, row["id"], now)
    emit(events, conn, _event("login.succeeded", now, row, session=session_id[:16]))
    fresh = _lock_row(conn, row["id"])
    assert fresh is not None  # updated just above
    user = user_from_row(conn, fresh)
    session = Session(
        id=session_id,
        user_id=user.id,
        username=user.username,
        agency_id=user.agency_id,
        roles=user.roles,
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE_TIMEOUT,
    )
    return LoginResult(token, session, user)


def _malformed(value: object) -> bool:
    return not isinstance(value, str) or "\x00" in value


def _printable(value: object) -> str:
    """Return a username as the audit log can hold it (NUL shown as U+FFFD)."""
    return str(value).replace("\x00", "\ufffd")[:64] if isinstance(value, str) else "<not text>"


def _lock_row(conn: Connection, user_id: str) -> RowMapping | None:
    return (
        conn.execute(select(users).where(users.c.id == user_id).with_for_update())
        .mappings()
        .first()
    )


def _locked(conn: Connection, row: RowMapping, now: datetime, events: AuthEventSink | None) -> bool:
    if row["locked_at"] is not None:
        return True
    if recent_failures(conn, row["id"], now) >= MAX_FAILURES:
        # Failures recorded by concurrent attempts reached the limit: lock now.
        _lock(conn, row, now, events)
        return True
    return False


def _record_failure(
    conn: Connection,
    row: RowMapping,
    stage: str,
    now: datetime,
    events: AuthEventSink | None,
) -> AuthenticationError:
    conn.execute(insert(login_failures).values(user_id=row["id"], at=now, stage=stage))
    emit(events, conn, _failed(now, row, row["username"], stage))
    if recent_failures(conn, row["id"], now) >= MAX_FAILURES:
        _lock(conn, row, now, events)
        return AccountLocked()
    return TotpReplay() if stage == "replay" else InvalidCredentials()


def _lock(conn: Connection, row: RowMapping, now: datetime, events: AuthEventSink | None) -> None:
    conn.execute(
        update(users)
        .where(users.c.id == row["id"])
        .where(users.c.locked_at.is_(None))
        .values(locked_at=now)
    )
    emit(events, conn, _event("account.locked", now, row, failures=MAX_FAILURES))
    # A lock also ends the sessions already signed in (issue #7, finding 9): whoever
    # is guessing may already hold one.
    end_user_sessions(conn, row["id"], "locked", now, events=events)


def _event(action: str, now: datetime, row: RowMapping, **detail: object) -> AuthEvent:
    return AuthEvent(
        action=action,
        at=now,
        actor_user_id=row["id"],
        subject_user_id=row["id"],
        username=row["username"],
        agency_id=row["agency_id"],
        detail=detail,
    )


def _failed(now: datetime, row: RowMapping | None, username: str, stage: str) -> AuthEvent:
    return AuthEvent(
        action="login.failed",
        at=now,
        outcome="failure",
        subject_user_id=row["id"] if row is not None else None,
        username=username,
        agency_id=row["agency_id"] if row is not None else None,
        detail={"stage": stage},
    )
