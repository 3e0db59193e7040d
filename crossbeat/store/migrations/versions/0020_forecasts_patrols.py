"""Model cards, patrol plans and dosage logs (issue #13).

Revision ID: 0020
Revises: 0019_duplicate_links
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0020"
down_revision: str | None = "0019_duplicate_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "model_cards",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("grid", _JSON, nullable=False),
        sa.Column("training_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("training_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_snapshot", _JSON, nullable=False),
        sa.Column("backtest", _JSON, nullable=False),
        sa.Column("accountability", _JSON, nullable=False),
        sa.Column("forecast", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name="fk_model_cards_agency_id_agencies"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_cards"),
    )
    op.create_index("ix_model_cards_agency_created", "model_cards", ["agency_id", "created_at"])
    op.create_table(
        "patrol_plans",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("model_card_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("shift_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("plan", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name="fk_patrol_plans_agency_id_agencies"
        ),
        sa.ForeignKeyConstraint(
            ["model_card_id"], ["model_cards.id"], name="fk_patrol_plans_model_card_id_model_cards"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_patrol_plans"),
    )
    op.create_index("ix_patrol_plans_shift", "patrol_plans", ["shift_start"])
    op.create_table(
        "dosage_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("plan_id", sa.String(36), nullable=True),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.Column("logged_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name="fk_dosage_logs_agency_id_agencies"
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["patrol_plans.id"], name="fk_dosage_logs_plan_id_patrol_plans"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dosage_logs"),
    )
    op.create_index("ix_dosage_logs_plan_cell", "dosage_logs", ["plan_id", "cell"])


def downgrade() -> None:
    op.drop_index("ix_dosage_logs_plan_cell", table_name="dosage_logs")
    op.drop_table("dosage_logs")
    op.drop_index("ix_patrol_plans_shift", table_name="patrol_plans")
    op.drop_table("patrol_plans")
    op.drop_index("ix_model_cards_agency_created", table_name="model_cards")
    op.drop_table("model_cards")
