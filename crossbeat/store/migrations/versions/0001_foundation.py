"""Foundation: agencies, jurisdictions, incidents and their history, ingest batches, quarantine.

On PostgreSQL also enables PostGIS and adds generated geometry columns with GiST
indexes, so QGIS can open ``incidents`` and ``jurisdictions`` directly.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "agencies",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ori", sa.String(length=16), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
    )
    op.create_table(
        "expunged_records",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("expunged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_expunged_records_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("agency_id", "source_id", name=op.f("pk_expunged_records")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("offence_local_code", sa.Text(), nullable=True),
        sa.Column("nibrs_code", sa.String(length=8), nullable=True),
        sa.Column("crime_against", sa.String(length=16), nullable=True),
        sa.Column("ucr_part1", sa.String(length=32), nullable=True),
        sa.Column("unmapped", sa.Boolean(), nullable=False),
        sa.Column("occurred_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_precision", sa.String(length=16), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("disposition", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("location_precision", sa.String(length=16), nullable=False),
        sa.Column("block_address", sa.Text(), nullable=True),
        sa.Column("location_type", sa.String(length=64), nullable=True),
        sa.Column("location_type_local", sa.Text(), nullable=True),
        sa.Column("h3_7", sa.String(length=16), nullable=True),
        sa.Column("h3_9", sa.String(length=16), nullable=True),
        sa.Column("h3_11", sa.String(length=16), nullable=True),
        sa.Column("sens_sexual", sa.Boolean(), nullable=False),
        sa.Column("sens_domestic", sa.Boolean(), nullable=False),
        sa.Column("sens_juvenile", sa.Boolean(), nullable=False),
        sa.Column("sens_victim_identifying", sa.Boolean(), nullable=False),
        sa.Column("sens_informant", sa.Boolean(), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("raw_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_incidents_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint(
            "agency_id", "source_id", name=op.f("uq_incidents_agency_id_source_id")
        ),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incidents_agency_occurred", ["agency_id", "occurred_from"], unique=False
        )
        batch_op.create_index("ix_incidents_h3_9", ["h3_9"], unique=False)
        batch_op.create_index("ix_incidents_lat_lon", ["lat", "lon"], unique=False)
        batch_op.create_index("ix_incidents_nibrs", ["nibrs_code"], unique=False)
        batch_op.create_index("ix_incidents_occurred", ["occurred_from"], unique=False)

    op.create_table(
        "ingest_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=True),
        sa.Column("profile_name", sa.Text(), nullable=False),
        sa.Column("profile_hash", sa.String(length=64), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("file_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("new", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("withdrawn", sa.Integer(), server_default="0", nullable=False),
        sa.Column("expunged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("quarantined", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unmapped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_ingest_batches_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_batches")),
    )
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ingest_batches_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(
            "ix_ingest_batches_resume",
            ["agency_id", "file_hash", "profile_hash", "status"],
            unique=False,
        )

    op.create_table(
        "jurisdictions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("geojson", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_jurisdictions_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jurisdictions")),
    )
    with op.batch_alter_table("jurisdictions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jurisdictions_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("profile_name", sa.Text(), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("incident_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_quarantine_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        sa.UniqueConstraint(
            "file_hash",
            "row_number",
            name=op.f("uq_quarantine_file_hash_row_number"),
        ),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_quarantine_agency_status", ["agency_id", "status"], unique=False)
        batch_op.create_index("ix_quarantine_agency_key", ["agency_id", "key_id"], unique=False)

    op.create_table(
        "incident_jurisdictions",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_incident_jurisdictions_agency_id_agencies"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_jurisdictions_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "agency_id", name=op.f("pk_incident_jurisdictions")),
    )
    with op.batch_alter_table("incident_jurisdictions", schema=None) as batch_op:
        batch_op.create_index("ix_incident_jurisdictions_agency", ["agency_id"], unique=False)

    op.create_table(
        "incident_offences",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("local_code", sa.Text(), nullable=False),
        sa.Column("local_description", sa.Text(), nullable=True),
        sa.Column("scheme", sa.String(length=64), nullable=True),
        sa.Column("crosswalk_version", sa.String(length=32), nullable=True),
        sa.Column("nibrs_code", sa.String(length=8), nullable=True),
        sa.Column("crime_against", sa.String(length=16), nullable=True),
        sa.Column("ucr_part1", sa.String(length=32), nullable=True),
        sa.Column("match", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_offences_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "seq", name=op.f("pk_incident_offences")),
    )
    with op.batch_alter_table("incident_offences", schema=None) as batch_op:
        batch_op.create_index("ix_incident_offences_nibrs", ["nibrs_code"], unique=False)

    op.create_table(
        "incident_personal",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("full_address", sa.LargeBinary(), nullable=True),
        sa.Column("narrative", sa.LargeBinary(), nullable=True),
        sa.Column("persons", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_incident_personal_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_personal_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_personal")),
    )
    op.create_table(
        "incident_versions",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "snapshot",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_versions_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "version", name=op.f("pk_incident_versions")),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgis_columns()


def _postgis_columns() -> None:
    op.execute(
        "ALTER TABLE incidents ADD COLUMN geom geometry(Point, 4326) GENERATED ALWAYS AS "
        "(CASE WHEN lat IS NULL OR lon IS NULL THEN NULL "
        "ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END) STORED"
    )
    op.execute("CREATE INDEX ix_incidents_geom ON incidents USING gist (geom)")
    op.execute(
        "ALTER TABLE jurisdictions ADD COLUMN geom geometry(Geometry, 4326) GENERATED ALWAYS AS "
        "(ST_SetSRID(ST_GeomFromGeoJSON(geojson), 4326)) STORED"
    )
    op.execute("CREATE INDEX ix_jurisdictions_geom ON jurisdictions USING gist (geom)")


def downgrade() -> None:
    op.drop_table("incident_versions")
    op.drop_table("incident_personal")
    with op.batch_alter_table("incident_offences", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_offences_nibrs")

    op.drop_table("incident_offences")
    with op.batch_alter_table("incident_jurisdictions", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_jurisdictions_agency")

    op.drop_table("incident_jurisdictions")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_agency_key")
        batch_op.drop_index("ix_quarantine_agency_status")

    op.drop_table("quarantine")
    with op.batch_alter_table("jurisdictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jurisdictions_agency_id"))

    op.drop_table("jurisdictions")
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_batches_resume")
        batch_op.drop_index(batch_op.f("ix_ingest_batches_agency_id"))

    op.drop_table("ingest_batches")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_occurred")
        batch_op.drop_index("ix_incidents_nibrs")
        batch_op.drop_index("ix_incidents_lat_lon")
        batch_op.drop_index("ix_incidents_h3_9")
        batch_op.drop_index("ix_incidents_agency_occurred")

    op.drop_table("incidents")
    op.drop_table("expunged_records")
    op.drop_table("agencies")
