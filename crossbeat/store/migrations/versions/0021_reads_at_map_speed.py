"""Reads at map speed: the spatial index of live incidents and local times (issue #8).

* SQLite: the R*Tree ``incidents_rtree`` of live incidents with a point, its triggers
  (every write keeps it in step), filled from the stored rows
  (:mod:`crossbeat.store.spatial`); PostgreSQL: the partial GiST index
  ``ix_incidents_live_geom`` on live rows.
* ``incidents.occurred_local``: ``occurred_from`` in the owner agency's time zone,
  ``YYYY-MM-DDTHH`` (local months, days and hours are its prefixes), derived with the
  materialised sensitivity flags (:func:`crossbeat.sharing.flags.refresh`); every row's
  ``sens_rules`` is cleared here so that the first read (or ``crossbeat ingest``)
  derives it before anything is served from it.
* ``ix_incidents_live_agency_local``: local-time series as a ``GROUP BY`` on an index
  of live rows.
* ``ix_incidents_live_agency_h3_7`` and ``_h3_9`` (migration 0014) now cover the
  compiled counts by cell (category, flags and the publication times as well): hexagon
  tiles and counts by cell read the index, not the rows.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crossbeat.store.spatial import create_spatial_index, drop_spatial_index

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("withdrawn_at IS NULL")
_COUNTED = [
    "call_category", "crime_against", "sens_served", "occurred_from", "occurred_to",
    "reported_at", "created_at",
]  # fmt: skip


def _cell_indexes(counted: list[str]) -> None:
    for cell in ("h3_9", "h3_7"):
        name = f"ix_incidents_live_agency_{cell}"
        op.drop_index(name, table_name="incidents")
        op.create_index(
            name,
            "incidents",
            ["agency_id", cell, *counted],
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("occurred_local", sa.String(length=13), nullable=True))
    op.execute("UPDATE incidents SET sens_rules = NULL")
    op.create_index(
        "ix_incidents_live_agency_local",
        "incidents",
        ["agency_id", "occurred_local", "call_category"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    _cell_indexes(_COUNTED)
    create_spatial_index(op.get_bind())


def downgrade() -> None:
    drop_spatial_index(op.get_bind())
    _cell_indexes(["call_category"])
    op.drop_index("ix_incidents_live_agency_local", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("occurred_local")
