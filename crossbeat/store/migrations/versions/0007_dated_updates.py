"""Dated status and disposition: when an update feed last set them (issue #2).

An update feed (police.uk outcomes, a records system's case-status export) changes the
status or disposition of incidents already stored, as of a date. ``status_at`` and
``disposition_at`` hold that date, so that an older update never overrides a newer one
and a re-ingest of the crime feed does not undo it; ``status_row`` and
``disposition_row`` hold the source row of that update, because on the same date the
later row wins (police.uk lists a month's outcomes of a crime in the order reached).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD/DROP COLUMN on both dialects (SQLite >= 3.35): no
    # table copy, so triggers and the PostGIS generated column stay as they are.
    op.add_column("incidents", sa.Column("status_at", _TS, nullable=True))
    op.add_column("incidents", sa.Column("status_row", sa.Integer(), nullable=True))
    op.add_column("incidents", sa.Column("disposition_at", _TS, nullable=True))
    op.add_column("incidents", sa.Column("disposition_row", sa.Integer(), nullable=True))


def downgrade() -> None:
    for column in ("disposition_row", "disposition_at", "status_row", "status_at"):
        op.drop_column("incidents", column)
