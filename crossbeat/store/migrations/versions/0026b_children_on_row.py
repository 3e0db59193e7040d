"""Offences and jurisdictions kept on the incident row for pages of records (issue #8).

Adds ``incidents.offences_json`` and ``incidents.jurisdiction_ids`` (see
:mod:`crossbeat.store.children`) and fills them from ``incident_offences`` and
``incident_jurisdictions`` in one statement. A viewport page then reads its records'
offences and jurisdictions from its own rows: no child read per page, and on
PostgreSQL no row-level-security probe of ``incidents`` per child row.

Revision ID: 0026b
Revises: 0025b
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026b"
down_revision: str | None = "0025b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: The backfill as of this revision (``crossbeat.store.children.refresh_children``).
_PG = (
    "UPDATE incidents SET offences_json = (SELECT coalesce(json_agg(json_build_array("
    "o.local_code, o.nibrs_code, o.crime_against, o.ucr_part1, o.call_category) "
    "ORDER BY o.seq)::text, '[]') FROM incident_offences o WHERE o.incident_id = incidents.id), "
    "jurisdiction_ids = (SELECT coalesce(string_agg(j.agency_id, ',' ORDER BY j.agency_id), '') "
    "FROM incident_jurisdictions j WHERE j.incident_id = incidents.id)"
)
_SQLITE = (
    "UPDATE incidents SET offences_json = (SELECT json_group_array(json(x)) FROM (SELECT "
    "json_array(o.local_code, o.nibrs_code, o.crime_against, o.ucr_part1, o.call_category) "
    "AS x FROM incident_offences o WHERE o.incident_id = incidents.id ORDER BY o.seq)), "
    "jurisdiction_ids = (SELECT coalesce(group_concat(a, ','), '') FROM (SELECT j.agency_id "
    "AS a FROM incident_jurisdictions j WHERE j.incident_id = incidents.id ORDER BY a))"
)


def upgrade() -> None:
    op.add_column("incidents", sa.Column("offences_json", sa.Text(), nullable=True))
    op.add_column("incidents", sa.Column("jurisdiction_ids", sa.Text(), nullable=True))
    op.execute(_PG if op.get_bind().dialect.name == "postgresql" else _SQLITE)


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both (SQLite >= 3.35): a batch copy of the table
    # would drop the R*Tree's triggers.
    op.execute("ALTER TABLE incidents DROP COLUMN jurisdiction_ids")
    op.execute("ALTER TABLE incidents DROP COLUMN offences_json")
