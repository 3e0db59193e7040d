"""Agreement approvals recorded as users of the owner agency (issue #7, finding 5).

``approved_by`` was free text, so an administrator of one agency could grant it another
agency's data. An agreement is now in force only once admins of the *owner* agency
approved it: one approval, two distinct ones when personal data fields are shared. Each
approval is a row naming the user. Agreements stored before this migration have no
approvals: they stop applying until an owner admin approves them
(``crossbeat agreement approve ID --by USER`` or ``POST /agreements/{id}/approve``).

The same revision adds ``public_read_tallies``: anonymous reads are counted per time
window and client address and written to the audit log as one event per window (issue
#7, finding 9), so that the log no longer grows with every anonymous request.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sharing_agreement_approvals",
        sa.Column("agreement_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["sharing_agreements.id"],
            name=op.f("fk_sharing_agreement_approvals_agreement_id_sharing_agreements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sharing_agreement_approvals_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_sharing_agreement_approvals_agency_id_agencies"),
        ),
        sa.PrimaryKeyConstraint(
            "agreement_id", "user_id", name=op.f("pk_sharing_agreement_approvals")
        ),
    )

    op.create_table(
        "public_read_tallies",
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("source_ip", sa.String(45), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "window_start",
            "owner_id",
            "action",
            "resource_type",
            "source_ip",
            name=op.f("pk_public_read_tallies"),
        ),
    )


def downgrade() -> None:
    op.drop_table("public_read_tallies")
    op.drop_table("sharing_agreement_approvals")
