"""Area layers below the agency: precincts, districts, beats, neighbourhoods (issue #6).

Adds ``area_layers`` (a named layer of an agency), ``areas`` (its named polygons) and
``incident_areas`` (every area containing an incident), and widens
``sharing_agreements.precision`` for the ``area:LAYER`` precision. On PostgreSQL
``areas`` gets a generated PostGIS ``geom`` column (QGIS opens it directly) and
``incident_areas`` follows its incident under row-level security, like
``incident_jurisdictions``.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "crossbeat_app"
_VIA_INCIDENT = "EXISTS (SELECT 1 FROM incidents i WHERE i.id = incident_id)"


def upgrade() -> None:
    op.create_table(
        "area_layers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name_field", sa.Text(), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_area_layers_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_area_layers")),
        sa.UniqueConstraint("agency_id", "name", name=op.f("uq_area_layers_agency_id_name")),
    )
    op.create_table(
        "areas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("geojson", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["area_layers.id"],
            name=op.f("fk_areas_layer_id_area_layers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_areas")),
        sa.UniqueConstraint("layer_id", "name", name=op.f("uq_areas_layer_id_name")),
    )
    op.create_index(op.f("ix_areas_layer_id"), "areas", ["layer_id"], unique=False)
    op.create_table(
        "incident_areas",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_areas_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["areas.id"],
            name=op.f("fk_incident_areas_area_id_areas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "area_id", name=op.f("pk_incident_areas")),
    )
    op.create_index("ix_incident_areas_area", "incident_areas", ["area_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # SQLite does not enforce VARCHAR lengths; PostgreSQL needs the wider column.
        op.alter_column(
            "sharing_agreements",
            "precision",
            type_=sa.String(length=128),
            existing_type=sa.String(length=16),
            existing_nullable=False,
        )
        op.execute(
            "ALTER TABLE areas ADD COLUMN geom geometry(Geometry, 4326) GENERATED ALWAYS AS "
            "(ST_SetSRID(ST_GeomFromGeoJSON(geojson), 4326)) STORED"
        )
        op.execute("CREATE INDEX ix_areas_geom ON areas USING gist (geom)")
        for table in ("area_layers", "areas"):
            op.execute(f"GRANT SELECT ON {table} TO {APP_ROLE}")
        op.execute(f"GRANT SELECT ON incident_areas TO {APP_ROLE}")
        op.execute("ALTER TABLE incident_areas ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY crossbeat_app_visible ON incident_areas FOR SELECT TO {APP_ROLE} "
            f"USING ({_VIA_INCIDENT})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS crossbeat_app_visible ON incident_areas")
        for table in ("incident_areas", "areas", "area_layers"):
            op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
        op.alter_column(
            "sharing_agreements",
            "precision",
            type_=sa.String(length=16),
            existing_type=sa.String(length=128),
            existing_nullable=False,
        )
    op.drop_index("ix_incident_areas_area", table_name="incident_areas")
    op.drop_table("incident_areas")
    op.drop_index(op.f("ix_areas_layer_id"), table_name="areas")
    op.drop_table("areas")
    op.drop_table("area_layers")
