"""Audit log: hash-chained events, owner index, chain tip and signed tree heads (#3).

Both dialects get triggers that refuse UPDATE and DELETE on the append-only tables
(defence in depth: ``crossbeat audit verify`` still detects tampering by someone who
drops them) and refuse to shrink the chain tip. PostgreSQL also refuses TRUNCATE and
gets a GIN index for "which events touched record X".

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = ("audit_events", "audit_event_owners", "audit_tree_heads")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _seq() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", _seq(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("actor_agency", sa.String(length=64), nullable=True),
        sa.Column("source_ip", sa.String(length=45), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("resource_type", sa.String(length=64), nullable=True),
        sa.Column("owner_agencies", _json(), nullable=False),
        sa.Column("record_ids", _json(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("entry_hash", name=op.f("uq_audit_events_entry_hash")),
    )
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "seq"])
    op.create_index("ix_audit_events_actor_agency", "audit_events", ["actor_agency", "seq"])
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])
    op.create_table(
        "audit_event_owners",
        sa.Column("agency_id", sa.String(length=64), nullable=False),
        sa.Column("seq", _seq(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("agency_id", "seq", name=op.f("pk_audit_event_owners")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", _seq(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("frontier", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_tree_heads",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tree_size", _seq(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("frontier", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_tree_heads")),
    )
    op.execute(
        f"INSERT INTO audit_head (id, size, last_hash, frontier) VALUES (1, 0, '{'0' * 64}', '[]')"
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_guards()
    else:
        _sqlite_guards()


def _postgres_guards() -> None:
    op.execute(
        """
        CREATE FUNCTION crossbeat_audit_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only: % on % refused',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION crossbeat_audit_head_grows() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'UPDATE' OR NEW.size < OLD.size OR NEW.id <> OLD.id THEN
                RAISE EXCEPTION 'the audit chain tip only grows: % on audit_head refused',
                    TG_OP USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$
        """
    )
    for table in _APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION crossbeat_audit_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION crossbeat_audit_append_only()"
        )
    op.execute(
        "CREATE TRIGGER audit_head_grows BEFORE UPDATE OR DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION crossbeat_audit_head_grows()"
    )
    op.execute(
        "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION crossbeat_audit_append_only()"
    )
    op.execute(
        "CREATE INDEX ix_audit_events_record_ids ON audit_events "
        "USING gin (record_ids jsonb_path_ops)"
    )


def _sqlite_guards() -> None:
    for table in _APPEND_ONLY:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: {verb} on "
                f"{table} refused'); END"
            )
    op.execute(
        "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
        "BEGIN SELECT RAISE(ABORT, 'the audit chain tip only grows: DELETE refused'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_head_grows BEFORE UPDATE ON audit_head "
        "WHEN NEW.size < OLD.size OR NEW.id <> OLD.id "
        "BEGIN SELECT RAISE(ABORT, 'the audit chain tip only grows: UPDATE refused'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_audit_events_record_ids")
        for table in (*_APPEND_ONLY, "audit_head"):
            op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        op.execute("DROP FUNCTION IF EXISTS crossbeat_audit_append_only()")
        op.execute("DROP FUNCTION IF EXISTS crossbeat_audit_head_grows()")
        return
    op.drop_table("audit_tree_heads")
    op.drop_table("audit_head")
    op.drop_table("audit_event_owners")
    op.drop_index("ix_audit_events_occurred_at", table_name="audit_events")
    op.drop_index("ix_audit_events_actor_agency", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_table("audit_events")
