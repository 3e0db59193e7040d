"""Tables of the personal-data vault, on the shared store metadata.

``agency_keys`` is created by migration ``0004_vault``, ``platform_keys`` by
``0006_platform_keys``. A data key is stored only wrapped by the KEK; the KEK itself
is never stored.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    text,
)

from crossbeat.store.schema import UTCDateTime, incident_personal, metadata

#: Status of a data key: used for new writes / only for reading rows not yet
#: re-encrypted by a rotation / no row uses it and its key material is destroyed.
KEY_STATUSES = ("active", "rotating", "retired")

agency_keys = Table(
    "agency_keys",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    # 1, 2, ... per agency: each rotation adds the next version.
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # nonce || AES-256-GCM(KEK, data key, AAD = agency, key id, version) || tag;
    # NULL once retired (the key material is destroyed).
    Column("wrapped_key", LargeBinary),
    Column("wrap_alg", String(32), nullable=False),
    # Id of the KEK that wrapped it (crossbeat.vault.kek.Kek.id).
    Column("kek_id", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
    UniqueConstraint("agency_id", "version"),
    # At most one active key per agency, whatever the writers do concurrently.
    Index(
        "uq_agency_keys_active",
        "agency_id",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

#: Owner of the platform data key: seals what belongs to no agency (quarantined rows
#: whose agency is unknown, TOTP seeds). Agency ids cannot start with "@".
PLATFORM = "@platform"
#: Owner of the fingerprint key: the HMAC key of record hashes. Never rotated.
FINGERPRINT = "@fingerprint"
PLATFORM_SCOPES = (PLATFORM, FINGERPRINT)

# Deployment-wide keys, owned by no agency; the same life cycle as agency_keys.
platform_keys = Table(
    "platform_keys",
    metadata,
    Column("key_id", String(36), primary_key=True),
    # PLATFORM or FINGERPRINT.
    Column("scope", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    # nonce || AES-256-GCM(KEK, key, AAD = scope, key id, version) || tag; NULL once retired.
    Column("wrapped_key", LargeBinary),
    Column("wrap_alg", String(32), nullable=False),
    Column("kek_id", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
    UniqueConstraint("scope", "version"),
    Index(
        "uq_platform_keys_active",
        "scope",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

# Rotation and ``crossbeat keys status`` look rows up by agency and key.
Index(
    "ix_incident_personal_agency_key",
    incident_personal.c.agency_id,
    incident_personal.c.key_id,
)
