"""API tokens for machine feeds: one agency, one purpose, shown once, stored hashed, revocable.

A records system that pushes its exports (or a client that pulls shared data) uses a
bearer token instead of a person's account. Each token belongs to one agency and is
good for one purpose only. The secret (``cbt_`` + 256 random bits) is shown once at
creation; the store keeps only its SHA-256, which is enough for a secret of this
strength (see :func:`crossbeat.auth._secret.secret_hash`) and lets each request find
its token by index without an argon2 computation per request. Tokens are revoked,
never deleted, so the audit trail keeps its references.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from crossbeat.auth._secret import new_secret, plausible, secret_hash
from crossbeat.auth.errors import (
    InvalidPurpose,
    TokenInvalid,
    TokenScopeError,
    UnknownAgency,
    UnknownToken,
)
from crossbeat.auth.events import AuthEvent, AuthEventSink, emit
from crossbeat.auth.roles import Action, Actor, Role, authorize
from crossbeat.auth.tables import api_tokens
from crossbeat.clock import Clock
from crossbeat.store import Store
from crossbeat.store.schema import agencies

TOKEN_PREFIX = "cbt_"
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write on every request


class TokenPurpose(StrEnum):
    """What a token may be used for."""

    INGEST = "ingest"
    """Push incident exports for the token's agency."""
    READ = "read"
    """Read the data shared with the token's agency (machine client)."""


