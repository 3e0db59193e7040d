"""PostgreSQL row-level security under the policy: a query that forgot every filter."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, insert, select, text, true
from sqlalchemy.exc import DBAPIError

from crossbeat.sharing import pages, reads
from crossbeat.sharing.policy import ReadPlan, ReadRequest, Viewer
from crossbeat.sharing.rls import PROTECTED_TABLES, policy_status, restricted
from crossbeat.store import open_store
from crossbeat.store.schema import (
    incident_jurisdictions,
    incident_offences,
    incident_personal,
    incident_versions,
    incidents,
)
from tests.sharing_support import NOW, Inc, insert_incidents, setup_agencies

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url, kek):
    """A PostgreSQL store (row-level security is a PostgreSQL feature) with 9 incidents."""
    store = open_store(pg_url, kek=kek)
    setup_agencies(store)
    people = {"full_address": "1 Elm St", "narrative": "n", "persons": []}
    population = [
        Inc(owner, f"{owner}-{i}", 45.53, -122.6 - i * 0.01, ["220"], NOW, personal=people)
        for owner in ("citya", "countyb", "transitc")
        for i in range(3)
    ]
    insert_incidents(store, population)
    with store.begin() as conn:
        conn.execute(
            insert(incident_versions),
            [
                {"incident_id": i.id, "version": 0, "record_hash": "0" * 64,
                 "snapshot": {}, "superseded_at": NOW}
                for i in population
            ],
        )  # fmt: skip
    return store


def _owners(conn, table) -> set[str]:
    if "agency_id" in table.c and table is not incident_jurisdictions:
        return set(conn.execute(select(table.c.agency_id).distinct()).scalars())
    q = select(incidents.c.agency_id).join(table, table.c.incident_id == incidents.c.id)
    return set(conn.execute(q.distinct()).scalars())


def test_every_incident_table_is_protected(pg):
    with pg.connect() as conn:
        assert policy_status(conn) == dict.fromkeys(PROTECTED_TABLES, True)


def test_an_unfiltered_query_sees_only_the_visible_agencies(pg):
    with pg.begin() as conn:
        with restricted(conn, ["citya"]):
            mine = set(conn.execute(select(incidents.c.id)).scalars())
            assert len(mine) == 3
            for table in (incident_offences, incident_jurisdictions, incident_versions):
                ids = set(conn.execute(select(table.c.incident_id)).scalars())
                assert ids == mine, table.name
            assert _owners(conn, incidents) == {"citya"}
            assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 3
            assert conn.execute(select(func.count()).select_from(incident_personal)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(incidents)).scalar() == 9
        with restricted(conn, ["citya", "transitc"], personal=["transitc"]):
            assert _owners(conn, incidents) == {"citya", "transitc"}
            assert _owners(conn, incident_personal) == {"transitc"}
        with restricted(conn, []):
            assert conn.execute(select(incidents)).all() == []


def test_the_application_role_cannot_write(pg):
    with pytest.raises(DBAPIError, match="permission denied"):
        with pg.begin() as conn, restricted(conn, ["citya"]):
            conn.execute(text("DELETE FROM incidents"))
    with pg.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incidents)).scalar() == 9


def test_a_broken_policy_still_cannot_return_other_agencies_rows(pg, monkeypatch):
    """Break the filter and the per-record check above the database: RLS still holds."""

    def publish_everything(self, row, offences, jurisdictions, flags, anchors, areas=None):
        return self.rules[0], dict(row)

    monkeypatch.setattr(ReadPlan, "where", lambda self: true())
    monkeypatch.setattr(ReadPlan, "publish", publish_everything)
    result = reads.read_incidents(pg, Viewer.user("u", "countyb", ["analyst"]))
    assert {r["agency_id"] for r in result.records} == {"countyb"}


def test_box_pages_are_planned_without_bitmap_scans_and_the_setting_ends_with_the_role(
    pg, monkeypatch
):
    """A page by box reads without bitmap scans; lists keep them (issue #8).

    Under row-level security the policy's owner condition, counted twice, made the
    planner AND a bitmap of every row of the owner with the box's index entries. The
    setting is made with the role and restored with it, and the records are the same.
    """
    with pg.begin() as conn:
        cost = conn.execute(text("SHOW random_page_cost")).scalar()
        with restricted(conn, ["citya"], planner={"enable_bitmapscan": "off",
                                                  "random_page_cost": "1.5"}):  # fmt: skip
            assert conn.execute(text("SHOW enable_bitmapscan")).scalar() == "off"
            assert conn.execute(text("SHOW random_page_cost")).scalar() == "1.5"
            assert _owners(conn, incidents) == {"citya"}
        assert conn.execute(text("SHOW enable_bitmapscan")).scalar() == "on"
        assert conn.execute(text("SHOW random_page_cost")).scalar() == cost
    seen: list[str] = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        if "AS _rule" in statement:  # the page statement (crossbeat.sharing.pages)
            cursor.execute("SELECT current_setting('enable_bitmapscan')")
            seen.append(cursor.fetchone()[0])

    viewer = Viewer.user("u", "citya", ["analyst"])
    box = ReadRequest(bbox=(-122.7, 45.5, -122.5, 45.6), agencies=frozenset({"citya"}))
    event.listen(pg.engine, "before_cursor_execute", spy)
    try:
        by_box = reads.read_incidents(pg, viewer, box)
        listed = reads.read_incidents(pg, viewer, ReadRequest(agencies=frozenset({"citya"})))
        monkeypatch.setattr(pages, "BOX_PAGE_PLANNER", {})
        planned = reads.read_incidents(pg, viewer, box)
    finally:
        event.remove(pg.engine, "before_cursor_execute", spy)
    assert seen == ["off", "on", "on"]
    assert len(by_box.records) == 3
    assert by_box.records == planned.records
    assert sorted(r["id"] for r in listed.records) == sorted(r["id"] for r in by_box.records)
