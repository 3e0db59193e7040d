"""Personal-data vault: per-agency data keys wrapped by the KEK (issue #3).

Existing ``incident_personal`` rows written with the legacy ``plain`` codec stay
readable; ``crossbeat keys rotate --all`` encrypts them (no migration can, as the
KEK is not available to migrations).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agency_keys",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("wrap_alg", sa.String(length=32), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("retired_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_agency_keys_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_agency_keys")),
        sa.UniqueConstraint("agency_id", "version", name=op.f("uq_agency_keys_agency_id_version")),
    )
    op.create_index(
        "uq_agency_keys_active",
        "agency_keys",
        ["agency_id"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_incident_personal_agency_key", "incident_personal", ["agency_id", "key_id"])


def downgrade() -> None:
    op.drop_index("ix_incident_personal_agency_key", table_name="incident_personal")
    op.drop_index("uq_agency_keys_active", table_name="agency_keys")
    op.drop_table("agency_keys")
