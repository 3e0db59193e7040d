"""Platform keys: the vault's keys owned by no agency (issue #3).

Scope ``@platform`` is a data key for quarantined rows whose agency is unknown and
for TOTP seeds; scope ``@fingerprint`` is the HMAC key of record hashes. Both are
stored only wrapped by the KEK, like ``agency_keys``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "platform_keys",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("wrap_alg", sa.String(length=32), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("retired_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_platform_keys")),
        sa.UniqueConstraint("scope", "version", name=op.f("uq_platform_keys_scope_version")),
    )
    op.create_index(
        "uq_platform_keys_active",
        "platform_keys",
        ["scope"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_index("uq_platform_keys_active", table_name="platform_keys")
    op.drop_table("platform_keys")
