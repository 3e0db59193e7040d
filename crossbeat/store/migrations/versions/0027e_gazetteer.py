"""Address points per agency, for the public map's address lookup (issue #12).

``gazetteers`` holds each agency's loaded address file (its name and counts) and
``address_points`` its points (house number, street as given and as compared, locality,
postcode, WGS84). :mod:`crossbeat.gazetteer` loads and reads them; no incident data is
involved.

Revision ID: 0027e
Revises: 0027d
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027e"
down_revision: str | None = "0027d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gazetteers",
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("addresses", sa.Integer(), nullable=False),
        sa.Column("streets", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_gazetteers_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("agency_id", name=op.f("pk_gazetteers")),
    )
    op.create_table(
        "address_points",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("street_key", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("house", sa.String(32), nullable=False),
        sa.Column("street", sa.String(200), nullable=False),
        sa.Column("locality", sa.String(100), nullable=False),
        sa.Column("postcode", sa.String(20), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["gazetteers.agency_id"],
            name=op.f("fk_address_points_agency_id_gazetteers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_points")),
    )
    op.create_index(
        "ix_address_points_street_key_number", "address_points", ["street_key", "number"]
    )
    op.create_index("ix_address_points_agency_id", "address_points", ["agency_id"])


def downgrade() -> None:
    op.drop_index("ix_address_points_agency_id", table_name="address_points")
    op.drop_index("ix_address_points_street_key_number", table_name="address_points")
    op.drop_table("address_points")
    op.drop_table("gazetteers")
