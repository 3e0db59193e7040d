"""The read entry points: immediate revocation, streams, audit events, personal data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from crossbeat.audit import Action, Outcome, events_by_actor, events_for_owner, public_reads
from crossbeat.clock import FrozenClock
from crossbeat.sharing.agreements import create_agreement, revoke_agreement
from crossbeat.sharing.groups import create_group, set_members
from crossbeat.sharing.policy import ReadRequest, RequestError, Viewer
from crossbeat.sharing.preview import preview
from crossbeat.sharing.reads import aggregate, read_detail, read_incidents
from crossbeat.sharing.streams import LiveStream
from crossbeat.store.schema import incidents
from tests.sharing_support import ADMINS, NOW, Inc, add_admins, insert_incidents, setup_agencies

ANALYST_B = Viewer.user("u-b", "countyb", ["analyst"])
ALL = {"offences": ["all"], "fields": ["all"], "purposes": ["analysis"],
       "approved_by": ADMINS["citya"]}  # fmt: skip


def _inc(owner: str, n: int, **kw) -> Inc:
    people = {"full_address": f"{n} Elm St", "narrative": "seen", "persons": []}
    base = {"lat": 45.53, "lon": -122.66 + n * 0.001, "codes": ["220"],
            "occurred_from": NOW - timedelta(days=2, hours=n), "personal": people}  # fmt: skip
    return Inc(owner, f"{owner}-{n}", **{**base, **kw})


@pytest.fixture
def world(store):
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    add_admins(store, "citya")
    store.population = [_inc("citya", i) for i in range(6)] + [_inc("countyb", i) for i in range(3)]
    insert_incidents(store, store.population)
    return store


def _ids(result) -> set[str]:
    return {r["id"] for r in result.records}


def test_deny_by_default_and_own_data_by_role(world):
    result = read_incidents(world, ANALYST_B)
    assert {r["agency_id"] for r in result.records} == {"countyb"}
    denied = {d.owner: d for d in result.decisions}
    assert not denied["citya"].allow
    assert "deny by default" in denied["citya"].reasons[0]
    admin = Viewer.user("adm", "countyb", ["agency_admin", "auditor"])
    refused = read_incidents(world, admin)
    assert refused.records == []
    assert "give no access to incident data" in refused.decisions[1].reasons[0]
    assert _ids(read_incidents(world, Viewer.token("tok", "countyb"))) == _ids(result)


def test_revocation_is_immediate_also_for_live_streams(world):
    made = create_agreement(world, "citya", "countyb", precision="exact", **ALL)
    stream = LiveStream(world, ANALYST_B)
    first = stream.poll()
    assert {r["agency_id"] for r in first.records} == {"citya", "countyb"}
    assert len(read_incidents(world, ANALYST_B).records) == 9
    revoke_agreement(world, made.id, reason="incident")  # no clock movement at all
    after = read_incidents(world, ANALYST_B)
    assert {r["agency_id"] for r in after.records} == {"countyb"}
    decision = next(d for d in after.decisions if d.owner == "citya")
    assert not decision.allow and "is revoked" in decision.reasons[0]
    update_ = stream.poll()
    assert update_.reset_owners == ["citya"]
    assert not [r for r in update_.records if r["agency_id"] == "citya"]
    with pytest.raises(RequestError):
        ReadRequest(limit=0)


def test_stream_sends_changes_withdrawals_and_regrants(world):
    create_agreement(world, "citya", "countyb", precision="block", **ALL)
    stream = LiveStream(world, ANALYST_B)
    assert len(stream.poll().records) == 9
    world.clock.advance(minutes=1)
    assert stream.poll().records == []
    target = world.population[0]
    gone = world.population[1]
    with world.begin() as conn:
        conn.execute(
            update(incidents)
            .where(incidents.c.id == target.id)
            .values(status="closed", updated_at=NOW + timedelta(minutes=2))
        )
        conn.execute(
            update(incidents)
            .where(incidents.c.id == gone.id)
            .values(withdrawn_at=NOW + timedelta(minutes=2), updated_at=NOW + timedelta(minutes=2))
        )
        # A new version that is now sensitive must leave the partner's screen.
        conn.execute(
            update(incidents)
            .where(incidents.c.id == world.population[2].id)
            .values(sens_domestic=True, updated_at=NOW + timedelta(minutes=2))
        )
    world.clock.advance(minutes=2)
    changed = stream.poll()
    # citya's records reach countyb through an agreement: under their public ids.
    assert [r["id"] for r in changed.records] == [target.public_id]
    assert changed.records[0]["status"] == "closed"
    assert set(changed.removed) == {gone.public_id, world.population[2].public_id}
    # A group grant with finer precision replaces the agency grant: reset and re-send.
    create_group(world, "tf", "Task force", members=["countyb"])
    create_agreement(world, "citya", "group:tf", precision="exact", **ALL)
    world.clock.advance(minutes=1)
    regrant = stream.poll()
    assert regrant.reset_owners == ["citya"]
    assert {r["location_precision"] for r in regrant.records if r["agency_id"] == "citya"} == {
        "exact"
    }
    set_members(world, "tf", remove=["countyb"])
    assert {r["location_precision"] for r in read_incidents(world, ANALYST_B).records} >= {"block"}


def test_delay_and_purpose(world):
    create_agreement(
        world, "citya", "countyb", precision="h3:8", delay="50h",
        **{**ALL, "purposes": ["operations"]},
    )  # fmt: skip
    ops = Viewer.user("u-b", "countyb", ["officer"], purpose="operations")
    seen = read_incidents(world, ops, ReadRequest(agencies=frozenset({"citya"})))
    assert len(seen.records) == 6 - 2  # the two newest are still within 50 h
    assert {r["location_precision"] for r in seen.records} == {"h3:8"}
    analysis = read_incidents(world, ANALYST_B, ReadRequest(agencies=frozenset({"citya"})))
    assert analysis.records == []
    assert "serves operations, not analysis" in analysis.decisions[0].reasons[0]
    denied = events_for_owner(world, "citya", action=Action.DENIED)
    assert denied and denied[0].actor == "u-b" and denied[0].outcome is Outcome.DENIED


def test_filters_and_grouping_need_the_fields_they_use(world):
    create_agreement(
        world, "citya", "countyb", precision="jurisdiction", **{**ALL, "fields": ["offence"]}
    )
    assert (
        len(read_incidents(world, ANALYST_B, ReadRequest(agencies=frozenset({"citya"}))).records)
        == 6
    )
    boxed = read_incidents(world, ANALYST_B, ReadRequest(bbox=(-123, 45, -122, 46)))
    assert {r["agency_id"] for r in boxed.records} == {"countyb"}
    why = next(d for d in boxed.decisions if d.owner == "citya")
    assert "filtering by area needs a published point" in why.reasons[0]
    by_cell = aggregate(world, ANALYST_B, by=("h3_9",))
    assert by_cell.total == 3
    assert aggregate(world, ANALYST_B, by=("nibrs",)).total == 9


def test_reads_are_audited_with_owners_ids_and_purpose(world):
    create_agreement(world, "citya", "countyb", precision="exact", **ALL)
    result = read_incidents(world, ANALYST_B, ReadRequest(limit=4), export=True)
    assert len(result.records) == 4 and result.next_after is not None
    rest = read_incidents(world, ANALYST_B, ReadRequest(after=result.next_after))
    assert len(rest.records) == 9 - 4 and not _ids(rest) & _ids(result)
    exports = events_by_actor(world, "u-b", action=Action.EXPORT)
    # One event per owner agency: each owner's auditors see only their own records
    # and the decisions about their own data.
    assert {i for e in exports for i in e.record_ids} == _ids(result)
    owners = sorted({r["agency_id"] for r in result.records})
    assert sorted(o for e in exports for o in e.owner_agencies) == owners
    for event in exports:
        (owner,) = event.owner_agencies
        assert event.purpose == "analysis"
        assert {d["owner"] for d in event.details["decisions"]} == {owner}
        mine = {r["id"] for r in result.records if r["agency_id"] == owner}
        assert set(event.record_ids) == mine
    if "citya" in owners:
        seen = events_for_owner(world, "citya", action=Action.EXPORT)
        assert [e.owner_agencies for e in seen] == [("citya",)]
    read_incidents(world, Viewer.public())
    world.clock.advance(minutes=15)  # public reads are audited per closed window
    public_reads.flush(world, world.clock.now())
    public = events_by_actor(world, "public")[0]
    assert public.record_ids == () and public.record_count == 0
    assert public.details["aggregated"]["requests"] == 1


def test_personal_data_needs_role_purpose_and_agreement(world):
    target = world.population[0]
    officer_a = Viewer.user("o-a", "citya", ["officer"])
    analyst_a = Viewer.user("an-a", "citya", ["analyst"])
    detail = read_detail(world, officer_a, target.id, purpose="case 26-118")
    assert detail.personal is not None and detail.personal.full_address == "0 Elm St"
    assert read_detail(world, officer_a, target.id).personal is None
    refused = read_detail(world, analyst_a, target.id, purpose="case 26-118")
    assert refused.record is not None and refused.personal is None
    officer_b = Viewer.user("o-b", "countyb", ["officer"])
    create_agreement(world, "citya", "countyb", precision="exact", **ALL)
    assert read_detail(world, officer_b, target.public_id, purpose="case 1").personal is None
    # The owner's id names nothing for another agency (it is derived from the case number).
    assert read_detail(world, officer_b, target.id).record is None
    views = events_for_owner(world, "citya", action=Action.PERSONAL_DATA_VIEW)
    assert len(views) == 1 and views[0].purpose == "case 26-118" and views[0].actor == "o-a"
    assert views[0].owner_agencies == ("citya",)
    # Another agency's auditors do not see a view of citya's record (nor its case number).
    assert events_for_owner(world, "countyb", action=Action.PERSONAL_DATA_VIEW) == []
    assert events_for_owner(world, "countyb", action=Action.DETAIL_VIEW) == []
    denials = events_for_owner(world, "citya", action=Action.DENIED)
    assert {e.actor for e in denials} == {"an-a", "o-b"}
    assert {e.record_ids for e in denials} == {(target.id,), (target.public_id,)}


def test_partner_personal_data_through_an_investigation_agreement(world):
    target = world.population[0]
    create_agreement(
        world, "citya", "countyb", precision="exact",
        **{**ALL, "fields": ["all", "personal"], "purposes": ["investigation"]},
    )  # fmt: skip
    officer_b = Viewer.user("o-b", "countyb", ["officer"])
    assert read_detail(world, officer_b, target.public_id).record is None  # analysis: refused
    detail = read_detail(world, officer_b, target.public_id, purpose="joint case 26-7")
    assert detail.personal is not None and detail.personal.narrative == "seen"
    listed = read_incidents(
        world, officer_b,
        ReadRequest(personal_data=True, legal_basis="joint case 26-7", purpose="investigation",
                    agencies=frozenset({"citya"})),
    )  # fmt: skip
    assert all(r["full_address"].endswith("Elm St") for r in listed.records)
    with pytest.raises(RequestError, match="legal basis"):
        ReadRequest(personal_data=True)


def test_unknown_and_hidden_ids_look_the_same(world):
    hidden = world.population[0]
    assert read_detail(world, ANALYST_B, hidden.id).record is None
    assert read_detail(world, ANALYST_B, hidden.public_id).record is None
    assert read_detail(world, ANALYST_B, "no-such-id").record is None


def test_preview_explains_what_is_hidden(world):
    insert_incidents(
        world,
        [
            _inc("citya", 90, codes=["11A"]),
            _inc("citya", 91, occurred_from=NOW - timedelta(hours=1)),
        ],
    )
    create_agreement(world, "citya", "countyb", precision="block", delay="24h", **ALL)
    shown = preview(world, "citya", "countyb", sample=2)
    assert (shown.total, shown.visible) == (8, 6)
    assert shown.hidden == {
        "delayed": 1,
        "sensitive: sexual_offence, victim_identifying": 1,
    }
    assert len(shown.sample) == 2 and shown.sample[0]["location_precision"] == "block"
    public = preview(world, "citya", "public")
    assert public.visible == 0 and public.hidden == {"no agreement in force": 8}
    event = events_for_owner(world, "citya", action=Action.SHARING_DECISION)[0]
    assert event.details["grantee"] == "public"


def test_request_validation_lists_every_problem():
    with pytest.raises(RequestError) as err:
        ReadRequest(
            bbox=(1, 2, 3), since=NOW, until=NOW - timedelta(days=1), offences=["zz"],
            fields=["password"], group_by=("colour", "h3_9", "month"), limit=-1,
        )  # fmt: skip
    text = str(err.value)
    for part in ("bbox", "until", "offences", "fields", "group_by", "limit"):
        assert part in text
