"""Every data change is an audit event: who, what, how many, which batch (issue 6).

Each library function that changes stored data appends its event in the transaction
of the change, owned by the agency whose data changed, so the change shows in that
agency's access log. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shapely.geometry import box, mapping

from crossbeat.agencies import register_agency, retag_incidents, set_jurisdiction
from crossbeat.audit import AuditEvent, events_for_owner, iter_events, log_size, verify
from crossbeat.auth.roles import Actor, Role
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.ingest.quarantine import dismiss_quarantine, list_quarantine, retry_quarantine
from crossbeat.model import Agency, incident_id
from crossbeat.store import Store
from crossbeat.store.writes import withdraw_records
from crossbeat.vault.kek import generate_kek, parse_kek
from crossbeat.vault.keys import Vault
from crossbeat.vault.rotate import rewrap_keys, rotate_agency_key
from tests.test_ingest_pipeline import PROFILE, row, write_csv

ADMIN = Actor("u-admin-1", "x.admin", "cityx", frozenset({Role.AGENCY_ADMIN}))


def _new(store: Store, after: int) -> list[AuditEvent]:
    return list(iter_events(store, after=after))


@pytest.fixture
def agency(store: Store) -> str:
    register_agency(store, Agency(id="cityx", name="City X", timezone="America/Los_Angeles"))
    return "cityx"


def test_ingest_writes_one_event_per_committed_chunk_with_batch_and_counts(
    store: Store, agency: str, tmp_path: Path
) -> None:
    profile = parse_profile(PROFILE)
    rows = [row(i) for i in range(25)] + [row(25, lat="95.0")]
    f = write_csv(tmp_path / "a.csv", rows)
    before = log_size(store)
    summary = ingest_files(store, agency, profile, [f], chunk_size=10, by=ADMIN)
    events = _new(store, before)
    assert [e.action for e in events] == ["ingest"] * 3  # 26 rows in chunks of 10
    batch = summary.files[0].batch_id
    for e in events:
        assert e.actor == ADMIN.user_id and e.actor_agency == "cityx"
        assert e.owner_agencies == ("cityx",) and e.resource_type == "incident"
        assert e.details["batch_id"] == batch and e.details["operation"] == "ingest"
        assert e.details["file"] == "a.csv" and e.details["file_hash"] == summary.files[0].file_hash
        assert e.details["profile"] == "test-feed"
        assert e.details["profile_hash"] == profile.content_hash
        assert e.details["crosswalks"] and e.details["crosswalks"][0].startswith("code-nibrs@")
    assert [e.details["through_row"] for e in events] == [10, 20, 26]
    totals = {k: sum(e.details["counts"][k] for e in events) for k in ("rows", "new")}
    assert totals == {"rows": 26, "new": 25} == {"rows": summary.rows, "new": summary.new}
    assert sum(e.details["counts"]["quarantined"] for e in events) == 1
    assert sum(e.record_count for e in events) == 26  # 25 stored + 1 quarantined
    assert events_for_owner(store, "cityx", action="ingest")[0].seq == events[-1].seq


def test_a_changed_profile_is_named_in_the_next_ingest_event(
    store: Store, agency: str, tmp_path: Path
) -> None:
    first = parse_profile(PROFILE)
    f = write_csv(tmp_path / "a.csv", [row(i) for i in range(3)])
    ingest_files(store, agency, first, [f])
    before = log_size(store)
    ingest_files(store, agency, first, [f])  # the same profile: nothing to name
    assert "previous_profile_hash" not in _new(store, before)[0].details
    changed = parse_profile(PROFILE.replace('keep = ["beat"]', 'keep = ["beat", "address"]'))
    before = log_size(store)
    ingest_files(store, agency, changed, [f])
    (event,) = _new(store, before)
    assert event.details["previous_profile_hash"] == first.content_hash
    assert event.details["profile_hash"] == changed.content_hash != first.content_hash
    assert event.actor == "system" and event.actor_agency is None  # the local operator


def test_withdraw_and_expunge_are_audited_with_ids_counts_and_reason(
    store: Store, agency: str, tmp_path: Path
) -> None:
    ingest_files(
        store,
        agency,
        parse_profile(PROFILE),
        [write_csv(tmp_path / "a.csv", [row(i) for i in range(4)])],
    )
    before = log_size(store)
    withdraw_records(store, agency, ["R1", "nope"], reason="unfounded", by=ADMIN)
    withdraw_records(store, agency, ["R2", "R1"], expunge_records=True, reason="court order")
    withdrawn, expunged = _new(store, before)
    assert withdrawn.action == "withdraw" and withdrawn.purpose == "unfounded"
    assert withdrawn.record_ids == (incident_id(agency, "R1"),) and withdrawn.record_count == 1
    assert withdrawn.details == {
        "operation": "withdraw",
        "source_ids": ["R1"],
        "changed": 1,
        "already": 0,
        "unknown": 1,
    }
    assert withdrawn.actor == ADMIN.user_id and withdrawn.owner_agencies == (agency,)
    assert expunged.action == "expunge" and expunged.purpose == "court order"
    assert set(expunged.record_ids) == {incident_id(agency, "R1"), incident_id(agency, "R2")}
    assert expunged.actor == "system" and expunged.owner_agencies == (agency,)


def test_quarantine_retry_and_dismiss_are_audited(
    store: Store, agency: str, tmp_path: Path
) -> None:
    text = PROFILE
    rows = [row(0), row(1, when="03/05/2024 10:00"), row(2, when="03/06/2024 11:00")]
    ingest_files(store, agency, parse_profile(text), [write_csv(tmp_path / "a.csv", rows)])
    first, second = list_quarantine(store, agency_id=agency)
    fixed = parse_profile(
        text.replace(
            'formats = ["%Y-%m-%d %H:%M"]', 'formats = ["%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"]'
        )
    )
    before = log_size(store)
    retry_quarantine(store, fixed, agency_id=agency, ids=[first.id], by=ADMIN)
    dismissed = dismiss_quarantine(store, agency, [second.id, 999], reason="test row")
    retried, dismiss = _new(store, before)
    assert retried.action == "ingest" and retried.details["operation"] == "quarantine_retry"
    assert retried.details["quarantine_ids"] == [first.id]
    assert retried.details["counts"]["new"] == 1 and retried.record_count == 1
    assert retried.owner_agencies == (agency,) and retried.actor == ADMIN.user_id
    assert dismissed == 1
    assert dismiss.action == "change" and dismiss.resource_type == "quarantine"
    assert dismiss.details["quarantine_ids"] == [second.id] and dismiss.record_count == 1
    assert dismiss.purpose == "test row" and dismiss.owner_agencies == (agency,)


def test_agency_and_boundary_changes_are_audited(store: Store, tmp_path: Path) -> None:
    before = log_size(store)
    register_agency(store, Agency(id="cityx", name="City X"), by=ADMIN)
    register_agency(store, Agency(id="cityx", name="City X"))  # no change: no event
    # The profile's zone: the ingest refuses a profile in another zone than the agency's.
    register_agency(store, Agency(id="cityx", name="City of X", timezone="America/Los_Angeles"))
    ingest_files(
        store,
        "cityx",
        parse_profile(PROFILE),
        [write_csv(tmp_path / "a.csv", [row(i) for i in range(5)])],
    )
    after_ingest = log_size(store)
    square = mapping(box(-122.7, 45.5, -122.6, 45.6))
    set_jurisdiction(store, "cityx", "north", square)
    set_jurisdiction(store, "cityx", "north", square)
    assert retag_incidents(store) == 5
    created, updated = _new(store, before)[:2]
    assert created.details["operation"] == "agency_register" and created.details["before"] is None
    assert created.actor == ADMIN.user_id and created.owner_agencies == ("cityx",)
    assert updated.details["before"]["name"] == "City X"
    assert updated.details["after"] == {
        "name": "City of X",
        "ori": None,
        "timezone": "America/Los_Angeles",
    }
    first, again, retag = _new(store, after_ingest)
    assert first.resource_type == "jurisdiction" and first.record_count == 5
    assert first.details["polygons"] == ["north"] and first.details["replaced"] == []
    assert again.details["replaced"] == ["north"]
    assert retag.details == {"operation": "retag", "incidents_retagged": 5}
    assert all(e.owner_agencies == ("cityx",) for e in (first, again, retag))


def test_key_rotation_and_rewrap_are_audited(
    store: Store, agency: str, tmp_path: Path, kek
) -> None:
    ingest_files(
        store,
        agency,
        parse_profile(PROFILE),
        [write_csv(tmp_path / "a.csv", [row(i) for i in range(6)])],
    )
    before = log_size(store)
    result = rotate_agency_key(store, agency, batch_size=4, by=ADMIN)
    started, done = _new(store, before)
    assert started.action == done.action == "key_rotation"
    assert started.details["operation"] == "rotation_started"
    assert started.details["new_key_id"] == result.new_key_id
    assert done.details["rows_reencrypted"] == 6 == done.record_count
    assert done.details["retired_key_ids"] == result.retired
    assert {started.actor, *started.owner_agencies} == {ADMIN.user_id, agency}
    new_kek = parse_kek(generate_kek())
    before = log_size(store)
    n = rewrap_keys(store, Vault(new_kek, old_keks=[kek]))
    (rewrap,) = _new(store, before)
    assert rewrap.details["operation"] == "rewrap" and rewrap.details["kek_id"] == new_kek.id
    assert len(rewrap.details["keys"]) == n and rewrap.owner_agencies == (agency,)
    before = log_size(store)
    assert rewrap_keys(store, Vault(new_kek, old_keks=[kek])) == 0
    assert log_size(store) == before  # nothing re-wrapped, nothing to record
    assert verify(store).ok
