"""PostgreSQL row-level security under the policy: a query that forgot every filter."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text, true
from sqlalchemy.exc import DBAPIError

from crossbeat.sharing import reads
from crossbeat.sharing.policy import ReadPlan, Viewer
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
