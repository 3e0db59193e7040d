"""The live event log, field reports, idempotency keys, bulletins and upload jobs (issue #10).

* ``live_events``: one row per incident or bulletin change, with a monotonic id that is
  the live stream's resumable cursor (``Last-Event-ID``);
* ``field_reports``: the sealed raw body of each incident reported from a phone, so an
  update is normalised again through the same path;
* ``idempotency_keys``: the stored response of each ``Idempotency-Key`` of an agency;
* ``bulletins`` and ``bulletin_recipients``: interagency notices and their
  acknowledgements;
* ``ingest_jobs``: uploads ingested in the background, persisted so a restart resumes
  them.

Revision ID: 0018
Revises: 0016_tile_generation
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0018"
down_revision: str | None = "0016_tile_generation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "live_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("agency_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("public_id", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_live_events_created_at", "live_events", ["created_at"])
    op.create_table(
        "field_reports",
        sa.Column("incident_id", sa.String(36), primary_key=True),
        sa.Column("agency_id", sa.String(64), sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("row_number", sa.Integer, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("codec", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(64)),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("agency_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(36), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("response", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "bulletins",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agency_id", sa.String(64), sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("anchor", JSON, nullable=False),
        sa.Column("incident_ids", JSON, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS),
    )
    op.create_index("ix_bulletins_agency_id", "bulletins", ["agency_id"])
    op.create_table(
        "bulletin_recipients",
        sa.Column("bulletin_id", sa.String(36), sa.ForeignKey("bulletins.id"), primary_key=True),
        sa.Column("agency_id", sa.String(64), primary_key=True),
        sa.Column("acknowledged_at", TS),
        sa.Column("acknowledged_by", sa.Text),
    )
    op.create_index("ix_bulletin_recipients_agency_id", "bulletin_recipients", ["agency_id"])
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agency_id", sa.String(64), sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("profile_name", sa.Text, nullable=False),
        sa.Column("profile_text", sa.Text, nullable=False),
        sa.Column("file_path", sa.Text, nullable=False),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", JSON),
        sa.Column("error", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_ingest_jobs_agency_id", "ingest_jobs", ["agency_id"])


def downgrade() -> None:
    for name in (
        "ingest_jobs",
        "bulletin_recipients",
        "bulletins",
        "idempotency_keys",
        "field_reports",
        "live_events",
    ):
        op.drop_table(name)
