"""The source digest of each stored incident: re-ingesting unchanged rows is a hash comparison.

``incidents.source_digest`` holds 16 bytes of the keyed hash of the source row
together with everything that turned it into the stored record (profile, crosswalks,
keyword rules, extent, code version); a re-ingest that finds the same digest counts
the row as unchanged without normalising it (``crossbeat.ingest.unchanged``, issue #9).
Existing rows get NULL: their first re-ingest takes the full path and fills it in.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN on both dialects (as 0007): no table copy, so the
    # triggers and the PostGIS generated column stay as they are.
    op.add_column("incidents", sa.Column("source_digest", sa.LargeBinary(16), nullable=True))


def downgrade() -> None:
    op.drop_column("incidents", "source_digest")
