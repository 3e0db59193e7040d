"""Table definitions (SQLAlchemy Core) shared by SQLite and PostgreSQL.

The schema is created and changed only by the Alembic migrations in
``crossbeat/store/migrations``; this module describes the current shape for queries.
PostgreSQL adds PostGIS ``geom`` columns (generated from lat/lon and GeoJSON) in the
migrations, so QGIS can open the tables directly; they are not declared here because
no query of ours needs them and SQLite has no such column.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (UTC).

    SQLite keeps naive ISO strings; PostgreSQL keeps ``timestamptz``. Naive input is
    refused: the ingest converts every local time to UTC before it reaches the store.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive UTC for SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; convert it to UTC first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """Return the bound-value converter: on SQLite a single step (it runs per value).

        The text is SQLite ``DATETIME``'s storage format, ``YYYY-MM-DD HH:MM:SS.ffffff``,
        exactly what :meth:`process_bind_param` followed by that type's own converter
        gives.
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the store; convert it to UTC first")
            return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """Return the result converter: on SQLite a single step (it runs per value).

        ``datetime.fromisoformat`` reads SQLite ``DATETIME``'s storage format in C, several
        times faster than that type's converter followed by :meth:`process_result_value`
        (page reads convert six times per row; issue #8).
        """
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            found = value if isinstance(value, datetime) else datetime.fromisoformat(value)
            if found.tzinfo is None:
                return found.replace(tzinfo=UTC)
            return found.astimezone(UTC)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


agencies = Table(
    "agencies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("ori", String(16)),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("created_at", UTCDateTime, nullable=False),
)

