"""Road networks stored per agency, for patrol routes (issue #13).

``road_networks`` holds one network per agency (its source file and counts);
``road_nodes`` its nodes (WGS84) and ``road_edges`` its directed segments (length in
metres; ``reverse_cost`` -1: every row is one direction, as pgRouting reads them). On
PostgreSQL the pgRouting extension is created when the server has it, so routes use
``pgr_dijkstraCostMatrix``; without it (and on SQLite) routes use the in-Python graph.

Revision ID: 0024e
Revises: 0024a
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024e"
down_revision: str | None = "0024a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        available = bind.execute(
            sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pgrouting'")
        ).scalar()
        if available:
            op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
    op.create_table(
        "road_networks",
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("edges", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_road_networks_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("agency_id", name=op.f("pk_road_networks")),
    )
    op.create_table(
        "road_nodes",
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("node", sa.BigInteger(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["road_networks.agency_id"],
            name=op.f("fk_road_nodes_agency_id_road_networks"),
        ),
        sa.PrimaryKeyConstraint("agency_id", "node", name=op.f("pk_road_nodes")),
    )
    op.create_table(
        "road_edges",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("source", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("reverse_cost", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["road_networks.agency_id"],
            name=op.f("fk_road_edges_agency_id_road_networks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_road_edges")),
    )
    op.create_index("ix_road_edges_agency_id", "road_edges", ["agency_id"])


def downgrade() -> None:
    op.drop_index("ix_road_edges_agency_id", table_name="road_edges")
    op.drop_table("road_edges")
    op.drop_table("road_nodes")
    op.drop_table("road_networks")
