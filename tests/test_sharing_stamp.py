"""A governed read's fixed costs: its probes in one statement, its audit in one (issue #8).

:func:`crossbeat.sharing.stamp.read_stamp` reads in one statement what a read used to
ask in four (generation, crosswalk folders, the jurisdictions' cache key, area layers);
it must answer exactly what those queries answer, in every state. A viewport read then
makes a bounded number of statements, and on PostgreSQL appends its audit events in
one, leaving a chain that verifies. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select, text

from crossbeat.audit.verify import verify
from crossbeat.clock import FrozenClock
from crossbeat.sharing.flags import current_rules
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.stamp import CELL_INDEXES, read_stamp
from crossbeat.store import generation
from crossbeat.store.schema import area_layers, crosswalk_sources, jurisdictions
from tests.sharing_support import NOW, Inc, insert_incidents, setup_agencies

OWNER = Viewer.user("u-a", "citya", ["analyst"])


@pytest.fixture
def world(store):
    store.clock = FrozenClock(NOW)  # before any event: the chain's times never go back
    setup_agencies(store)
    population = [
        Inc("citya", f"a{i}", 45.53, -122.66 + i * 0.001, ["220"], NOW - timedelta(days=10))
        for i in range(6)
    ]
    insert_incidents(store, population)
    return store


def _separately(conn):
    """What the four separate queries a read used to make answer."""
    j = jurisdictions.c
    c = crosswalk_sources.c
    sources = tuple(sorted(tuple(r) for r in conn.execute(select(c.scheme, c.folder))))
    stamp = conn.execute(select(func.count(), func.max(j.id), func.max(j.created_at))).one()
    layers = conn.execute(select(func.count()).select_from(area_layers)).scalar() > 0
    return generation.current(conn), sources, tuple(stamp), layers


def _stamped(conn):
    s = read_stamp(conn)
    return s.generation, s.sources, s.jurisdictions, s.layers


def test_the_stamp_answers_what_the_separate_queries_answer(world, tmp_path):
    with world.begin() as conn:
        assert _stamped(conn) == _separately(conn)
        assert read_stamp(conn).wrote is False
        assert read_stamp(conn).sources == ()
    with world.begin() as conn:
        generation.bump(conn)
        # A transaction that has written says so (it then keeps no plan inputs).
        assert read_stamp(conn).wrote is True
        for scheme in ("zeta", "alpha"):
            conn.execute(
                insert(crosswalk_sources).values(
                    scheme=scheme, folder=str(tmp_path / scheme), updated_at=NOW
                )
            )
        conn.execute(
            insert(area_layers).values(
                agency_id="citya",
                name="beats",
                kind="beat",
                source_file="beats.geojson",
                created_at=NOW,
                updated_at=NOW,
            )  # fmt: skip
        )
    with world.begin() as conn:
        stamped = _stamped(conn)
        assert stamped == _separately(conn)
        assert stamped[1] == (("alpha", str(tmp_path / "alpha")), ("zeta", str(tmp_path / "zeta")))
        assert stamped[3] is True
        # The crosswalk folders as stamped give the rules' key the store's query gives.
        assert current_rules(conn, read_stamp(conn).sources).key == current_rules(conn).key


def test_the_stamp_says_which_cell_indexes_a_tile_may_name(world):
    """SQLite: the cell indexes present in the read's own schema; PostgreSQL: none named."""
    postgres = world.engine.dialect.name == "postgresql"
    with world.begin() as conn:
        assert read_stamp(conn).cell_indexes == (
            frozenset() if postgres else frozenset(CELL_INDEXES.values())
        )
    if postgres:
        return
    with world.begin() as conn:
        # A first load drops secondary indexes until it ends: its transaction sees them gone
        # (a write first, so that pysqlite has opened the transaction the drop is part of).
        generation.bump(conn)
        conn.execute(text(f"DROP INDEX {CELL_INDEXES['h3_9']}"))
        assert read_stamp(conn).cell_indexes == {CELL_INDEXES["h3_7"]}
        conn.rollback()
    with world.begin() as conn:
        assert read_stamp(conn).cell_indexes == frozenset(CELL_INDEXES.values())


def test_a_viewport_read_makes_few_statements_and_one_audit_append(world):
    read_incidents(world, OWNER)  # warms the plan inputs and the anchor index
    statements: list[str] = []

    def log(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(world.engine, "before_cursor_execute", log)
    try:
        got = read_incidents(
            world, OWNER, ReadRequest(bbox=(-122.7, 45.5, -122.6, 45.6), limit=5000)
        )
    finally:
        event.remove(world.engine, "before_cursor_execute", log)
    assert len(got.records) == 6
    postgres = world.engine.dialect.name == "postgresql"
    # The stamp, the stale-flag probe, the page, the audit (the tip's lock, then the
    # append); on PostgreSQL also row-level security on and off; nothing else.
    appends = [s for s in statements if "INSERT INTO audit_events" in s]
    if postgres:
        assert len(statements) == 7, statements
        assert len(appends) == 1 and "audit_event_owners" in appends[0]
    else:
        assert len(statements) == 7, statements
    report = verify(world)
    assert report.ok, report.problems
