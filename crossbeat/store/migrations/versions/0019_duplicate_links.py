"""Links between cross-agency duplicate incidents (issue #11).

Two incidents of different agencies that report the same event are linked, never
deleted; the analyses count a linked group once (``crossbeat.analytics.links``).

Revision ID: 0019_duplicate_links
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

JSON = sa.JSON().with_variant(JSONB(), "postgresql")

revision: str = "0019_duplicate_links"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duplicate_links",
        sa.Column("id_a", sa.String(36), sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("id_b", sa.String(36), sa.ForeignKey("incidents.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("public_a", sa.String(36), nullable=False),
        sa.Column("public_b", sa.String(36), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("linked_by", sa.String(64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )  # fmt: skip
    op.create_index("ix_duplicate_links_b", "duplicate_links", ["id_b"])


def downgrade() -> None:
    op.drop_index("ix_duplicate_links_b", table_name="duplicate_links")
    op.drop_table("duplicate_links")
