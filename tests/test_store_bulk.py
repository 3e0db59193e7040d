"""Store.bulk_insert stores exactly what an ordinary SQLAlchemy insert stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, select, text

from crossbeat.store.schema import incident_offences, incident_personal, incidents
from tests.agency_support import register_agencies

LOCAL = timezone(timedelta(hours=-7))


def _incident(source_id: str, **over: Any) -> dict[str, Any]:
    row = {
        "id": str(uuid.uuid4()),
        "agency_id": "bulkpd",
        "source_id": source_id,
        "version": 1,
        "record_hash": "a" * 64,
        "offence_local_code": "220",
        "nibrs_code": "220",
        "crime_against": "property",
        "ucr_part1": "burglary",
        "unmapped": False,
        "occurred_from": datetime(2024, 3, 10, 1, 30, tzinfo=LOCAL),
        "occurred_to": datetime(2024, 3, 10, 9, 0, 0, 250, tzinfo=UTC),
        "time_precision": "minute",
        "reported_at": None,
        "status": "open",
        "disposition": None,
        "lat": 45.5,
        "lon": -122.6,
        "location_precision": "exact",
        "block_address": "1100 BLOCK MAIN ST",
        "location_type": None,
        "location_type_local": "Straße",
        "h3_7": "872830828ffffff",
        "h3_9": "8928308280fffff",
        "h3_11": "8b2830828052fff",
        "sens_sexual": True,
        "sens_domestic": False,
        "sens_juvenile": False,
        "sens_victim_identifying": True,
        "sens_informant": False,
        "attributes": {"beat": "7", "note": "ünïcode", "blank": None},
        "withdrawn_at": None,
        "batch_id": "batch",
        "source_file": "export.csv",
        "row_number": 3,
        "raw_hash": "b" * 64,
        "created_at": datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "updated_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    row.update(over)
    return row


def _stored(conn: Any, table: Table, key: str, value: str) -> dict[str, Any]:
    """Return a row as the driver reads it (no SQLAlchemy result processing)."""
    cols = [c.name for c in table.columns if c.name not in (key, "source_id")]
    if conn.dialect.name == "postgresql" and table is incidents:
        cols.append("ST_AsText(geom)")
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = f"SELECT {', '.join(cols)} FROM {table.name} WHERE {key} = {mark}"
    row = conn.exec_driver_sql(sql, (value,)).one()
    return dict(zip(cols, row, strict=True))


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"attributes": None, "lat": None, "lon": None, "occurred_from": None},
        {"unmapped": True, "withdrawn_at": datetime(2025, 5, 1, tzinfo=LOCAL), "attributes": {}},
    ],
    ids=["full", "nulls", "flags"],
)
def test_bulk_insert_stores_what_insert_stores(store, over):
    register_agencies(store, {"bulkpd": "UTC"})
    plain, bulk = _incident("plain", **over), _incident("bulk", **over)
    with store.begin() as conn:
        conn.execute(incidents.insert(), [plain])
        store.bulk_insert(conn, incidents, [bulk])
    with store.connect() as conn:
        assert _stored(conn, incidents, "id", bulk["id"]) == _stored(
            conn, incidents, "id", plain["id"]
        )
        # And it reads back through SQLAlchemy as the same values.
        got = {
            r.source_id: r._asdict()
            for r in conn.execute(select(incidents).where(incidents.c.agency_id == "bulkpd"))
        }
    for name in ("occurred_from", "withdrawn_at", "attributes", "unmapped", "lat"):
        assert got["bulk"][name] == got["plain"][name]
    if over.get("occurred_from", 0) is not None:
        assert got["bulk"]["occurred_from"] == plain["occurred_from"]


def test_bulk_insert_child_tables_and_bytes(store):
    register_agencies(store, {"bulkpd": "UTC"})
    a, b = _incident("a"), _incident("b")
    sealed = bytes(range(256)) + b'\\x00\\\t\n,"'  # bytes that need escaping in COPY
    with store.begin() as conn:
        store.bulk_insert(conn, incidents, [a, b])
        store.bulk_insert(
            conn,
            incident_offences,
            [
                {
                    "incident_id": i["id"],
                    "seq": 0,
                    "local_code": "220",
                    "local_description": 'BURGLARY, "FORCED"\tENTRY\\',
                    "scheme": "code-nibrs",
                    "crosswalk_version": "1",
                    "nibrs_code": "220",
                    "crime_against": "property",
                    "ucr_part1": None,
                    "match": "exact",
                }
                for i in (a, b)
            ],
        )
        store.bulk_insert(
            conn,
            incident_personal,
            [
                {
                    "incident_id": a["id"],
                    "agency_id": "bulkpd",
                    "codec": "aesgcm-v1",
                    "key_id": "k1",
                    "full_address": sealed,
                    "narrative": b"",
                    "persons": None,
                    "updated_at": a["updated_at"],
                }
            ],
        )
    with store.connect() as conn:
        off = conn.execute(
            select(incident_offences.c.local_description).where(
                incident_offences.c.incident_id == b["id"]
            )
        ).scalar_one()
        pers = conn.execute(
            select(incident_personal).where(incident_personal.c.incident_id == a["id"])
        ).one()
    assert off == 'BURGLARY, "FORCED"\tENTRY\\'
    assert bytes(pers.full_address) == sealed
    assert bytes(pers.narrative) == b""
    assert pers.persons is None
    assert pers.updated_at == a["updated_at"]


def test_bulk_binary_columns_store_blobs_and_refuse_text(store):
    register_agencies(store, {"bulkpd": "UTC"})
    rows = [_incident(f"b{i}") for i in range(3)]
    with store.begin() as conn:
        store.bulk_insert(conn, incidents, rows)

    def personal(i: int, value: Any) -> dict[str, Any]:
        return {"incident_id": rows[i]["id"], "agency_id": "bulkpd", "codec": "aesgcm-v1",
                "key_id": "k1", "full_address": value, "narrative": None, "persons": None,
                "updated_at": rows[i]["updated_at"]}  # fmt: skip

    with store.begin() as conn:
        # A column of bytes, and one where a bytearray makes it take the wrapper.
        store.bulk_insert(conn, incident_personal, [personal(0, b"\x00a")])
        store.bulk_insert(conn, incident_personal, [personal(1, bytearray(b"\x00b"))])
    with store.connect() as conn:
        stored = conn.execute(
            text("SELECT full_address FROM incident_personal ORDER BY full_address")
        ).scalars()
        assert [bytes(v) for v in stored] == [b"\x00a", b"\x00b"]
        if store.dialect == "sqlite":
            kinds = conn.execute(
                text("SELECT DISTINCT typeof(full_address) FROM incident_personal")
            )
            assert kinds.scalars().all() == ["blob"]
    # Text is not bytes: refused, as the ordinary insert refuses it, and nothing is stored.
    with pytest.raises(Exception), store.begin() as conn:  # noqa: B017, PT011
        store.bulk_insert(conn, incident_personal, [personal(2, "not sealed")])
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_personal")).scalar_one() == 2


def test_bulk_insert_nothing_and_mismatched_rows(store):
    register_agencies(store, {"bulkpd": "UTC"})
    with store.begin() as conn:
        store.bulk_insert(conn, incidents, [])
    partial = _incident("partial")
    del partial["status"]
    with pytest.raises(KeyError), store.begin() as conn:
        store.bulk_insert(conn, incidents, [_incident("whole"), partial])
    with store.connect() as conn:
        assert conn.execute(select(incidents.c.id)).all() == []


def test_postgres_bulk_insert_under_row_level_security(pg_url, kek):
    """COPY FROM is refused where row-level security applies: the INSERT path is used."""
    from crossbeat.store import open_store

    store = open_store(pg_url, kek=kek)
    register_agencies(store, {"bulkpd": "UTC"})
    role = f"cb_bulk_{uuid.uuid4().hex[:8]}"
    with store.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        conn.execute(text(f"GRANT {role} TO current_user"))
        conn.execute(text(f"GRANT SELECT, INSERT ON incidents TO {role}"))
        conn.execute(
            text(f"CREATE POLICY bulk_insert ON incidents FOR INSERT TO {role} WITH CHECK (true)")
        )
    try:
        row = _incident("rls")
        with store.begin() as conn:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            assert conn.execute(text("SELECT row_security_active('incidents')")).scalar()
            store.bulk_insert(conn, incidents, [row])
        with store.connect() as conn:
            found = conn.execute(select(incidents.c.source_id, text("ST_AsText(geom)"))).all()
        assert found == [("rls", "POINT(-122.6 45.5)")]
    finally:
        with store.begin() as conn:
            conn.execute(text("DROP POLICY bulk_insert ON incidents"))
            conn.execute(text(f"REVOKE ALL ON incidents FROM {role}"))
            conn.execute(text(f"DROP ROLE {role}"))


def test_bulk_insert_many_varied_rows(store):
    """Columns converted once for repeated values (timestamps, flags) stay row-exact."""
    register_agencies(store, {"bulkpd": "UTC"})
    shared = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def rows(prefix: str) -> list[dict[str, Any]]:
        out = []
        for i in range(60):
            out.append(
                _incident(
                    f"{prefix}{i}",
                    unmapped=i % 3 == 0,
                    sens_sexual=i % 2 == 0,
                    sens_juvenile=False,
                    occurred_from=None
                    if i % 7 == 0
                    else datetime(2024, 1, 1 + i % 28, tzinfo=LOCAL),
                    attributes=None if i % 5 == 0 else {"beat": str(i)},
                    lat=None if i % 11 == 0 else 45 + i / 1000,
                    created_at=shared,
                    updated_at=shared if i < 59 else datetime(2025, 6, 2, tzinfo=UTC),
                )
            )
        return out

    plain, bulk = rows("p"), rows("b")
    with store.begin() as conn:
        conn.execute(incidents.insert(), plain)
        store.bulk_insert(conn, incidents, bulk)
    with store.connect() as conn:
        for p, b in zip(plain, bulk, strict=True):
            assert _stored(conn, incidents, "id", b["id"]) == _stored(
                conn, incidents, "id", p["id"]
            )


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 3, 10, 1, 30, tzinfo=LOCAL),
        datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(987, 6, 5, 4, 3, 2, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_sqlite_timestamps_keep_sqlalchemy_storage_format(when):
    """UTCDateTime's one-step SQLite converter writes what DATETIME's own would."""
    from sqlalchemy.dialects import sqlite

    from crossbeat.store.schema import UTCDateTime

    dialect = sqlite.dialect()
    fused = UTCDateTime().bind_processor(dialect)
    standard = sqlite.DATETIME().bind_processor(dialect)
    assert fused is not None and standard is not None
    assert fused(when) == standard(when.astimezone(UTC).replace(tzinfo=None))
    assert fused(None) is None
    with pytest.raises(ValueError, match="naive"):
        fused(datetime(2024, 1, 1))


def test_bulk_writes_enlarges_the_sqlite_page_cache_then_restores_it(sqlite_url, kek):
    from crossbeat.store import open_store

    store = open_store(sqlite_url, kek=kek)
    register_agencies(store, {"bulkpd": "UTC"})
    with store.connect() as conn:
        raw = conn.connection.driver_connection
        before = raw.execute("PRAGMA cache_size").fetchone()[0]
        with store.bulk_writes(conn):
            assert raw.execute("PRAGMA cache_size").fetchone()[0] == -store.BULK_CACHE_KIB
            with conn.begin():
                store.bulk_insert(conn, incidents, [_incident("cached")])
        assert raw.execute("PRAGMA cache_size").fetchone()[0] == before


@pytest.mark.parametrize("count", [0, 1, 3000])
def test_one_of_matches_exactly_the_given_values(store, count):
    register_agencies(store, {"bulkpd": "UTC"})
    stored = [_incident(f"s{i}") for i in range(40)]
    with store.begin() as conn:
        store.bulk_insert(conn, incidents, stored)
    wanted = [r["id"] for r in stored[: min(count, 25)]] + [str(uuid.uuid4()) for _ in range(count)]
    with store.connect() as conn:
        got = conn.execute(
            select(incidents.c.source_id).where(store.one_of(incidents.c.id, wanted))
        ).scalars()
        assert sorted(got) == sorted(r["source_id"] for r in stored[: min(count, 25)])


def test_postgres_bulk_insert_copies_binary_with_the_stored_types(pg_url, kek):
    """The incident tables are copied in binary format, typed from the catalog (issue #9).

    The other tests here check that the values stored are those of an ordinary insert;
    this one that they got there by the binary path, with the types the database holds.
    """
    from crossbeat.store import open_store
    from crossbeat.store.postgres import copy_types

    store = open_store(pg_url, kek=kek)
    with store.connect() as conn:
        for table in (incidents, incident_offences, incident_personal):
            columns = [c.name for c in table.c]
            stored = dict(
                conn.execute(
                    text(
                        "SELECT attname, atttypid FROM pg_attribute WHERE attnum > 0 "
                        "AND attrelid = CAST(:t AS regclass)"
                    ),
                    {"t": table.name},
                ).all()
            )
            assert copy_types(conn, table, columns) == [stored[c] for c in columns]
