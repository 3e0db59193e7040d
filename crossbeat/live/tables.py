"""Tables of field reports, idempotency keys, bulletins and upload jobs (migration 0018).

Registered on the shared store metadata; ``live_events`` is the store's own
(:mod:`crossbeat.store.events`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from crossbeat.store.schema import JsonType, UTCDateTime, metadata

#: The raw body of each incident reported from the field, sealed under the agency's
#: data key like a quarantined row (it may hold a narrative), so that an update can be
#: merged into it and normalised again through the ingest's path.
field_reports = Table(
    "field_reports",
    metadata,
    Column("incident_id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("codec", String(32), nullable=False),
    Column("key_id", String(64)),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: The response to each ``Idempotency-Key`` an agency sent, with the hash of the request
#: it answered: a retry gets the same response, another request with the key a 422.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("agency_id", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("incident_id", String(36), nullable=False),
    Column("status", Integer, nullable=False),
    Column("response", JsonType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

#: Interagency bulletins: be-on-the-lookout, series warning, officer-safety notice.
bulletins = Table(
    "bulletins",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    # bolo | series | officer_safety
    Column("kind", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    # {"type": "point", "lat":, "lon":} | {"type": "area", "geometry": GeoJSON}
    # | {"type": "incidents"}
    Column("anchor", JsonType, nullable=False),
    # The referenced incidents' stored ids (each checked through the sender's policy).
    Column("incident_ids", JsonType, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Index("ix_bulletins_agency_id", "agency_id"),
)

#: Who a bulletin is addressed to (groups are expanded when it is sent) and who
#: acknowledged it.
bulletin_recipients = Table(
    "bulletin_recipients",
    metadata,
    Column("bulletin_id", String(36), ForeignKey("bulletins.id"), primary_key=True),
    Column("agency_id", String(64), primary_key=True),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", Text),
    Index("ix_bulletin_recipients_agency_id", "agency_id"),
)

#: Uploaded files ingested in the background; a job left ``queued`` or ``running`` by a
#: stopped server is resumed when the next one starts.
ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("profile_name", Text, nullable=False),
    Column("profile_text", Text, nullable=False),
    Column("file_path", Text, nullable=False),
    Column("file_size", BigInteger, nullable=False),
    # queued | running | complete | failed
    Column("status", String(16), nullable=False),
    Column("summary", JsonType),
    Column("error", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_ingest_jobs_agency_id", "agency_id"),
)
