"""The data generation counter that vector tile ETags include (issue #8).

One row (``id = 1``) whose ``generation`` goes up in the same transaction as every
audited change (:mod:`crossbeat.store.generation`, called by the audit log).

Revision ID: 0016_tile_generation
Revises: 0015_materialised_sensitivity
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_tile_generation"
down_revision: str | None = "0015_materialised_sensitivity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The role reads switch to under row-level security (crossbeat.sharing.rls).
APP_ROLE = "crossbeat_app"


def upgrade() -> None:
    op.create_table(
        "data_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "generation", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_generation")),
    )
    op.execute("INSERT INTO data_generation (id, generation) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT ON data_generation TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table("data_generation")
