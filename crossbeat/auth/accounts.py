"""User accounts: create, roles, passwords, second factor, disable/enable, unlock, inactivity.

Every user belongs to one agency, signs in with a username unique across all agencies,
and has a password and a TOTP second factor from the moment it is created (there is no
account without a second factor). Every operation checks its input completely before
writing, writes in one transaction, and raises an :class:`~crossbeat.auth.errors.AccountError`
that names the next step when the input is bad, so a refused operation changes nothing.

Management operations take ``by``: the signed-in :class:`~crossbeat.auth.roles.Actor`
(checked against :mod:`crossbeat.auth.roles`), or None for the local operator.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from crossbeat.auth import passwords, totp
from crossbeat.auth.errors import (
    DuplicateUsername,
    InvalidCredentials,
    InvalidUsername,
    UnknownAgency,
    UnknownUser,
)
from crossbeat.auth.events import AuthEvent, AuthEventSink, emit
from crossbeat.auth.roles import Action, Actor, Role, authorize, authorize_roles, parse_roles
from crossbeat.auth.sessions import end_user_sessions
from crossbeat.auth.tables import login_failures, user_roles, users
from crossbeat.clock import Clock
from crossbeat.store import Store
from crossbeat.store.schema import agencies
from crossbeat.vault.keys import require_vault
from crossbeat.vault.totp_seeds import WHAT as SEALED_SEEDS
from crossbeat.vault.totp_seeds import seal_seed

INACTIVITY_LIMIT = timedelta(days=90)
"""Accounts not used for this long are disabled (CJIS 5.5.1 / AC-2(3))."""

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class User:
    """An account as stored, without any secret."""

    id: str
    agency_id: str
    username: str
    display_name: str | None
    roles: frozenset[Role]
    status: str
    disabled_reason: str | None
    disabled_at: datetime | None
    locked_at: datetime | None
    created_at: datetime
    last_login_at: datetime | None
    last_active_at: datetime

    @property
    def active(self) -> bool:
        """Whether the account is enabled."""
        return self.status == "active"

    @property
    def locked(self) -> bool:
        """Whether the account is locked after failed sign-ins."""
        return self.locked_at is not None

    def actor(self) -> Actor:
        """Return this user as the :class:`Actor` of management operations."""
        return Actor(self.id, self.username, self.agency_id, self.roles)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (no secrets)."""
        return {
            "username": self.username,
            "agency": self.agency_id,
            "display_name": self.display_name,
            "roles": sorted(r.value for r in self.roles),
            "status": self.status,
            "disabled_reason": self.disabled_reason,
            "locked": self.locked,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


@dataclass(frozen=True)
class Enrolment:
    """A new second factor: shown to the user once, never retrievable again."""

    user: User
    totp_secret: str
    provisioning_uri: str


def normalise_username(username: str) -> str:
    """Return the stored form of a username (NFKC, trimmed, lower case).

    Raises
    ------
    InvalidUsername
        When it is empty, longer than 64 characters or uses other characters than
        letters, digits and ``. _ @ -``.
    """
    if not isinstance(username, str) or not username.strip():
        raise InvalidUsername("the username is empty: give one, e.g. j.smith")
    name = unicodedata.normalize("NFKC", username).strip().casefold()
    if not _USERNAME.match(name):
        raise InvalidUsername(
            f"invalid username {username!r}: use 1-64 letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def create_user(
    store: Store,
    agency_id: str,
    username: str,
    password: str,
    roles: Iterable[str | Role],
    *,
    display_name: str | None = None,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> Enrolment:
    """Create a user with a password and a new TOTP second factor.

    Parameters
    ----------
    store
        The store, opened with a KEK (the TOTP seed is stored sealed).
    agency_id
        The agency the user belongs to (must be registered).
    username
        Unique across all agencies; stored lower case.
    password
        Checked against the password policy.
    roles
        One or more role names.
    display_name
        A name to show instead of the username.
    by
        Who is creating it (None: the local operator).
    clock
        Time source (default: the store's).
    events
        Receives ``account.created``.

    Returns
    -------
    Enrolment
        The user and the TOTP seed and ``otpauth://`` URI, to show once.

    Raises
    ------
    InvalidUsername, UnknownRole, UnknownAgency, DuplicateUsername, WeakPassword
        For bad input; nothing is written.
    PermissionDenied
        When ``by`` may not manage this agency's users or grant these roles.
    KeyConfigError
        When the store was opened without a KEK; nothing is written.
    """
    require_vault(store, SEALED_SEEDS)
    name = normalise_username(username)
    role_set = parse_roles(roles)
    authorize(by, Action.MANAGE_USERS, agency_id)
    authorize_roles(by, role_set)
    with store.connect() as conn:
        agency = conn.execute(select(agencies).where(agencies.c.id == agency_id)).first()
        if agency is None:
            raise UnknownAgency(agency_id)
        if _find(conn, name) is not None:
            raise DuplicateUsername(name)
    passwords.check_password(password, context=_context(name, agency_id, agency.name))
    now = (clock or store.clock).now()
    secret = totp.new_secret()
    user_id = str(uuid.uuid4())
    row = {
        "id": user_id,
        "agency_id": agency_id,
        "username": name,
        "display_name": (display_name or "").strip() or None,
        "password_hash": passwords.hash_password(password),
        "password_changed_at": now,
        "totp_enrolled_at": now,
        "totp_last_step": None,
        "status": "active",
        "created_at": now,
        "last_active_at": now,
    }
    try:
        with store.begin() as conn:
            conn.execute(insert(users), [{**row, **seal_seed(store, conn, user_id, secret)}])
            _write_roles(conn, user_id, role_set, now)
            user = _load(conn, name)
            emit(events, conn, _event("account.created", user, by, now, roles=_names(role_set)))
    except IntegrityError as exc:  # a concurrent create took the name
        raise DuplicateUsername(name) from exc
    return Enrolment(user, secret, totp.provisioning_uri(secret, name))


def get_user(store: Store, username: str) -> User:
    """Return the account with this username.

    Raises
    ------
    InvalidUsername, UnknownUser
    """
    name = normalise_username(username)
    with store.connect() as conn:
        return _load(conn, name)


def list_users(
    store: Store, *, agency_id: str | None = None, by: Actor | None = None
) -> list[User]:
    """Return the accounts of one agency (or of all), by username.

    Parameters
    ----------
    agency_id
        Only this agency's users. None: all agencies for the local operator and
        platform admins, the actor's own agency for anyone else.
    by
        Who is asking.

    Raises
    ------
    UnknownAgency, PermissionDenied
    """
    if agency_id is None and by is not None and Role.PLATFORM_ADMIN not in by.roles:
        agency_id = by.agency_id
    if agency_id is not None:
        authorize(by, Action.READ_USERS, agency_id)
    with store.connect() as conn:
        if agency_id is not None and not _agency_exists(conn, agency_id):
            raise UnknownAgency(agency_id)
        query = select(users).order_by(users.c.username)
        if agency_id is not None:
            query = query.where(users.c.agency_id == agency_id)
        rows = conn.execute(query).mappings().all()
        return [_to_user(row, _roles(conn, row["id"])) for row in rows]


def set_roles(
    store: Store,
    username: str,
    roles: Iterable[str | Role],
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> User:
    """Replace a user's roles.

    Raises
    ------
    InvalidUsername, UnknownUser, UnknownRole, PermissionDenied
    """
    name = normalise_username(username)
    role_set = parse_roles(roles)
    now = (clock or store.clock).now()
    with store.begin() as conn:
        user = _load(conn, name)
        authorize(by, Action.MANAGE_USERS, user.agency_id)
        authorize_roles(by, user.roles | role_set)
        conn.execute(delete(user_roles).where(user_roles.c.user_id == user.id))
        _write_roles(conn, user.id, role_set, now)
        changed = _load(conn, name)
        detail = {"before": _names(user.roles), "after": _names(role_set)}
        emit(events, conn, _event("account.roles_changed", changed, by, now, **detail))
    return changed


def set_password(
    store: Store,
    username: str,
    password: str,
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> User:
    """Set a user's password (administrator reset) and end the user's sessions.

    Raises
    ------
    InvalidUsername, UnknownUser, WeakPassword, PermissionDenied
    """
    name = normalise_username(username)
    with store.connect() as conn:
        user = _load(conn, name)
        agency_name = conn.execute(
            select(agencies.c.name).where(agencies.c.id == user.agency_id)
        ).scalar_one()
    authorize(by, Action.MANAGE_USERS, user.agency_id)
    authorize_roles(by, user.roles)
    return _store_password(store, user, password, agency_name, by, clock, events)


def change_password(
    store: Store,
    username: str,
    current_password: str,
    new_password: str,
    *,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> User:
    """Change one's own password, proving the current one; ends all of the user's sessions.

    Raises
    ------
    InvalidCredentials
        The current password is wrong (or there is no such user).
    WeakPassword
        The new password breaks the policy.
    """
    name = normalise_username(username)
    with store.connect() as conn:
        row = _find(conn, name)
        agency_name = None
        if row is not None:
            agency_name = conn.execute(
                select(agencies.c.name).where(agencies.c.id == row["agency_id"])
            ).scalar_one()
    if not passwords.verify_password(row["password_hash"] if row else None, current_password):
        raise InvalidCredentials()
    assert row is not None and agency_name is not None  # verify_password is False otherwise
    with store.connect() as conn:
        user = _to_user(row, _roles(conn, row["id"]))
    return _store_password(store, user, new_password, agency_name, user.actor(), clock, events)


def reset_totp(
    store: Store,
    username: str,
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> Enrolment:
    """Give a user a new TOTP seed (lost phone) and end the user's sessions.

    Returns
    -------
    Enrolment
        The new seed and URI, to show once.

    Raises
    ------
    InvalidUsername, UnknownUser, PermissionDenied
    KeyConfigError
        When the store was opened without a KEK; nothing is written.
    """
    require_vault(store, SEALED_SEEDS)
    name = normalise_username(username)
    now = (clock or store.clock).now()
    secret = totp.new_secret()
    with store.begin() as conn:
        user = _load(conn, name)
        authorize(by, Action.MANAGE_USERS, user.agency_id)
        authorize_roles(by, user.roles)
        values = {
            **seal_seed(store, conn, user.id, secret),
            "totp_enrolled_at": now,
            "totp_last_step": None,
        }
        conn.execute(update(users).where(users.c.id == user.id).values(**values))
        end_user_sessions(conn, user.id, "totp_reset", now, events=events)
        emit(events, conn, _event("account.totp_reset", user, by, now))
    return Enrolment(user, secret, totp.provisioning_uri(secret, name))


def disable_user(
    store: Store,
    username: str,
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> User:
    """Disable an account and end its sessions (it keeps its data and can be enabled again).

    Raises
    ------
    InvalidUsername, UnknownUser, PermissionDenied
    """
    name = normalise_username(username)
    now = (clock or store.clock).now()
    with store.begin() as conn:
        user = _load(conn, name)
        authorize(by, Action.MANAGE_USERS, user.agency_id)
        authorize_roles(by, user.roles)
        _disable(conn, user, "admin", now, by, events)
        return _load(conn, name)


def enable_user(
    store: Store,
    username: str,
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> User:
    """Enable a disabled account; its 90-day inactivity period starts again now.

    Raises
    ------
    InvalidUsername, UnknownUser, PermissionDenied
    """
    name = normalise_username(username)
    now = (clock or store.clock).now()
    with store.begin() as conn:
        user = _load(conn, name)
        authorize(by, Action.MANAGE_USERS, user.agency_id)
        authorize_roles(by, user.roles)
        values = {
            "status": "active",
            "disabled_reason": None,
            "disabled_at": None,
            "last_active_at": now,
        }
        conn.execute(update(users).where(users.c.id == user.id).values(**values))
        emit(events, conn, _event("account.enabled", user, by, now))
        return _load(conn, name)


def unlock_user(
    store: Store,
    username: str,
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> User:
    """Unlock an account locked by failed sign-ins; earlier failures stop counting.

    Raises
    ------
    InvalidUsername, UnknownUser, PermissionDenied
    """
    name = normalise_username(username)
    now = (clock or store.clock).now()
    with store.begin() as conn:
        user = _load(conn, name)
        authorize(by, Action.UNLOCK_USERS, user.agency_id)
        authorize_roles(by, user.roles)
        conn.execute(update(users).where(users.c.id == user.id).values(locked_at=None))
        conn.execute(delete(login_failures).where(login_failures.c.user_id == user.id))
        emit(events, conn, _event("account.unlocked", user, by, now, was_locked=user.locked))
        return _load(conn, name)


def disable_inactive(
    store: Store,
    *,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> list[User]:
    """Disable every active account unused for 90 days (run daily; sign-in also checks).

    Returns
    -------
    list[User]
        The accounts disabled by this run.
    """
    now = (clock or store.clock).now()
    disabled = []
    with store.begin() as conn:
        rows = conn.execute(
            select(users)
            .where(users.c.status == "active")
            .where(users.c.last_active_at <= now - INACTIVITY_LIMIT)
            .order_by(users.c.username)
        ).mappings()
        for row in list(rows):
            user = _to_user(row, _roles(conn, row["id"]))
            _disable(conn, user, "inactive", now, None, events)
            disabled.append(_load(conn, user.username))
    return disabled


def is_inactive(last_active_at: datetime, now: datetime) -> bool:
    """Return whether an account last active at ``last_active_at`` is past the limit."""
    return now - last_active_at >= INACTIVITY_LIMIT


# -- helpers shared with crossbeat.auth.login ----------------------------------------------
def find_user_row(conn: Connection, username: str) -> RowMapping | None:
    """Return the stored row of a username as typed, or None (also for malformed names)."""
    try:
        name = normalise_username(username)
    except InvalidUsername:
        return None
    return _find(conn, name)


def disable_in(
    conn: Connection,
    user: User,
    reason: str,
    now: datetime,
    events: AuthEventSink | None,
) -> None:
    """Disable ``user`` inside an open transaction (used by sign-in for inactivity)."""
    _disable(conn, user, reason, now, None, events)


def user_from_row(conn: Connection, row: RowMapping) -> User:
    """Return the :class:`User` of a stored row, with its roles."""
    return _to_user(row, _roles(conn, row["id"]))


def _store_password(
    store: Store,
    user: User,
    password: str,
    agency_name: str,
    by: Actor | None,
    clock: Clock | None,
    events: AuthEventSink | None,
) -> User:
    passwords.check_password(password, context=_context(user.username, user.agency_id, agency_name))
    new_hash = passwords.hash_password(password)
    now = (clock or store.clock).now()
    with store.begin() as conn:
        conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(password_hash=new_hash, password_changed_at=now)
        )
        end_user_sessions(conn, user.id, "password", now, events=events)
        emit(events, conn, _event("account.password_changed", user, by, now))
        return _load(conn, user.username)


def _disable(
    conn: Connection,
    user: User,
    reason: str,
    now: datetime,
    by: Actor | None,
    events: AuthEventSink | None,
) -> None:
    if user.active:
        conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(status="disabled", disabled_reason=reason, disabled_at=now)
        )
    end_user_sessions(conn, user.id, "disabled", now, events=events)
    emit(events, conn, _event("account.disabled", user, by, now, reason=reason))


def _context(username: str, agency_id: str, agency_name: str) -> list[str]:
    return [username, username.split("@")[0], agency_id, agency_name]


def _agency_exists(conn: Connection, agency_id: str) -> bool:
    return conn.execute(select(agencies.c.id).where(agencies.c.id == agency_id)).first() is not None


def _find(conn: Connection, name: str) -> RowMapping | None:
    return conn.execute(select(users).where(users.c.username == name)).mappings().first()


def _load(conn: Connection, name: str) -> User:
    row = _find(conn, name)
    if row is None:
        raise UnknownUser(name)
    return _to_user(row, _roles(conn, row["id"]))


def _roles(conn: Connection, user_id: str) -> frozenset[Role]:
    rows = conn.execute(select(user_roles.c.role).where(user_roles.c.user_id == user_id))
    return frozenset(Role(r) for r in rows.scalars())


def _write_roles(conn: Connection, user_id: str, roles: frozenset[Role], now: datetime) -> None:
    rows = [{"user_id": user_id, "role": r.value, "granted_at": now} for r in sorted(roles)]
    conn.execute(insert(user_roles), rows)


def _to_user(row: RowMapping, roles: frozenset[Role]) -> User:
    return User(
        id=row["id"],
        agency_id=row["agency_id"],
        username=row["username"],
        display_name=row["display_name"],
        roles=roles,
        status=row["status"],
        disabled_reason=row["disabled_reason"],
        disabled_at=row["disabled_at"],
        locked_at=row["locked_at"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        last_active_at=row["last_active_at"],
    )


def _names(roles: Iterable[Role]) -> list[str]:
    return sorted(r.value for r in roles)


def _event(action: str, user: User, by: Actor | None, now: datetime, **detail: Any) -> AuthEvent:
    return AuthEvent(
        action=action,
        at=now,
        actor_user_id=by.user_id if by else None,
        subject_user_id=user.id,
        username=user.username,
        agency_id=user.agency_id,
        detail=detail,
    )
