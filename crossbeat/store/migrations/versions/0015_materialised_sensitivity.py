"""Sensitivity flags materialised with the version of the rules that derived them (issue #8).

* ``incidents.sens_served``: every flag a reader is protected by (stored flags, flags
  implied by each NIBRS code, by the current crosswalk of each local code, and by the
  keyword and narrative rules on the local codes, descriptions and kept attributes),
  as a bit mask (:data:`crossbeat.sharing.flags.FLAG_BITS`);
* ``incidents.sens_rules``: the key of the rules that derived it
  (:func:`crossbeat.sharing.flags.current_rules`); NULL until first derived;
* ``ix_incidents_agency_sens_rules``: finds an owner's stale rows by index seeks;
* ``crosswalk_sources``: the crosswalk folder of each local offence scheme the ingest
  used, so that reads can tell when an agency's crosswalk file changed.

Revision ID: 0015_materialised_sensitivity
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_materialised_sensitivity"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "crossbeat_app"


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("sens_served", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sens_rules", sa.String(length=40), nullable=True))
    op.create_index(
        "ix_incidents_agency_sens_rules", "incidents", ["agency_id", "sens_rules"], unique=False
    )
    op.create_table(
        "crosswalk_sources",
        sa.Column("scheme", sa.String(length=64), primary_key=True),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Reads look the folders up under row-level security (crossbeat.sharing.rls).
        op.execute(f"GRANT SELECT ON crosswalk_sources TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table("crosswalk_sources")
    op.drop_index("ix_incidents_agency_sens_rules", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("sens_rules")
        batch.drop_column("sens_served")
