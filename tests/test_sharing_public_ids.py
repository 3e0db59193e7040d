"""Published ids reveal no case number and no suppressed incident (issue #7 finding 1).

The attack, as run against the demo: incident ids were an unkeyed UUIDv5 of (agency,
source id) with the namespace in the source code, and source ids are sequential case
numbers. Recomputing ``uuid5`` for every case number linked 9,333 of 9,336 public
records to their case number, and the gaps below the highest public number were exactly
the suppressed sensitive incidents. These tests run that attack on records stored by the
real ingest, on both backends, through the web API, the library, the stream and the
detail endpoint, and show it now links nothing.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from crossbeat.clock import FrozenClock
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.model import INCIDENT_NAMESPACE, incident_id
from crossbeat.sharing.agreements import approve_agreement, create_agreement, list_agreements
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import read_detail, read_incidents
from crossbeat.sharing.streams import LiveStream
from crossbeat.store import Store, open_store
from crossbeat.store.schema import incidents
from tests.api_support import make_client
from tests.sharing_support import ADMINS, NOW, add_admins, setup_agencies

PROFILE = """
name = "case-numbers"

[source]
format = "csv"
timezone = "America/Los_Angeles"

[id]
columns = ["case"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"

[[offences]]
scheme = "code-nibrs"
code = "code"
description = "desc"
"""

FIRST, COUNT = 260001, 60


def _sensitive(n: int) -> bool:
    return n % 7 == 3


def _case(n: int) -> str:
    return f"{n}"


def _rows() -> list[dict[str, str]]:
    out = []
    for n in range(FIRST, FIRST + COUNT):
        code, desc = ("11A", "RAPE") if _sensitive(n) else ("220", "BURGLARY")
        day = 1 + (n - FIRST) // 3
        out.append(
            {
                "case": _case(n),
                "when": f"2026-05-{day:02d} 10:00",
                "lon": f"{-122.69 + (n % 50) * 0.001:.4f}",
                "lat": "45.53",
                "code": code,
                "desc": desc,
            }  # fmt: skip
        )
    return out


def _ingest(store: Store, tmp_path: Path, rows: list[dict[str, str]], name: str) -> None:
    path = tmp_path / name
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = ingest_files(store, "citya", parse_profile(PROFILE), [path])
    assert summary.totals.quarantined == 0


def _world(store: Store, tmp_path: Path) -> FrozenClock:
    clock = FrozenClock(NOW)
    store.clock = clock
    setup_agencies(store)
    add_admins(store, "citya")
    _ingest(store, tmp_path, _rows(), "feed.csv")
    create_agreement(store, "citya", "public", approved_by=ADMINS["citya"][0], clock=clock)
    return clock


def _derived(first: int = FIRST - 1000, last: int = FIRST + COUNT + 1000) -> dict[str, int]:
    """What the attacker computes: uuid5 of every plausible case number."""
    return {
        str(uuid.uuid5(INCIDENT_NAMESPACE, f"citya\x1f{_case(n)}")): n for n in range(first, last)
    }


def _all_public_pages(client: Any) -> tuple[list[dict[str, Any]], list[str]]:
    records, cursors, after = [], [], None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"after": after} if after else {})}
        response = client.get("/api/v1/incidents", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        records += body["records"]
        after = body["next_after"]
        if after is None:
            return records, cursors
        cursors.append(after)


def test_public_ids_cannot_be_linked_to_case_numbers(store: Store, tmp_path: Path) -> None:
    clock = _world(store, tmp_path)
    client = make_client(store, clock)
    records, cursors = _all_public_pages(client)
    published = [n for n in range(FIRST, FIRST + COUNT) if not _sensitive(n)]
    assert len(records) == len(published)
    derived = _derived()
    # The attack: recompute uuid5(namespace, agency + case number) for every plausible
    # case number and match it against the public list. It links nothing, and neither
    # the page cursors nor the GeoJSON carry an owner's id.
    assert not derived.keys() & {r["id"] for r in records}
    assert not derived.keys() & set(cursors)
    text = client.get("/api/v1/incidents", params={"limit": 1000, "f": "geojson"}).text
    text += str(read_incidents(store, Viewer.public(), export=True).to_dict())
    assert not [i for i in derived if i in text]
    # Nor does the detail endpoint answer a derived id: a published case, a suppressed
    # case and a made-up id give the same 404.
    suppressed = next(n for n in range(FIRST, FIRST + COUNT) if _sensitive(n))
    shown, hidden = (
        incident_id("citya", _case(published[0])),
        incident_id("citya", _case(suppressed)),
    )
    bodies = []
    for rid in (shown, hidden, str(uuid.uuid4())):
        response = client.get(f"/api/v1/incidents/{rid}")
        assert response.status_code == 404
        bodies.append(response.json()["errors"][0].replace(rid, "ID"))
    assert len(set(bodies)) == 1
    # The public id is what the detail endpoint accepts.
    one = records[0]["id"]
    detail = client.get(f"/api/v1/incidents/{one}")
    assert detail.status_code == 200 and detail.json()["record"]["id"] == one


def test_no_gap_is_left_by_suppressed_incidents(store: Store, tmp_path: Path) -> None:
    """The public release is the same as if the suppressed incidents had never existed."""
    _world(store, tmp_path)
    seen = read_incidents(store, Viewer.public()).records
    # A second database holds the same export without the sensitive incidents.
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}", kek=store.vault.kek)  # type: ignore[union-attr]
    try:
        clock = FrozenClock(NOW)
        other.clock = clock
        setup_agencies(other)
        add_admins(other, "citya")
        kept = [r for r in _rows() if not _sensitive(int(r["case"]))]
        _ingest(other, tmp_path, kept, "kept.csv")
        create_agreement(other, "citya", "public", approved_by=ADMINS["citya"][0], clock=clock)
        without = read_incidents(other, Viewer.public()).records
    finally:
        other.dispose()

    def content(records: list[dict[str, Any]]) -> list[str]:
        return sorted(repr(sorted((k, v) for k, v in r.items() if k != "id")) for r in records)

    # Everything but the ids is identical: no count, day or place betrays them ...
    assert content(seen) == content(without)
    # ... and the ids are not a function of (agency, case number): the same case
    # numbers got other ids in the other database, so no recomputation finds them.
    assert not {r["id"] for r in seen} & {r["id"] for r in without}
    # Records come in public-id order: the order of case numbers (with its gaps) is gone.
    with store.begin() as conn:
        case_of = dict(conn.execute(select(incidents.c.public_id, incidents.c.source_id)).all())
    order = [int(case_of[r["id"]]) for r in seen]
    assert order != sorted(order)


def test_public_ids_are_stable_across_updates(store: Store, tmp_path: Path) -> None:
    _world(store, tmp_path)
    before = {r["id"] for r in read_incidents(store, Viewer.public()).records}
    changed = _rows()
    for row in changed:
        row["desc"] = row["desc"] + " (REVISED)"
    _ingest(store, tmp_path, changed, "feed2.csv")
    with store.begin() as conn:
        versions = set(conn.execute(select(incidents.c.version)).scalars())
    assert versions == {2}
    assert {r["id"] for r in read_incidents(store, Viewer.public()).records} == before


def test_partners_see_public_ids_and_the_owner_its_own(store: Store, tmp_path: Path) -> None:
    clock = _world(store, tmp_path)
    create_agreement(
        store, "citya", "countyb", offences=["all"], fields=["all"], precision="exact",
        purposes=["analysis"], approved_by=ADMINS["citya"], clock=clock,
    )  # fmt: skip
    derived = _derived()
    partner = Viewer.user("u-b", "countyb", ["analyst"])
    got = read_incidents(store, partner, ReadRequest(agencies=frozenset({"citya"})))
    assert got.records and not derived.keys() & {r["id"] for r in got.records}
    assert read_detail(store, partner, got.records[0]["id"]).record is not None
    assert read_detail(store, partner, next(iter(derived))).record is None
    owner = Viewer.user("u-a", "citya", ["analyst"])
    mine = read_incidents(store, owner, ReadRequest(agencies=frozenset({"citya"})))
    assert {r["id"] for r in mine.records} <= derived.keys()
    assert len(mine.records) == COUNT


def test_stream_never_names_a_record_the_client_was_not_sent(store: Store, tmp_path: Path) -> None:
    clock = _world(store, tmp_path)
    stream = LiveStream(store, Viewer.public())
    first = stream.poll()
    assert len(first.records) == sum(1 for n in range(FIRST, FIRST + COUNT) if not _sensitive(n))
    clock.advance(minutes=1)
    with store.begin() as conn:
        # A suppressed incident changes, and a published one is withdrawn.
        conn.execute(
            update(incidents)
            .where(incidents.c.source_id == _case(FIRST + 3))
            .values(status="closed", updated_at=clock.now())
        )
        conn.execute(
            update(incidents)
            .where(incidents.c.source_id == _case(FIRST))
            .values(withdrawn_at=clock.now(), updated_at=clock.now())
        )
        gone = conn.execute(
            select(incidents.c.public_id).where(incidents.c.source_id == _case(FIRST))
        ).scalar()
    clock.advance(minutes=1)
    update_ = stream.poll()
    assert update_.removed == [gone] and update_.records == []
    clock.advance(minutes=1)
    assert stream.poll().removed == []


def test_migration_gives_existing_incidents_random_public_ids(store: Store, tmp_path: Path) -> None:
    """A database stored before migration 0012 gets a random public id for every incident."""
    from alembic import command

    _world(store, tmp_path)
    (agreement,) = list_agreements(store)
    with store.engine.begin() as conn:
        # 0010 is the revision 0012 follows; going down also undoes 0013, so the
        # agreement loses its recorded approval (0013's upgrade gives none back).
        command.downgrade(store._alembic_config(conn), "0010")
    with store.begin() as conn:
        assert "public_id" not in conn.exec_driver_sql("SELECT * FROM incidents").keys()
    store.upgrade()
    with store.begin() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.public_id)).all()
    assert len(rows) == COUNT and all(r.public_id for r in rows)
    assert len({r.public_id for r in rows}) == COUNT
    assert not {r.public_id for r in rows} & set(_derived())
    # As 0013 documents, an agreement without approvals stops applying until an owner
    # admin approves it again; then the public reads the records under their new ids.
    assert not read_incidents(store, Viewer.public()).records
    approve_agreement(store, agreement.id, approver=ADMINS["citya"][0])
    shown = {r["id"] for r in read_incidents(store, Viewer.public()).records}
    assert shown and shown <= {r.public_id for r in rows}
