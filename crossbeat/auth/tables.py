"""Tables for accounts and authentication, on the shared store metadata.

Created by migration ``0002_accounts``. Secrets are never stored in the clear:
passwords as argon2id hashes, session and MFA tickets and API tokens as SHA-256
hashes of high-entropy random values, and the TOTP seed, which the server needs to
compute codes, sealed by the vault (:mod:`crossbeat.vault.totp_seeds`; see
``docs/security.md``).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from crossbeat.store.schema import UTCDateTime, metadata

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False, index=True),
    # Normalised (NFKC, lower case); unique across all agencies, so it alone signs in.
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", Text),
    Column("password_hash", Text, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
    # Base32 TOTP seed (RFC 6238, SHA-1, 6 digits, 30 s), sealed with AES-256-GCM under
    # the platform data key and bound to the user id; its codec and data key.
    Column("totp_secret", LargeBinary, nullable=False),
    Column("totp_codec", String(32), nullable=False),
    Column("totp_key_id", String(64)),
    Column("totp_enrolled_at", UTCDateTime, nullable=False),
    # The newest accepted 30-second time step: a code for this step or an older one
    # is refused, so each code works once.
    Column("totp_last_step", Integer),
    # active | disabled
    Column("status", String(16), nullable=False),
    # admin | inactive (set when status is disabled)
    Column("disabled_reason", String(16)),
    Column("disabled_at", UTCDateTime),
    # Set on the failed attempt that reaches the limit; cleared only by an admin unlock.
    Column("locked_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime),
    # Start of the 90-day inactivity period: creation, last sign-in or re-enabling.
    Column("last_active_at", UTCDateTime, nullable=False),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # officer | analyst | supervisor | agency_admin | auditor | platform_admin
    Column("role", String(32), nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("user_id", "role"),
)

# Failed sign-in attempts that count towards the lockout. Cleared by a successful
# sign-in and by an unlock; the history of attempts is the audit log's job.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # password | totp | replay
    Column("stage", String(16), nullable=False),
    Index("ix_login_failures_user_at", "user_id", "at"),
)

mfa_challenges = Table(
    "mfa_challenges",
    metadata,
    # SHA-256 (hex) of the ticket handed to the client after the password step.
    Column("id", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

user_sessions = Table(
    "user_sessions",
    metadata,
    # SHA-256 (hex) of the session token; the token itself is never stored.
    Column("id", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    # Absolute end: created_at + 12 hours, whatever the activity.
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    # logout | idle | absolute | disabled | password | locked
    Column("end_reason", String(16)),
    Index("ix_user_sessions_user", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False, index=True),
    # ingest | read
    Column("purpose", String(32), nullable=False),
    Column("label", Text),
    # SHA-256 (hex) of the secret shown once at creation.
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(36), ForeignKey("users.id")),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", String(36), ForeignKey("users.id")),
)
