"""Public incident ids that cannot be derived from the source id; privacy budgets (issue #7).

``incidents.id`` is a UUIDv5 of agency and source id, with the namespace in the source
code, and source ids are often sequential case numbers: anyone could link a published
record to its case number and see the gaps left by suppressed incidents. Everyone but
the owner now sees ``public_id`` instead: a random UUID4 per incident, drawn when the
record is first stored and never changed. Existing incidents get one here.

``privacy_budget`` holds the ε an owner's noisy public counts spent per calendar month
(``crossbeat.sharing.noise``).

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000


def upgrade() -> None:
    op.add_column("incidents", sa.Column("public_id", sa.String(36), nullable=True))
    conn = op.get_bind()
    table = sa.table("incidents", sa.column("id", sa.String), sa.column("public_id", sa.String))
    ids = list(conn.execute(sa.select(table.c.id).where(table.c.public_id.is_(None))).scalars())
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values(public_id=sa.bindparam("b_public_id"))
    )
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        conn.execute(stmt, [{"b_id": i, "b_public_id": str(uuid.uuid4())} for i in chunk])
    op.create_index("uq_incidents_public_id", "incidents", ["public_id"], unique=True)
    op.create_table(
        "privacy_budget",
        sa.Column("agency_id", sa.String(64), sa.ForeignKey("agencies.id"), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("spent", sa.Integer(), nullable=False),
        sa.Column("releases", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("privacy_budget")
    op.drop_index("uq_incidents_public_id", table_name="incidents")
    op.drop_column("incidents", "public_id")
