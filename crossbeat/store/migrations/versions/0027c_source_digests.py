"""A narrow table of source digests: an unchanged re-ingest reads ranges, not incidents.

``source_digests`` holds, per (agency, source id) whose incident is stored with a
source digest, that digest and what the re-ingest's skip rule tests (the incident's
id, row number, unmapped flag and the batch that wrote it;
``crossbeat.ingest.digests``). It is ordered by its primary key (``WITHOUT ROWID`` on
SQLite), so a part of a re-ingest reads its ids' digests as one range of it instead of
one descent into the wide incident rows per row (issue #9). The backfill copies every
incident stored with a digest.

Revision ID: 0027c
Revises: 0027d
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027c"
down_revision: str | None = "0027d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The backfill: every incident stored with a source digest (as of this revision).
_BACKFILL = (
    "INSERT INTO source_digests (agency_id, source_id, incident_id, digest, row_number,"
    " unmapped, batch_id) SELECT agency_id, source_id, id, source_digest, row_number, unmapped,"
    " batch_id FROM incidents WHERE source_digest IS NOT NULL"
)


def upgrade() -> None:
    op.create_table(
        "source_digests",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=16), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("unmapped", sa.Boolean(), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_source_digests_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("agency_id", "source_id", name=op.f("pk_source_digests")),
        sqlite_with_rowid=False,
    )
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_table("source_digests")
