"""Audit log tables (SQLAlchemy Core), registered on the shared store metadata.

Created by migration ``0003_audit``. ``audit_events`` and ``audit_tree_heads`` are
append-only (database triggers refuse UPDATE and DELETE); ``audit_event_owners`` is an
index from owner agency to event, checked against the hashed ``owner_agencies`` by
``verify``; ``audit_head`` is the one-row chain tip that appenders lock.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from crossbeat.store.schema import JsonType, UTCDateTime, metadata

SeqType = BigInteger().with_variant(Integer(), "sqlite")

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("actor_agency", String(64)),
    Column("source_ip", String(45)),
    Column("action", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("purpose", Text),
    Column("resource_type", String(64)),
    Column("owner_agencies", JsonType, nullable=False),
    Column("record_ids", JsonType, nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("details", JsonType, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
    Index("ix_audit_events_actor", "actor", "seq"),
    Index("ix_audit_events_actor_agency", "actor_agency", "seq"),
    Index("ix_audit_events_occurred_at", "occurred_at"),
)

# Owner agency -> event, so that "every access to my agency's data" is an index lookup
# on both dialects. Derived from audit_events.owner_agencies; verify checks it matches.
audit_event_owners = Table(
    "audit_event_owners",
    metadata,
    Column("agency_id", String(64), primary_key=True),
    Column("seq", SeqType, primary_key=True, autoincrement=False),
)

# The chain tip: size, last entry hash and Merkle frontier. One row (id = 1); every
# appender updates it first, which serialises appends on SQLite and PostgreSQL alike.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", SeqType, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("frontier", JsonType, nullable=False),
)

# Signed tree heads (checkpoints), numbered 1, 2, 3 ... with the number signed, so a
# deleted or re-ordered head shows. ``frontier`` is not signed: it is checked by folding
# it to the signed root, and lets the next checkpoint verify only the new events.
audit_tree_heads = Table(
    "audit_tree_heads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", SeqType, nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("signed_at", UTCDateTime, nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", Text, nullable=False),
    Column("frontier", JsonType, nullable=False),
)

# Public (anonymous) reads being counted before they become audit events (issue #7,
# finding 9): one row per time window, owner agency, action, resource and client address,
# turned into one aggregated event when the window has closed
# (:mod:`crossbeat.audit.public_reads`). Not append-only: it is a counter.
public_read_tallies = Table(
    "public_read_tallies",
    metadata,
    Column("window_start", UTCDateTime, primary_key=True),
    Column("owner_id", String(64), primary_key=True),  # "" when the read touched no owner
    Column("action", String(32), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("source_ip", String(45), primary_key=True),  # "" when unknown
    Column("requests", Integer, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
)
