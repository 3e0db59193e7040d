"""Server-side sessions: opaque tokens, idle and absolute timeouts, logout.

A session token is 256 random bits handed to the client (a cookie for the web UI);
only its SHA-256 is stored, so a copy of the database cannot be used to sign in.
Every :func:`validate_session` checks, on the server, that the session has not been
logged out, that it has been used within the last 30 minutes (CJIS 5.5.5 session
lock) and that it is less than 12 hours old whatever the activity, and that the
account is still enabled; then it records the activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from crossbeat.auth._secret import new_secret, plausible, secret_hash
from crossbeat.auth.errors import SessionExpired
from crossbeat.auth.events import AuthEvent, AuthEventSink, emit
from crossbeat.auth.roles import Actor, Role
from crossbeat.auth.tables import user_roles, user_sessions, users
from crossbeat.clock import Clock
from crossbeat.store import Store

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOKEN_PREFIX = "cbs_"


@dataclass(frozen=True)
class Session:
    """A live session, as returned by :func:`validate_session`.

    ``id`` is the stored hash of the token: safe to log, useless to sign in with.
    """

    id: str
    user_id: str
    username: str
    agency_id: str
    roles: frozenset[Role]
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    @property
    def idle_expires_at(self) -> datetime:
        """When the session ends if it is not used again."""
        return min(self.last_seen_at + IDLE_TIMEOUT, self.expires_at)

    def actor(self) -> Actor:
        """Return the signed-in user as the :class:`Actor` of management operations."""
        return Actor(self.user_id, self.username, self.agency_id, self.roles)


def start_session(conn: Connection, user_id: str, now: datetime) -> tuple[str, str]:
    """Create a session for a user who has passed both factors (inside a transaction).

    Only :mod:`crossbeat.auth.login` calls this, after the password and the one-time
    code were both accepted.

    Returns
    -------
    tuple[str, str]
        The token for the client and the session id (its hash).
    """
    token = new_secret(TOKEN_PREFIX)
    session_id = secret_hash(token)
    conn.execute(
        insert(user_sessions).values(
            id=session_id,
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT,
        )
    )
    return token, session_id


def validate_session(
    store: Store,
    token: str,
    *,
    touch: bool = True,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> Session:
    """Return the live session of a token, recording the activity; end it if it has expired.

    Parameters
    ----------
    store
        The store.
    token
        The token the client presented.
    touch
        Record this as activity (restarting the 30-minute idle timer). Use False
        for background polling that should not keep a session alive.
    clock
        Time source (default: the store's).
    events
        Receives ``session.ended`` when this call ends an expired session.

    Returns
    -------
    Session
        The session, with the user's agency and roles.

    Raises
    ------
    SessionExpired
        Unknown, logged out, idle for 30 minutes, 12 hours old, or the account is
        disabled; ``reason`` says which.
    """
    now = (clock or store.clock).now()
    if not plausible(token, TOKEN_PREFIX):
        raise SessionExpired("unknown")
    reason = None
    with store.begin() as conn:
        row = (
            conn.execute(
                select(user_sessions, users.c.username, users.c.agency_id, users.c.status)
                .join(users, users.c.id == user_sessions.c.user_id)
                .where(user_sessions.c.id == secret_hash(token))
            )
            .mappings()
            .first()
        )
        if row is None:
            raise SessionExpired("unknown")
        if row["ended_at"] is not None:
            raise SessionExpired(row["end_reason"] or "logout")
        if row["status"] != "active":
            reason = "disabled"
        elif now >= row["expires_at"]:
            reason = "absolute"
        elif now - row["last_seen_at"] >= IDLE_TIMEOUT:
            reason = "idle"
        if reason is not None:
            _end(conn, row["id"], row["user_id"], reason, now, events)
        else:
            if touch:
                conn.execute(
                    update(user_sessions)
                    .where(user_sessions.c.id == row["id"])
                    .values(last_seen_at=now)
                )
            roles = conn.execute(
                select(user_roles.c.role).where(user_roles.c.user_id == row["user_id"])
            ).scalars()
            return Session(
                id=row["id"],
                user_id=row["user_id"],
                username=row["username"],
                agency_id=row["agency_id"],
                roles=frozenset(Role(r) for r in roles),
                created_at=row["created_at"],
                last_seen_at=now if touch else row["last_seen_at"],
                expires_at=row["expires_at"],
            )
    raise SessionExpired(reason)  # after the commit that recorded the end


def logout(
    store: Store,
    token: str,
    *,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> bool:
    """End a session; the token stops working at once.

    Returns
    -------
    bool
        True if a live session was ended, False if the token was unknown or
        already ended (logging out twice is not an error).
    """
    now = (clock or store.clock).now()
    if not plausible(token, TOKEN_PREFIX):
        return False
    with store.begin() as conn:
        row = conn.execute(
            select(user_sessions.c.id, user_sessions.c.user_id)
            .where(user_sessions.c.id == secret_hash(token))
            .where(user_sessions.c.ended_at.is_(None))
        ).first()
        if row is None:
            return False
        _end(conn, row.id, row.user_id, "logout", now, events)
    return True


def end_user_sessions(
    conn: Connection,
    user_id: str,
    reason: str,
    now: datetime,
    *,
    events: AuthEventSink | None = None,
) -> int:
    """End every live session of a user inside an open transaction.

    Returns
    -------
    int
        How many sessions were ended.
    """
    ids = list(
        conn.execute(
            select(user_sessions.c.id)
            .where(user_sessions.c.user_id == user_id)
            .where(user_sessions.c.ended_at.is_(None))
        ).scalars()
    )
    for session_id in ids:
        _end(conn, session_id, user_id, reason, now, events)
    return len(ids)


def _end(
    conn: Connection,
    session_id: str,
    user_id: str,
    reason: str,
    now: datetime,
    events: AuthEventSink | None,
) -> None:
    conn.execute(
        update(user_sessions)
        .where(user_sessions.c.id == session_id)
        .values(ended_at=now, end_reason=reason)
    )
    if events is None:
        return
    # The account's agency owns the event, so its auditors see its users' sessions end.
    agency = conn.execute(select(users.c.agency_id).where(users.c.id == user_id)).scalar()
    detail = {"reason": reason, "session": session_id[:16]}
    # Name the user and their agency, so that the agency sees its users' session ends.
    who = conn.execute(
        select(users.c.username, users.c.agency_id).where(users.c.id == user_id)
    ).first()
    emit(
        events,
        conn,
        AuthEvent(
            "session.ended",
            now,
            actor_user_id=user_id if reason == "logout" else None,  # the user signed out
            subject_user_id=user_id,
            username=who.username if who else None,
            agency_id=who.agency_id if who else agency,
            detail=detail,
        ),
    )
