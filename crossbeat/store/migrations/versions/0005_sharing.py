"""Sharing: agreements and their history, groups, public-policy overrides (#3).

On PostgreSQL also adds row-level security as defence in depth: a role
``crossbeat_app`` (no login) may only SELECT incident rows of the agencies listed in
the transaction setting ``crossbeat.visible_agencies`` and personal data of those in
``crossbeat.personal_agencies``. The sharing reads switch to that role with
``SET LOCAL ROLE`` for the incident queries, so a bug in the filters above the
database still cannot return another agency's rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "crossbeat_app"
_VISIBLE = (
    "agency_id = ANY (string_to_array(current_setting('crossbeat.visible_agencies', true), ','))"
)
_PERSONAL = (
    "agency_id = ANY (string_to_array(current_setting('crossbeat.personal_agencies', true), ','))"
)
_VIA_INCIDENT = "EXISTS (SELECT 1 FROM incidents i WHERE i.id = incident_id)"
_POLICIES = {
    "incidents": _VISIBLE,
    "incident_offences": _VIA_INCIDENT,
    "incident_jurisdictions": _VIA_INCIDENT,
    "incident_versions": _VIA_INCIDENT,
    "incident_personal": _PERSONAL,
}
_READ_ONLY = ("agencies", "jurisdictions")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sharing_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_groups")),
    )
    op.create_table(
        "sharing_group_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sharing_groups.id"],
            name=op.f("fk_sharing_group_members_group_id_sharing_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_sharing_group_members_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("group_id", "agency_id", name=op.f("pk_sharing_group_members")),
    )
    op.create_index("ix_sharing_group_members_agency", "sharing_group_members", ["agency_id"])
    op.create_table(
        "sharing_agreements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("grantee_kind", sa.String(length=16), nullable=False),
        sa.Column("grantee_id", sa.String(length=64), nullable=False),
        sa.Column("offences", _json(), nullable=True),
        sa.Column("fields", _json(), nullable=False),
        sa.Column("precision", sa.String(length=16), nullable=False),
        sa.Column("time_resolution", sa.String(length=16), nullable=False),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("purposes", _json(), nullable=False),
        sa.Column("include_sensitive", _json(), nullable=False),
        sa.Column("purpose_note", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["agencies.id"], name=op.f("fk_sharing_agreements_owner_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_agreements")),
    )
    op.create_index(
        "ix_sharing_agreements_owner_grantee",
        "sharing_agreements",
        ["owner_id", "grantee_kind", "grantee_id"],
    )
    op.create_index(
        "ix_sharing_agreements_grantee", "sharing_agreements", ["grantee_kind", "grantee_id"]
    )
    op.create_table(
        "sharing_agreement_versions",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("snapshot", _json(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["sharing_agreements.id"],
            name=op.f("fk_sharing_agreement_versions_agreement_id_sharing_agreements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "agreement_id", "version", name=op.f("pk_sharing_agreement_versions")
        ),
    )
    op.create_table(
        "public_policy_overrides",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_public_policy_overrides_agency_id_agencies"),
        ),
        sa.PrimaryKeyConstraint("agency_id", name=op.f("pk_public_policy_overrides")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()


def _row_level_security() -> None:
    # Roles are cluster-wide: create it once, tolerating a concurrent creator.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        EXCEPTION WHEN duplicate_object THEN NULL;
        END $$;
        """
    )
    # The account that runs CrossBeat must be able to SET ROLE to it.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
                EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
            END IF;
        END $$;
        """
    )
    for table in _READ_ONLY:
        op.execute(f"GRANT SELECT ON {table} TO {APP_ROLE}")
    for table, condition in _POLICIES.items():
        op.execute(f"GRANT SELECT ON {table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY crossbeat_app_visible ON {table} FOR SELECT TO {APP_ROLE} "
            f"USING ({condition})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _POLICIES:
            op.execute(f"DROP POLICY IF EXISTS crossbeat_app_visible ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
            op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
        for table in _READ_ONLY:
            op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
    op.drop_table("public_policy_overrides")
    op.drop_table("sharing_agreement_versions")
    op.drop_index("ix_sharing_agreements_grantee", table_name="sharing_agreements")
    op.drop_index("ix_sharing_agreements_owner_grantee", table_name="sharing_agreements")
    op.drop_table("sharing_agreements")
    op.drop_index("ix_sharing_group_members_agency", table_name="sharing_group_members")
    op.drop_table("sharing_group_members")
    op.drop_table("sharing_groups")
