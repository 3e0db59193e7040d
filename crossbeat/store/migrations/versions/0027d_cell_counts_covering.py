"""Hexagon counts from the index alone: the cell indexes covering for SQLite (issue #12).

``ix_incidents_live_agency_h3_7`` and ``_h3_9`` (migration 0021) hold what a compiled
count by cell tests and groups by, but not ``withdrawn_at``, the column of their own
partial condition: SQLite reads an index as covering only when it holds every column
the query names, so each record counted for a hexagon tile was also read from the
table (as migration 0025b found for the local-time index). Both now end with
``withdrawn_at`` (always NULL in them). With the counts grouped on the bare category
(``crossbeat.sharing.compiled``), one owner's count of a z10 tile at 100,000 incidents
took 20 ms of CPU instead of 56 ms.

Revision ID: 0027d
Revises: 0027a
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crossbeat.store.spatial import refresh_statistics

revision: str = "0027d"
down_revision: str | None = "0027a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("withdrawn_at IS NULL")
#: What the counts by cell test and group by (``crossbeat.store.schema._COUNTED``).
_COUNTED = [
    "call_category", "crime_against", "sens_served", "occurred_from", "occurred_to",
    "reported_at", "created_at",
]  # fmt: skip


def _cell_indexes(columns: list[str]) -> None:
    for cell in ("h3_9", "h3_7"):
        name = f"ix_incidents_live_agency_{cell}"
        op.drop_index(name, table_name="incidents")
        op.create_index(
            name,
            "incidents",
            ["agency_id", cell, *columns],
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )


def upgrade() -> None:
    _cell_indexes([*_COUNTED, "withdrawn_at"])
    # Recreated indexes have no planner statistics: without them SQLite's planner took
    # the new h3_7 index for the panel's counts by month and agency (no occurred_local,
    # a temporary B-tree over every row: 7.3 s of CPU at 1 M against 1.2 s).
    refresh_statistics(op.get_bind())


def downgrade() -> None:
    _cell_indexes(_COUNTED)
    refresh_statistics(op.get_bind())
