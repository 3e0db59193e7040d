"""Calls for service: the call category of an incident and of each offence (issue #6).

A CAD feed's call types that are not offences (alarm, prowler, welfare check, traffic
stop ...) are mapped by a crosswalk to a call-for-service category instead of a NIBRS
offence. ``incident_offences.call_category`` holds it per offence and
``incidents.call_category`` for the primary offence, as the other offence columns
are, so that reads can include or exclude calls for service. NULL for offences.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD/DROP COLUMN on both dialects (SQLite >= 3.35): no
    # table copy, so triggers and the PostGIS generated column stay as they are.
    op.add_column("incidents", sa.Column("call_category", sa.String(32), nullable=True))
    op.add_column("incident_offences", sa.Column("call_category", sa.String(32), nullable=True))
    op.create_index("ix_incidents_call_category", "incidents", ["call_category"])


def downgrade() -> None:
    op.drop_index("ix_incidents_call_category", table_name="incidents")
    op.drop_column("incident_offences", "call_category")
    op.drop_column("incidents", "call_category")
