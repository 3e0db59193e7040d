"""Offences and jurisdictions kept on the incident row never go stale (issue #8).

``incidents.offences_json`` and ``incidents.jurisdiction_ids``
(:mod:`crossbeat.store.children`) are what a page of records publishes as each record's
offences and jurisdictions. Every write path that changes the child tables must keep
them equal: a first ingest, a changed record (new version, other offences), a
withdrawal, a quarantined row stored on retry, a boundary change that re-tags every
incident, field reports and their updates through the API, and the bulk backfill from
the tables. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from crossbeat.agencies import register_agency, set_jurisdictions
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.ingest.quarantine import retry_quarantine
from crossbeat.ingest.writes import withdraw_records
from crossbeat.model import Agency, incident_id
from crossbeat.store import Store
from crossbeat.store.children import (
    OFFENCE_KEYS,
    offences_value,
    parse_jurisdictions,
    parse_offences,
)
from crossbeat.store.schema import incidents
from crossbeat.store.tags import refresh_children
from tests.agency_support import register_for_test
from tests.api_support import build_world

PROFILE = """
name = "children-feed"

[source]
format = "csv"
timezone = "America/Los_Angeles"

[id]
columns = ["id"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"

[[offences]]
scheme = "code-nibrs"
code = "code"

[[offences]]
scheme = "code-nibrs"
code = "code2"
"""
HEADER = ["id", "when", "lon", "lat", "code", "code2"]
CITY = {
    "type": "Polygon",
    "coordinates": [
        [[-122.7, 45.5], [-122.6, 45.5], [-122.6, 45.6], [-122.7, 45.6], [-122.7, 45.5]]
    ],
}
WEST = {
    "type": "Polygon",
    "coordinates": [
        [[-122.7, 45.5], [-122.675, 45.5], [-122.675, 45.6], [-122.7, 45.6], [-122.7, 45.5]]
    ],
}


@pytest.fixture(autouse=True)
def _agencies(request: pytest.FixtureRequest) -> None:
    register_for_test(request, {"cityx": "America/Los_Angeles"})


def _row(i: int, **over: str) -> dict[str, str]:
    base = {
        "id": f"R{i}",
        "when": f"2024-03-{1 + i % 28:02d} 1{i % 10}:30",
        "lon": f"{-122.69 + (i % 20) * 0.002:.6f}",
        "lat": f"{45.51 + (i % 20) * 0.002:.6f}",
        "code": ["220", "13B", "240", "23F"][i % 4],
        "code2": ["", "290", "", "120"][i % 4],
    }
    return {**base, **over}


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(rows)
    return path


def stale_children(conn: Connection) -> list[str]:
    """Return the ids of incidents whose two columns differ from their child tables.

    Compared as values (the JSON's spacing differs between backends), in Python.
    """
    rows = conn.execute(text("SELECT id, offences_json, jurisdiction_ids FROM incidents"))
    kept = {r[0]: (r[1], r[2]) for r in rows}
    offences: dict[str, list[list[Any]]] = {}
    cols = ", ".join(OFFENCE_KEYS)
    for r in conn.execute(
        text(f"SELECT incident_id, {cols} FROM incident_offences ORDER BY incident_id, seq")
    ):
        offences.setdefault(r[0], []).append(list(r[1:]))
    places: dict[str, list[str]] = {}
    for r in conn.execute(text("SELECT incident_id, agency_id FROM incident_jurisdictions")):
        places.setdefault(r[0], []).append(r[1])
    out = []
    for iid, (offs, juris) in kept.items():
        if offs is None or juris is None:
            out.append(iid)
            continue
        if json.loads(offs) != offences.get(iid, []):
            out.append(iid)
        elif parse_jurisdictions(juris) != sorted(places.get(iid, [])):
            out.append(iid)
    return sorted(out)


def _fresh(store: Store) -> list[str]:
    with store.connect() as conn:
        return stale_children(conn)


def _kept(store: Store, iid: str) -> tuple[list[str], list[str]]:
    with store.connect() as conn:
        offs, places = conn.execute(
            select(incidents.c.offences_json, incidents.c.jurisdiction_ids).where(
                incidents.c.id == iid
            )
        ).one()
    return [o["nibrs_code"] for o in parse_offences(offs)], parse_jurisdictions(places)


def test_every_ingest_write_keeps_the_row_copies_equal_to_the_child_tables(
    store: Store, tmp_path: Path
) -> None:
    register_agency(store, Agency("transit", "Transit"))
    profile = parse_profile(PROFILE)
    ingest_files(store, "cityx", profile, [_csv(tmp_path / "a.csv", [_row(i) for i in range(8)])])
    assert _fresh(store) == []
    r1 = incident_id("cityx", "R1")
    assert _kept(store, r1) == (["13B", "290"], ["cityx"])
    # A changed record: a new version with other offences.
    rows = [_row(1, code="120", code2=""), *(_row(i) for i in range(2, 8))]
    s = ingest_files(store, "cityx", profile, [_csv(tmp_path / "b.csv", rows)])
    assert s.updated == 1
    assert _fresh(store) == []
    assert _kept(store, r1) == (["120"], ["cityx"])
    # A boundary change re-tags every incident: the copies follow.
    set_jurisdictions(store, "cityx", [("city", CITY)])
    set_jurisdictions(store, "transit", [("west", WEST)])
    assert _fresh(store) == []
    r0 = incident_id("cityx", "R0")  # lon -122.69: inside the west strip
    assert _kept(store, r0)[1] == ["cityx", "transit"]
    # A withdrawal, and a quarantined row stored when retried under a fixed profile.
    withdraw_records(store, "cityx", ["R2"], reason="unfounded")
    bad = _csv(tmp_path / "c.csv", [_row(20, when="03/05/2024 10:00", code2="13A")])
    assert ingest_files(store, "cityx", profile, [bad]).quarantined == 1
    fixed = parse_profile(
        PROFILE.replace(
            'formats = ["%Y-%m-%d %H:%M"]', 'formats = ["%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"]'
        )
    )
    assert retry_quarantine(store, fixed, agency_id="cityx").stored.new == 1
    assert _fresh(store) == []
    assert _kept(store, incident_id("cityx", "R20")) == (["220", "13A"], ["cityx", "transit"])


def test_field_reports_and_their_updates_keep_the_row_copies(store: Store) -> None:
    world = build_world(store)  # written through the tables, then refresh_children
    assert _fresh(store) == []
    client, headers = world.signed_in("a.officer")
    report = {"offence": "23H", "occurred_from": "2026-06-14T10:15:00-07:00",
              "lat": 45.531, "lon": -122.661, "location_type": "13", "status": "open"}  # fmt: skip
    created = client.post("/api/v1/incidents", json=report, headers=headers)
    assert created.status_code == 201, created.text
    url = f"/api/v1/incidents/{created.json()['record']['id']}"
    changed = client.patch(url, json={"offence": "13B"}, headers={**headers, "If-Match": '"1"'})
    assert changed.status_code == 200, changed.text
    assert _fresh(store) == []


def test_the_backfill_and_the_check_see_a_stale_copy(store: Store, tmp_path: Path) -> None:
    profile = parse_profile(PROFILE)
    ingest_files(store, "cityx", profile, [_csv(tmp_path / "a.csv", [_row(i) for i in range(4)])])
    r1, r3 = incident_id("cityx", "R1"), incident_id("cityx", "R3")
    wrong = offences_value([{"local_code": "X", "nibrs_code": "09A", "crime_against": None,
                             "ucr_part1": None, "call_category": None}])  # fmt: skip
    with store.begin() as conn:
        conn.execute(
            text("UPDATE incidents SET offences_json = :w WHERE id = :i"), {"w": wrong, "i": r1}
        )
        conn.execute(text("UPDATE incidents SET jurisdiction_ids = NULL WHERE id = :i"), {"i": r3})
    assert _fresh(store) == sorted([r1, r3])
    with store.begin() as conn:
        assert refresh_children(conn, [r1]) == 1
    assert _fresh(store) == [r3]
    with store.begin() as conn:
        assert refresh_children(conn) == 4
    assert _fresh(store) == []