jurisdictions = Table(
    "jurisdictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    # GeoJSON geometry in WGS84 (Polygon or MultiPolygon). PostgreSQL adds a generated
    # PostGIS column ``geom`` from it.
    Column("geojson", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("id", String(36), primary_key=True),
    # The agency whose export this is; NULL for a multi-agency feed that routes each
    # row to its agency by a column (profile ``agency_column``).
    Column("agency_id", String(64), ForeignKey("agencies.id"), index=True),
    Column("profile_name", Text, nullable=False),
    Column("profile_hash", String(64), nullable=False),
    Column("source_file", Text, nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("file_size", Integer, nullable=False),
    # running | complete | failed
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # Source rows fully processed and committed; a killed run resumes after this row.
    Column("rows_done", Integer, nullable=False, server_default="0"),
    Column("rows", Integer, nullable=False, server_default="0"),
    Column("new", Integer, nullable=False, server_default="0"),
    Column("updated", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("withdrawn", Integer, nullable=False, server_default="0"),
    Column("expunged", Integer, nullable=False, server_default="0"),
    Column("quarantined", Integer, nullable=False, server_default="0"),
    Column("unmapped", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Index("ix_ingest_batches_resume", "agency_id", "file_hash", "profile_hash", "status"),
)

_LIVE = text("withdrawn_at IS NULL")
#: What the compiled counts by H3 cell test and group by, besides the owner and the cell.
_COUNTED = (
    "call_category", "crime_against", "sens_served", "occurred_from", "occurred_to",
    "reported_at", "created_at",
)  # fmt: skip
#: The analysis arrays' index of live rows: the owner and the public id (the order of the
#: arrays), then what their query selects or its rules test (migration 0024a; the stored
#: ``h3_9`` cell of anchored points since 0025a).
ARRAY_COLUMNS = (
    "agency_id", "public_id", "call_category", "sens_served", "occurred_from",
    "occurred_to", "reported_at", "created_at", "lon", "lat", "nibrs_code",
    "crime_against", "location_type", "id", "h3_9", "withdrawn_at",
)  # fmt: skip

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(36), primary_key=True),
    # The id everyone but the owner sees (partners, groups, the public): a random
    # UUID4 drawn when the record is first stored and never changed, so it cannot be
    # derived from the source id (``id`` is a UUIDv5 of agency and source id, and source
    # ids are often sequential case numbers). Added by migration 0012 (issue #7).
    Column("public_id", String(36)),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("source_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    # HMAC-SHA256 of the normalised record (personal data included) under the
    # deployment's fingerprint key (crossbeat.vault.fingerprint); so is raw_hash, of
    # the source row.
    Column("record_hash", String(64), nullable=False),
    # Primary (first) offence, denormalised for filtering; all offences are in
    # incident_offences.
    Column("offence_local_code", Text),
    Column("nibrs_code", String(8)),
    Column("crime_against", String(16)),
    Column("ucr_part1", String(32)),
    Column("unmapped", Boolean, nullable=False),
    # The primary offence's call-for-service category (taxonomy/data/call_categories.csv)
    # when the record is a CAD call that is not an offence; NULL for offences.
    Column("call_category", String(32)),
    Column("occurred_from", UTCDateTime),
    Column("occurred_to", UTCDateTime),
    Column("time_precision", String(16), nullable=False),
    Column("reported_at", UTCDateTime),
    Column("status", Text),
    Column("disposition", Text),
    # When an update feed last set status / disposition (as of the update's own date)
    # and that update's source row (on the same date the later row wins); NULL while
    # they are as the incident's own feed gave them.
    Column("status_at", UTCDateTime),
    Column("status_row", Integer),
    Column("disposition_at", UTCDateTime),
    Column("disposition_row", Integer),
    Column("lat", Float),
    Column("lon", Float),
    Column("location_precision", String(16), nullable=False),
    Column("block_address", Text),
    Column("location_type", String(64)),
    Column("location_type_local", Text),
    Column("h3_7", String(16)),
    Column("h3_9", String(16)),
    Column("h3_11", String(16)),
    Column("sens_sexual", Boolean, nullable=False),
    Column("sens_domestic", Boolean, nullable=False),
    Column("sens_juvenile", Boolean, nullable=False),
    Column("sens_victim_identifying", Boolean, nullable=False),
    Column("sens_informant", Boolean, nullable=False),
    Column("attributes", JsonType),
    # Every flag a reader is protected by, as a bit mask, and the key of the rules that
    # derived it (crossbeat.sharing.flags; migration 0015, issue #8).
    Column("sens_served", Integer),
    Column("sens_rules", String(40)),
    # ``occurred_from`` in the owner agency's time zone, ``YYYY-MM-DDTHH``, derived with
    # the flags (crossbeat.sharing.flags; migration 0021, issue #8): local months, days
    # and hours are its prefixes, grouped on an index of live rows.
    Column("occurred_local", String(13)),
    Column("withdrawn_at", UTCDateTime),
    Column("batch_id", String(36), nullable=False),
    Column("source_file", Text, nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("raw_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # 16 bytes of the keyed hash of the source row and of everything that turned it
    # into this record (crossbeat.ingest.unchanged): a re-ingest finding the same
    # digest skips the row as unchanged. NULL when another path wrote the record
    # (field reports, rows stored before migration 0022, issue #9).
    Column("source_digest", LargeBinary(16)),
    # The incident's child rows as they are in ``incident_offences`` (a JSON array of
    # ``[local_code, nibrs_code, crime_against, ucr_part1, call_category]`` in ``seq``
    # order) and ``incident_jurisdictions`` (the agency ids, sorted, comma-joined),
    # written with them by every write path (crossbeat.store.children; migration 0026b,
    # issue #8), so that a page of records reads them from its own rows: no child read
    # per page, and on PostgreSQL no row-level-security probe per child row.
    Column("offences_json", Text),
    Column("jurisdiction_ids", Text),
    UniqueConstraint("agency_id", "source_id"),
    Index("ix_incidents_agency_occurred", "agency_id", "occurred_from"),
    Index("ix_incidents_occurred", "occurred_from"),
    Index("ix_incidents_h3_9", "h3_9"),
    Index("ix_incidents_nibrs", "nibrs_code"),
    Index("ix_incidents_lat_lon", "lat", "lon"),
    Index("ix_incidents_call_category", "call_category"),
    Index("uq_incidents_public_id", "public_id", unique=True),
    Index("ix_incidents_agency_sens_rules", "agency_id", "sens_rules"),
    # Partial indexes on live rows for the compiled reads (migration 0014, issue #8).
    *(
        Index(name, *cols, sqlite_where=_LIVE, postgresql_where=_LIVE)
        for name, cols in (
            # Covering the compiled counts by cell and category, flags and publication
            # times included, so that a hexagon tile or a count by cell reads the index
            # only (migration 0021, issue #8); and the partial condition's column, without
            # which SQLite does not read them as covering (migration 0027d, issue #12).
            # The h3_9 one ends with the point: a point tile tests its box on the index
            # and reads only the records in the tile (migration 0027f).
            (
                "ix_incidents_live_agency_h3_9",
                ("agency_id", "h3_9", *_COUNTED, "withdrawn_at", "lat", "lon"),
            ),
            ("ix_incidents_live_agency_h3_7", ("agency_id", "h3_7", *_COUNTED, "withdrawn_at")),
            ("ix_incidents_live_agency_occurred", ("agency_id", "occurred_from", "call_category")),
            ("ix_incidents_live_lat_lon", ("lat", "lon")),
            # Local-time series, flags and publication times included, and the partial
            # condition's column: covering for SQLite too (migration 0025b).
            (
                "ix_incidents_live_agency_local",
                ("agency_id", "occurred_local", *_COUNTED, "withdrawn_at"),
            ),
            # One owner's visible incidents as analysis arrays: a range of this index in
            # public-id order, every column selected or tested in it (migration 0024a).
            ("ix_incidents_live_arrays", ARRAY_COLUMNS),
        )
    ),
)

incident_offences = Table(
    "incident_offences",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("local_code", Text, nullable=False),
    Column("local_description", Text),
    Column("scheme", String(64)),
    Column("crosswalk_version", String(32)),
    Column("nibrs_code", String(8)),
    Column("crime_against", String(16)),
    Column("ucr_part1", String(32)),
    # exact | broader | narrower | approximate; NULL = unmapped
    Column("match", String(16)),
    # A call-for-service category instead of an offence (nibrs_code is then NULL).
    Column("call_category", String(32)),
    Index("ix_incident_offences_nibrs", "nibrs_code"),
)

incident_jurisdictions = Table(
    "incident_jurisdictions",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agency_id", String(64), ForeignKey("agencies.id"), primary_key=True),
    # polygon: the point lies inside one of the agency's jurisdiction polygons;
    # reporter: the agency reported it but no polygon of it contains the point.
    Column("basis", String(16), nullable=False),
    Index("ix_incident_jurisdictions_agency", "agency_id"),
)

# Named area layers of an agency below its jurisdiction: precincts, districts, beats,
# sectors, neighbourhoods, wards (crossbeat.areas). A layer's name is unique per agency.
area_layers = Table(
    "area_layers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("name", String(40), nullable=False),
    # precinct | district | beat | sector | neighbourhood | ward | borough | zone | other
    Column("kind", String(32), nullable=False),
    # The feature property the area names came from, and the file they were read from.
    Column("name_field", Text),
    Column("source_file", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("agency_id", "name"),
)

# One named polygon of a layer. PostgreSQL adds a generated PostGIS column ``geom``.
areas = Table(
    "areas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "layer_id",
        Integer,
        ForeignKey("area_layers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", Text, nullable=False),
    # GeoJSON geometry in WGS84 (Polygon or MultiPolygon).
    Column("geojson", Text, nullable=False),
    UniqueConstraint("layer_id", "name"),
)

# Every area (of every layer) whose polygon contains an incident's point; derived at
# ingest and recomputed when a layer changes.
incident_areas = Table(
    "incident_areas",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("area_id", Integer, ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_incident_areas_area", "area_id"),
)

# Personal data, held apart. Each field is stored as bytes through a codec:
# ``aesgcm-v1`` = AES-256-GCM under the agency's data key (crossbeat.vault), the only
# one written; legacy ``plain`` = UTF-8 JSON, read until `crossbeat keys rotate`.
incident_personal = Table(
    "incident_personal",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("codec", String(32), nullable=False),
    Column("key_id", String(64)),
    Column("full_address", LargeBinary),
    Column("narrative", LargeBinary),
    Column("persons", LargeBinary),
    Column("updated_at", UTCDateTime, nullable=False),
)

incident_versions = Table(
    "incident_versions",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("record_hash", String(64), nullable=False),
    # The superseded shareable record (row + offences + jurisdictions), never
    # personal data.
    Column("snapshot", JsonType, nullable=False),
    Column("batch_id", String(36)),
    Column("superseded_at", UTCDateTime, nullable=False),
)

# Cross-agency duplicates (issue #11): two incidents of different agencies that are the
# same event. Linked, never deleted; analyses count a linked group once. ``id_a`` <
# ``id_b`` (internal ids); the public ids travel along so that a partner's view, which
# shows public ids, can be matched without reading the incidents again.
duplicate_links = Table(
    "duplicate_links",
    metadata,
    Column("id_a", String(36), ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("id_b", String(36), ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("public_a", String(36), nullable=False),
    Column("public_b", String(36), nullable=False),
    Column("probability", Float, nullable=False),
    Column("reasons", JsonType, nullable=False),
    Column("params", JsonType, nullable=False),
    Column("linked_by", String(64), nullable=False),
    Column("linked_at", UTCDateTime, nullable=False),
    Index("ix_duplicate_links_b", "id_b"),
)

# Expunged records leave only this tombstone, so that re-ingesting an old export
# cannot bring them back.
expunged_records = Table(
    "expunged_records",
    metadata,
    Column("agency_id", String(64), ForeignKey("agencies.id"), primary_key=True),
    Column("source_id", Text, primary_key=True),
    Column("incident_id", String(36), nullable=False),
    Column("expunged_at", UTCDateTime, nullable=False),
    Column("reason", Text),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL when a multi-agency feed's row names no known agency.
    Column("agency_id", String(64), ForeignKey("agencies.id")),
    Column("batch_id", String(36), nullable=False),
    Column("profile_name", Text, nullable=False),
    Column("source_file", Text, nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("row_number", Integer, nullable=False),
    # The raw record exactly as read (field name -> string value; an unparsable line
    # under "_raw"), as JSON sealed with AES-256-GCM under the owning agency's data
    # key, or the platform key when the agency is unknown (crossbeat.vault.quarantine).
    Column("raw", LargeBinary, nullable=False),
    # Codec of ``raw`` (``aesgcm-v1``) and the data key it is sealed under.
    Column("codec", String(32), nullable=False),
    Column("key_id", String(64)),
    # Readable on purpose: each names a column and may quote a bad value, but never
    # the value of a personal column (crossbeat.ingest.normalise.withhold_personal).
    Column("reasons", JsonType, nullable=False),
    # open | resolved | dismissed
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("incident_id", String(36)),
    # A source row is quarantined once, whichever profile read it.
    UniqueConstraint("file_hash", "row_number"),
    Index("ix_quarantine_agency_status", "agency_id", "status"),
    # Key rotation and ``crossbeat keys status`` look rows up by agency and key.
    Index("ix_quarantine_agency_key", "agency_id", "key_id"),
)

# Forecasting (issue #13): every forecast's model card, so it can be reproduced and
# audited; patrol plans name the card they were planned from; dosage is the time
# officers logged in each box.
model_cards = Table(
    "model_cards",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("category", Text, nullable=False),
    Column("model", String(64), nullable=False),
    Column("params", JsonType, nullable=False),
    Column("grid", JsonType, nullable=False),
    Column("training_from", UTCDateTime),
    Column("training_to", UTCDateTime, nullable=False),
    Column("window_from", UTCDateTime, nullable=False),
    Column("window_to", UTCDateTime, nullable=False),
    # Counts per owner and a SHA-256 of the arrays the model was fitted on.
    Column("data_snapshot", JsonType, nullable=False),
    Column("backtest", JsonType, nullable=False),
    Column("accountability", JsonType, nullable=False),
    # The flagged cells with their expected counts (the forecast itself).
    Column("forecast", JsonType, nullable=False),
    Index("ix_model_cards_agency_created", "agency_id", "created_at"),
)

patrol_plans = Table(
    "patrol_plans",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("model_card_id", String(36), ForeignKey("model_cards.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("shift_start", UTCDateTime, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("plan", JsonType, nullable=False),
    Index("ix_patrol_plans_shift", "shift_start"),
)

dosage_logs = Table(
    "dosage_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency_id", String(64), ForeignKey("agencies.id"), nullable=False),
    Column("plan_id", String(36), ForeignKey("patrol_plans.id")),
    Column("cell", BigInteger, nullable=False),
    Column("unit", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("minutes", Float, nullable=False),
    Column("logged_by", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_dosage_logs_plan_cell", "plan_id", "cell"),
)

#: One stored road network per agency (migration 0024e): its nodes (WGS84) and directed
#: segments (metres; ``reverse_cost`` -1, one row per direction, as pgRouting reads them).
road_networks = Table(
    "road_networks",
    metadata,
    Column("agency_id", String(64), ForeignKey("agencies.id"), primary_key=True),
    Column("source", Text, nullable=False),
    Column("nodes", Integer, nullable=False),
    Column("edges", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
)

road_nodes = Table(
    "road_nodes",
    metadata,
    Column("agency_id", String(64), ForeignKey("road_networks.agency_id"), primary_key=True),
    Column("node", BigInteger, primary_key=True, autoincrement=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
)

road_edges = Table(
    "road_edges",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("agency_id", String(64), ForeignKey("road_networks.agency_id"), nullable=False),
    Column("source", BigInteger, nullable=False),
    Column("target", BigInteger, nullable=False),
    Column("cost", Float, nullable=False),
    Column("reverse_cost", Float, nullable=False),
    Index("ix_road_edges_agency_id", "agency_id"),
)

#: Each agency's loaded address file (migration 0027e, issue #12) and its address points
#: (WGS84), which the public map's address lookup reads (:mod:`crossbeat.gazetteer`).
gazetteers = Table(
    "gazetteers",
    metadata,
    Column("agency_id", String(64), ForeignKey("agencies.id"), primary_key=True),
    Column("source", Text, nullable=False),
    Column("addresses", Integer, nullable=False),
    Column("streets", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
)

address_points = Table(
    "address_points",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("agency_id", String(64), ForeignKey("gazetteers.agency_id"), nullable=False),
    Column("street_key", String(200), nullable=False),
    Column("number", Integer),
    Column("house", String(32), nullable=False),
    Column("street", String(200), nullable=False),
    Column("locality", String(100), nullable=False),
    Column("postcode", String(20), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Index("ix_address_points_street_key_number", "street_key", "number"),
    Index("ix_address_points_agency_id", "agency_id"),
)

#: The crosswalk folder of each local offence scheme the ingest used (migration 0015):
#: reads re-derive the served sensitivity flags when one of these files changes.
crosswalk_sources = Table(
    "crosswalk_sources",
    metadata,
    Column("scheme", String(64), primary_key=True),
    Column("folder", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The data generation (issue #8): one row (id = 1) whose counter goes up in the same
# transaction as every audited change (crossbeat.audit.log appends a change event, so
# ingest chunks, field reports, withdrawals, agreement and public-policy changes all
# count). Vector tile ETags include it, so a cached tile is never served after a write.
data_generation = Table(
    "data_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
)


#: The live event log (migration 0018, issue #10): one row per change of an incident or
#: bulletin, appended in the change's transaction. ``id`` is the live stream's cursor;
#: appenders take a lock so ids are given in commit order (:mod:`crossbeat.store.events`).
live_events = Table(
    "live_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    # incident.created | incident.updated | incident.withdrawn | bulletin.created |
    # bulletin.acknowledged
    Column("kind", String(32), nullable=False),
    # The incident's owner, or the bulletin's sender.
    Column("agency_id", String(64), nullable=False),
    # The incident's id (the owner's), or the bulletin's.
    Column("subject_id", String(64), nullable=False),
    Column("public_id", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_live_events_created_at", "created_at"),
)


#: Rate-limit counters shared by the service's workers (migration 0023, issue #10): the
#: count of a key's current fixed window and when it ends (epoch seconds), kept by
#: :class:`crossbeat.store.ratelimits.DatabaseLimitStorage`.
rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_rate_limit_counters_expires_at", "expires_at"),
)
