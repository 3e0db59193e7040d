"""Sharing tables (SQLAlchemy Core), registered on the shared store metadata.

Created by migration ``0005_sharing``. An agreement row is never deleted: revoking sets
``revoked_at`` and every change is copied to ``sharing_agreement_versions``, so the
question "what did partner X see on a given day, and who approved it" can be answered
later. Public-policy overrides hold only the knobs an agency tightened.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

import crossbeat.auth.tables  # noqa: F401  (users, for the approvals' foreign key)
from crossbeat.store.schema import JsonType, UTCDateTime, metadata

sharing_groups = Table(
    "sharing_groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text),
)

sharing_group_members = Table(
    "sharing_group_members",
    metadata,
    Column(
        "group_id",
        String(64),
        ForeignKey("sharing_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agency_id", String(64), ForeignKey("agencies.id"), primary_key=True),
    Column("added_at", UTCDateTime, nullable=False),
    Column("added_by", Text),
    Index("ix_sharing_group_members_agency", "agency_id"),
)

sharing_agreements = Table(
    "sharing_agreements",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(64), ForeignKey("agencies.id"), nullable=False),
    # agency | group | public
    Column("grantee_kind", String(16), nullable=False),
    # agency id, group id, or "public"
    Column("grantee_id", String(64), nullable=False),
    # NULL = every offence; else a JSON list of tokens (codes, categories, part1).
    Column("offences", JsonType),
    Column("fields", JsonType, nullable=False),
    # exact, block, h3:N, area:LAYER (area:AGENCY/LAYER) or jurisdiction.
    Column("precision", String(128), nullable=False),
    Column("time_resolution", String(16), nullable=False),
    Column("delay_seconds", Integer, nullable=False),
    Column("purposes", JsonType, nullable=False),
    # Sensitivity flags whose incidents this agreement still shares (JSON list).
    Column("include_sensitive", JsonType, nullable=False),
    Column("purpose_note", Text, nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_to", UTCDateTime),
    # Free-text reference of the decision (MoU, minute). Who approved is recorded as
    # users in sharing_agreement_approvals (migration 0013), never as text.
    Column("approved_by", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text),
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", Text),
    Column("revoke_reason", Text),
    Column("version", Integer, nullable=False),
    Index("ix_sharing_agreements_owner_grantee", "owner_id", "grantee_kind", "grantee_id"),
    Index("ix_sharing_agreements_grantee", "grantee_kind", "grantee_id"),
)

sharing_agreement_versions = Table(
    "sharing_agreement_versions",
    metadata,
    Column(
        "agreement_id",
        String(36),
        ForeignKey("sharing_agreements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    # created | revoked
    Column("change", String(16), nullable=False),
    Column("snapshot", JsonType, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("changed_by", Text),
)

# One row per admin of the owner agency who approved an agreement (migration 0013). An
# agreement is in force only with one approval, two distinct ones when it shares
# personal data fields; the primary key makes each approver count once.
sharing_agreement_approvals = Table(
    "sharing_agreement_approvals",
    metadata,
    Column(
        "agreement_id",
        String(36),
        ForeignKey("sharing_agreements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", String(36), ForeignKey("users.id"), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("approved_at", UTCDateTime, nullable=False),
)

public_policy_overrides = Table(
    "public_policy_overrides",
    metadata,
    Column("agency_id", String(64), ForeignKey("agencies.id"), primary_key=True),
    # Only the knobs the agency tightened, e.g. {"precision": "h3:7", "delay_seconds": ...}.
    Column("settings", JsonType, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", Text),
)

#: Privacy budget spent by an owner's noisy public counts, per calendar month (UTC).
#: Created by migration ``0012``; see :mod:`crossbeat.sharing.noise`.
privacy_budget = Table(
    "privacy_budget",
    metadata,
    Column("agency_id", String(64), ForeignKey("agencies.id"), primary_key=True),
    # "2026-06": the calendar month (UTC) the spending counts against.
    Column("period", String(7), primary_key=True),
    # ε spent, in millionths (whole numbers add up exactly).
    Column("spent", Integer, nullable=False),
    Column("releases", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
