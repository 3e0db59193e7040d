"""Local-time counts from the index alone: ``ix_incidents_live_agency_local`` covering (issue #8).

The daily, monthly and hourly series are grouped on ``occurred_local`` (migration 0021)
on this partial index of live rows. It held the owner, the local hour and the call
category only, so every count that also tests the materialised flags or the
publication delay (a partner's, the public's) read each counted row from the table.
It now holds what the cell indexes hold (``crime_against``, ``sens_served`` and the
publication times) and ``withdrawn_at``, always NULL here: SQLite reads an index as
covering only when it holds every column the query names, that of the partial index's
condition included (as migration 0024a found). At 100,000 rows a public-style daily
series took 30 ms of CPU instead of 149 ms.

Revision ID: 0025b
Revises: 0024e
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025b"
down_revision: str | None = "0025a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("withdrawn_at IS NULL")
_NAME = "ix_incidents_live_agency_local"
#: The columns of the index (``crossbeat.store.schema``, as of this revision).
_COLUMNS = [
    "agency_id", "occurred_local", "call_category", "crime_against", "sens_served",
    "occurred_from", "occurred_to", "reported_at", "created_at", "withdrawn_at",
]  # fmt: skip
_BEFORE = ["agency_id", "occurred_local", "call_category"]


def _replace(columns: list[str]) -> None:
    op.drop_index(_NAME, table_name="incidents")
    op.create_index(_NAME, "incidents", columns, sqlite_where=_LIVE, postgresql_where=_LIVE)


def upgrade() -> None:
    _replace(_COLUMNS)


def downgrade() -> None:
    _replace(_BEFORE)
