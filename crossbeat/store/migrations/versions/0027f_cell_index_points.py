"""Point tiles test the tile's box on the cell index: ``lat`` and ``lon`` in it (issue #8).

A point tile at exact precision reads the owner's records by the ``h3_9`` cells meeting
the tile (``ix_incidents_live_agency_h3_9``, :func:`crossbeat.sharing.tiles._near`),
then keeps those whose stored point lies in the tile. The cells meeting a tile cover
about twice its area, and without the point in the index every record of those cells
was read from the table before the box test dropped half of them: a z15 tile at 1 M
incidents read 1,983 rows for 1,049 points. With ``lat`` and ``lon`` at the end of the
index the box is tested on the index entries, and only the records in the tile are read
from the table (the tile's rows in 4.4 ms instead of 6.9 ms, raw SQLite). The index
stays covering for the counts by cell (the new columns come last).

Revision ID: 0027f
Revises: 0027e
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crossbeat.store.spatial import refresh_statistics

revision: str = "0027f"
down_revision: str | None = "0027e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("withdrawn_at IS NULL")
_NAME = "ix_incidents_live_agency_h3_9"
#: The columns of migration 0027d: the owner, the cell, what a count tests, the partial
#: condition's column.
_BEFORE = [
    "agency_id", "h3_9", "call_category", "crime_against", "sens_served", "occurred_from",
    "occurred_to", "reported_at", "created_at", "withdrawn_at",
]  # fmt: skip


def _cell_index(columns: list[str]) -> None:
    op.drop_index(_NAME, table_name="incidents")
    op.create_index(_NAME, "incidents", columns, sqlite_where=_LIVE, postgresql_where=_LIVE)
    # A recreated index has no planner statistics (see migration 0027d).
    refresh_statistics(op.get_bind())


def upgrade() -> None:
    _cell_index([*_BEFORE, "lat", "lon"])


def downgrade() -> None:
    _cell_index(_BEFORE)
