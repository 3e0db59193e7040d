"""Partial indexes on live (not withdrawn) incidents for the compiled reads (issue #8).

Every read filters ``withdrawn_at IS NULL`` (:func:`crossbeat.sharing.policy.live`) and
almost every one filters by owner agency. These indexes hold only live rows:

* ``(agency_id, h3_9, call_category)`` and ``(agency_id, h3_7, call_category)``: a
  hexagon ``GROUP BY`` of an owner's records reads the index alone (covering, with the
  default "offences, not calls for service" filter), never the table;
* ``(agency_id, occurred_from, call_category)``: time series and ``since``/``until``;
* ``(lat, lon)``: viewport pages by bounding box.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: name -> columns; each index holds only rows with ``withdrawn_at IS NULL``.
LIVE_INDEXES: dict[str, list[str]] = {
    "ix_incidents_live_agency_h3_9": ["agency_id", "h3_9", "call_category"],
    "ix_incidents_live_agency_h3_7": ["agency_id", "h3_7", "call_category"],
    "ix_incidents_live_agency_occurred": ["agency_id", "occurred_from", "call_category"],
    "ix_incidents_live_lat_lon": ["lat", "lon"],
}


def upgrade() -> None:
    live = sa.text("withdrawn_at IS NULL")
    for name, columns in LIVE_INDEXES.items():
        op.create_index(
            name, "incidents", columns, unique=False, sqlite_where=live, postgresql_where=live
        )


def downgrade() -> None:
    for name in LIVE_INDEXES:
        op.drop_index(name, table_name="incidents")