@dataclass(frozen=True)
class ApiToken:
    """A stored token, without its secret."""

    id: str
    agency_id: str
    purpose: TokenPurpose
    label: str | None
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the token still works."""
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (never the secret)."""
        return {
            "id": self.id,
            "agency": self.agency_id,
            "purpose": self.purpose.value,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``secret`` is shown once and cannot be retrieved again."""

    token: ApiToken
    secret: str


def parse_purpose(purpose: str | TokenPurpose) -> TokenPurpose:
    """Return the :class:`TokenPurpose` of a name, or raise :class:`InvalidPurpose`."""
    try:
        return TokenPurpose(str(purpose).strip().lower())
    except ValueError:
        valid = ", ".join(p.value for p in TokenPurpose)
        raise InvalidPurpose(f"unknown token purpose {purpose!r}: use one of {valid}") from None


def create_token(
    store: Store,
    agency_id: str,
    purpose: str | TokenPurpose,
    *,
    label: str | None = None,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> NewToken:
    """Create an API token for one agency and purpose.

    Parameters
    ----------
    store
        The store.
    agency_id
        The agency the token acts for.
    purpose
        ``ingest`` or ``read``.
    label
        What the token is for, e.g. "RMS nightly export".
    by
        Who creates it (None: the local operator).
    clock
        Time source (default: the store's).
    events
        Receives ``token.created``.

    Returns
    -------
    NewToken
        The token and its secret, to show once.

    Raises
    ------
    InvalidPurpose, UnknownAgency, PermissionDenied
    """
    kind = parse_purpose(purpose)
    authorize(by, Action.MANAGE_TOKENS, agency_id)
    now = (clock or store.clock).now()
    secret = new_secret(TOKEN_PREFIX)
    with store.begin() as conn:
        if conn.execute(select(agencies.c.id).where(agencies.c.id == agency_id)).first() is None:
            raise UnknownAgency(agency_id)
        token_id = str(uuid.uuid4())
        conn.execute(
            insert(api_tokens).values(
                id=token_id,
                agency_id=agency_id,
                purpose=kind.value,
                label=(label or "").strip() or None,
                secret_hash=secret_hash(secret),
                created_at=now,
                created_by=by.user_id if by else None,
            )
        )
        token = _load(conn, token_id)
        emit(events, conn, _event("token.created", now, token, by))
    return NewToken(token, secret)


def authenticate_token(
    store: Store,
    secret: str,
    *,
    purpose: str | TokenPurpose,
    agency_id: str | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> ApiToken:
    """Return the token a request presented, if it is live and scoped for this use.

    Parameters
    ----------
    store
        The store.
    secret
        The bearer secret as presented.
    purpose
        What the request wants to do.
    agency_id
        The agency the request acts on, when it names one (e.g. the agency whose
        export is being pushed).
    clock
        Time source (default: the store's).
    events
        Receives ``token.refused`` for a revoked token or one used out of scope.

    Raises
    ------
    TokenInvalid
        Unknown or revoked.
    TokenScopeError
        Valid, but for another purpose or agency.
    InvalidPurpose
        ``purpose`` is not a defined purpose (a programming error).
    """
    kind = parse_purpose(purpose)
    now = (clock or store.clock).now()
    if not plausible(secret, TOKEN_PREFIX):
        raise TokenInvalid()
    failure: Exception | None = None
    with store.begin() as conn:
        row = (
            conn.execute(select(api_tokens).where(api_tokens.c.secret_hash == secret_hash(secret)))
            .mappings()
            .first()
        )
        if row is None:
            raise TokenInvalid()
        token = _to_token(row)
        if not token.active:
            failure = TokenInvalid()
        elif token.purpose is not kind:
            failure = TokenScopeError(
                f"this API token is for {token.purpose.value}, not {kind.value}: "
                f"create a {kind.value} token"
            )
        elif agency_id is not None and agency_id != token.agency_id:
            failure = TokenScopeError(
                f"this API token acts for agency {token.agency_id!r}, not {agency_id!r}"
            )
        if failure is not None:
            detail = {"reason": type(failure).__name__, "purpose": kind.value}
            emit(events, conn, _event("token.refused", now, token, None, "failure", **detail))
        else:
            if token.last_used_at is None or now - token.last_used_at >= _LAST_USED_RESOLUTION:
                conn.execute(
                    update(api_tokens).where(api_tokens.c.id == token.id).values(last_used_at=now)
                )
            return _load(conn, token.id)
    raise failure


def revoke_token(
    store: Store,
    token_id: str,
    *,
    by: Actor | None = None,
    clock: Clock | None = None,
    events: AuthEventSink | None = None,
) -> ApiToken:
    """Revoke a token at once; revoking a revoked token changes nothing.

    Raises
    ------
    UnknownToken, PermissionDenied
    """
    now = (clock or store.clock).now()
    with store.begin() as conn:
        token = _find(conn, token_id)
        if token is None:
            raise UnknownToken(str(token_id))
        authorize(by, Action.MANAGE_TOKENS, token.agency_id)
        if token.active:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token.id)
                .values(revoked_at=now, revoked_by=by.user_id if by else None)
            )
            emit(events, conn, _event("token.revoked", now, token, by))
        return _load(conn, token.id)


def list_tokens(
    store: Store, *, agency_id: str | None = None, by: Actor | None = None
) -> list[ApiToken]:
    """Return the tokens of one agency (or of all), newest first, revoked ones included.

    Parameters
    ----------
    agency_id
        Only this agency's tokens. None: all agencies for the local operator and
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
        authorize(by, Action.READ_TOKENS, agency_id)
    with store.connect() as conn:
        query = select(api_tokens).order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
        if agency_id is not None:
            exists = conn.execute(select(agencies.c.id).where(agencies.c.id == agency_id)).first()
            if exists is None:
                raise UnknownAgency(agency_id)
            query = query.where(api_tokens.c.agency_id == agency_id)
        return [_to_token(row) for row in conn.execute(query).mappings()]


def _find(conn: Connection, token_id: str) -> ApiToken | None:
    if not isinstance(token_id, str):
        return None
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first()
    return _to_token(row) if row is not None else None


def _load(conn: Connection, token_id: str) -> ApiToken:
    token = _find(conn, token_id)
    if token is None:
        raise UnknownToken(token_id)
    return token


def _to_token(row: RowMapping) -> ApiToken:
    return ApiToken(
        id=row["id"],
        agency_id=row["agency_id"],
        purpose=TokenPurpose(row["purpose"]),
        label=row["label"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def _event(
    action: str,
    now: datetime,
    token: ApiToken,
    by: Actor | None,
    outcome: str = "success",
    **detail: object,
) -> AuthEvent:
    return AuthEvent(
        action=action,
        at=now,
        outcome=outcome,
        actor_user_id=by.user_id if by else None,
        agency_id=token.agency_id,
        detail={"token": token.id, "purpose": token.purpose.value, **detail},
    )
