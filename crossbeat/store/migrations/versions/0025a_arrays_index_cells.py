"""Analysis arrays: the stored H3 resolution-9 cell in their covering index (issue #11).

``ix_incidents_live_arrays`` (migration 0024a) gains ``h3_9``: the arrays of a viewer
granted ``h3:9`` (the public's default, and the usual partner grant) anchor each point
in its stored cell instead of computing the cell of every point again at read time
(about half a second of CPU per million points), still reading one range of the index.

Revision ID: 0025a
Revises: 0024e
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025a"
down_revision: str | None = "0024e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("withdrawn_at IS NULL")
#: The columns of the index before this revision (migration 0024a).
_BEFORE = [
    "agency_id", "public_id", "call_category", "sens_served", "occurred_from",
    "occurred_to", "reported_at", "created_at", "lon", "lat", "nibrs_code",
    "crime_against", "location_type", "id", "withdrawn_at",
]  # fmt: skip
#: The columns after it (``crossbeat.store.schema.ARRAY_COLUMNS``, as of this revision).
_AFTER = [*_BEFORE[:-1], "h3_9", "withdrawn_at"]


def _replace(columns: list[str]) -> None:
    op.drop_index("ix_incidents_live_arrays", table_name="incidents")
    op.create_index(
        "ix_incidents_live_arrays",
        "incidents",
        columns,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )


def upgrade() -> None:
    _replace(_AFTER)


def downgrade() -> None:
    _replace(_BEFORE)
