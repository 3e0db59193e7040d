"""Analysis arrays from an index: live rows by owner in public-id order (issue #8).

``ix_incidents_live_arrays`` on live rows: ``(agency_id, public_id)`` followed by every
column :func:`crossbeat.sharing.arrays.analysis_arrays` selects or its rules test (the
call category, the materialised flags, the publication times, the point, the offence
columns, the owner's id, and ``withdrawn_at``, always NULL here: SQLite reads an index as
covering only when it holds every column the query names, that of the partial index's
condition included). One owner's visible incidents are then one range of the
index, already in public-id order: no lookup of the (wide) rows and no sort.

Revision ID: 0024a
Revises: 0023
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024a"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("withdrawn_at IS NULL")
#: The columns of the index (``crossbeat.store.schema.ARRAY_COLUMNS``, as of this revision).
_COLUMNS = [
    "agency_id", "public_id", "call_category", "sens_served", "occurred_from",
    "occurred_to", "reported_at", "created_at", "lon", "lat", "nibrs_code",
    "crime_against", "location_type", "id", "withdrawn_at",
]  # fmt: skip


def upgrade() -> None:
    op.create_index(
        "ix_incidents_live_arrays",
        "incidents",
        _COLUMNS,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_live_arrays", table_name="incidents")
