"""Managing agreements, groups and public policies: validation, overlaps, permissions, CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from crossbeat.audit import Action, events_for_owner
from crossbeat.auth.accounts import get_user
from crossbeat.auth.errors import PermissionDenied
from crossbeat.auth.roles import Actor, Role
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.sharing._manage import AgreementError
from crossbeat.sharing.agreements import (
    agreement_history,
    create_agreement,
    get_agreement,
    list_agreements,
    revoke_agreement,
)
from crossbeat.sharing.groups import create_group, list_groups, set_members
from crossbeat.sharing.overrides import get_public_policy, tighten_public_policy
from crossbeat.sharing.public import DEFAULT_PUBLIC_POLICY
from crossbeat.sharing.tables import sharing_agreements
from tests.sharing_support import ADMINS, NOW, add_admins, setup_agencies, snapshot

GOOD = {
    "offences": ["property"],
    "fields": ["all"],
    "precision": "block",
    "purposes": ["analysis"],
    "approved_by": ADMINS["citya"][:1],
    "reference": "Chief of Police, MoU 2026-14",
}

GOOD_T = {**GOOD, "approved_by": ADMINS["transitc"][:1]}


@pytest.fixture
def managed(store):
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    add_admins(store)
    create_group(store, "tf", "Task force", members=["citya", "countyb"])
    create_agreement(store, "transitc", "citya", **GOOD_T)
    tighten_public_policy(store, "countyb", {"precision": "h3:8"})
    return store


BAD_CREATES = [
    ({"owner": "nobody"}, "owner: unknown agency 'nobody'"),
    ({"grantee": "ghost"}, "grantee: unknown agency 'ghost'"),
    ({"grantee": "group:nope"}, "grantee: unknown group 'nope'"),
    ({"grantee": "citya", "owner": "citya"}, "always sees its own data"),
    ({"offences": ["220", "bogus", "theft"]}, "unknown offence(s) 'bogus', 'theft'"),
    ({"offences": None}, "offences: required"),
    ({"fields": ["all", "password", "ssn"]}, "not on the allow-list: 'password', 'ssn'"),
    ({"fields": None}, "fields: required"),
    ({"precision": "h3:12"}, "unknown precision 'h3:12'"),
    ({"precision": None}, "precision: required"),
    ({"delay": "soon"}, "bad delay 'soon'"),
    ({"time_resolution": "week"}, "unknown time resolution 'week'"),
    ({"purposes": ["spying"]}, "unknown purpose(s) spying"),
    ({"purposes": ["public_information"]}, "only for the public grantee"),
    ({"purposes": None}, "purposes: required"),
    ({"include_sensitive": ["gossip"]}, "unknown sensitivity flag(s) gossip"),
    ({"approved_by": "  "}, "approved_by: name the admin(s) of citya"),
    ({"approved_by": ["Chief of Police, MoU 2026-14"]}, "no user account"),
    ({"approved_by": ["countyb.admin"]}, "belongs to countyb, not the owner citya"),
    ({"approved_by": ["citya.admin", "citya.admin"]}, "named twice"),
    ({"valid_to": NOW - timedelta(days=1)}, "has already passed"),
    (
        {"valid_from": NOW + timedelta(days=3), "valid_to": NOW + timedelta(days=2)},
        "after valid_from",
    ),
    ({"valid_from": NOW - timedelta(days=30)}, "is in the past"),
    ({"valid_to": datetime(2027, 1, 1)}, "with a time zone"),
    # The public: only ever less than the public policy.
    (
        {"grantee": "public", "precision": "exact", "offences": None, "purposes": None},
        "precision exact is finer than h3:9",
    ),
    (
        {"grantee": "public", "owner": "countyb", "precision": "h3:9", "purposes": None},
        "finer than h3:8",
    ),
    (
        {"grantee": "public", "fields": ["all"], "precision": None, "purposes": None},
        "are not allowed",
    ),
    (
        {"grantee": "public", "fields": ["personal"], "precision": None, "purposes": None},
        "personal data fields cannot",
    ),
    (
        {"grantee": "public", "delay": "1d", "precision": None, "purposes": None},
        "delay 1d is shorter than 7d",
    ),
    (
        {
            "grantee": "public",
            "include_sensitive": ["juvenile"],
            "precision": None,
            "fields": None,
            "purposes": None,
        },
        "never published",
    ),
    (
        {"grantee": "public", "purposes": ["analysis"], "precision": None, "fields": None},
        "always public_information",
    ),
    # Overlaps with the existing transitc -> citya property agreement.
    ({"owner": "transitc", "grantee": "citya"}, "duplicates agreement"),
    (
        {"owner": "transitc", "grantee": "citya", "offences": ["220"], "precision": "exact"},
        "contradicts agreement",
    ),
    ({"owner": "transitc", "grantee": "citya", "offences": ["all"]}, "contradicts agreement"),
    ({"owner": "transitc", "grantee": "citya", "offences": ["part1"]}, "contradicts agreement"),
]


@pytest.mark.parametrize(("change", "message"), BAD_CREATES, ids=[m for _c, m in BAD_CREATES])
def test_bad_agreement_is_refused_and_changes_nothing(managed, change, message):
    before = snapshot(managed)
    args = {"owner": "citya", "grantee": "countyb", **GOOD, **change}
    if "approved_by" not in change:
        args["approved_by"] = ADMINS.get(args["owner"], ())
    with pytest.raises(AgreementError) as err:
        create_agreement(managed, args.pop("owner"), args.pop("grantee"), **args)
    assert message in str(err.value)
    assert snapshot(managed) == before


def test_every_problem_is_listed_at_once(managed):
    with pytest.raises(AgreementError) as err:
        create_agreement(
            managed, "nobody", "ghost", offences=["x"], fields=["y"], precision="z",
            purposes=["w"], approved_by="",
        )  # fmt: skip
    assert len(err.value.problems) == 7


def test_non_overlapping_agreements_for_one_pair_are_accepted(managed):
    person = create_agreement(managed, "transitc", "citya", **{**GOOD_T, "offences": ["person"]})
    later = create_agreement(managed, "citya", "countyb", **GOOD, valid_to=NOW + timedelta(days=10))
    after = create_agreement(
        managed, "citya", "countyb", **{**GOOD, "precision": "exact"},
        valid_from=NOW + timedelta(days=10),
    )  # fmt: skip
    assert person.scope.offences == frozenset({"person"})
    assert later.status(NOW) == "active" and after.status(NOW) == "pending"
    # A different grantee may overlap: the group reaches citya too.
    create_agreement(managed, "transitc", "group:tf", **{**GOOD_T, "precision": "exact"})


def test_revocation_is_recorded_and_frees_the_slot(managed):
    existing = list_agreements(managed, owner="transitc")[0]
    before = snapshot(managed)
    for bad_id, reason, message in [
        ("nope", "x", "unknown agreement 'nope'"),
        (existing.id, " ", "reason: say why"),
    ]:
        with pytest.raises(AgreementError, match=message):
            revoke_agreement(managed, bad_id, reason=reason)
    assert snapshot(managed) == before
    managed.clock.advance(minutes=5)
    done = revoke_agreement(managed, existing.id, reason="MoU ended")
    assert done.revoked_at == NOW + timedelta(minutes=5) and done.version == 2
    with pytest.raises(AgreementError, match="already revoked"):
        revoke_agreement(managed, existing.id, reason="again")
    history = agreement_history(managed, existing.id)
    assert [h["change"] for h in history] == ["created", "revoked"]
    assert history[1]["snapshot"]["revoke_reason"] == "MoU ended"
    assert list_agreements(managed, status="revoked") == [get_agreement(managed, existing.id)]
    create_agreement(managed, "transitc", "citya", **GOOD_T)  # the slot is free again
    with managed.connect() as conn:
        assert len(conn.execute(select(sharing_agreements)).all()) == 2
    changes = events_for_owner(managed, "transitc", action=Action.AGREEMENT_CHANGE)
    assert [e.details["change"] for e in changes][:2] == ["created", "revoked"]


def test_expired_agreements_do_not_block_new_ones(managed):
    create_agreement(managed, "citya", "countyb", **GOOD, valid_to=NOW + timedelta(hours=1))
    managed.clock.advance(hours=2)
    assert list_agreements(managed, owner="citya", status="expired")
    create_agreement(managed, "citya", "countyb", **GOOD)


def test_only_agency_admins_of_the_owner_and_platform_admins_manage(managed):
    analyst = Actor("u1", "ana", "transitc", frozenset({Role.ANALYST}))
    foreign_admin = Actor("u2", "fay", "citya", frozenset({Role.AGENCY_ADMIN}))
    own_admin = get_user(managed, "transitc.admin").actor()
    before = snapshot(managed)
    for actor in (analyst, foreign_admin):
        with pytest.raises(PermissionDenied, match="agency_admin of transitc"):
            create_agreement(
                managed, "transitc", "countyb", **{**GOOD, "approved_by": ()}, by=actor
            )
        with pytest.raises(PermissionDenied):
            tighten_public_policy(managed, "transitc", {"delay": "30d"}, by=actor)
    with pytest.raises(PermissionDenied):
        create_group(managed, "g2", "Group", by=own_admin)
    assert snapshot(managed) == before
    denied = events_for_owner(managed, "transitc", action=Action.DENIED)
    assert len(denied) == 4
    made = create_agreement(managed, "transitc", "countyb", **{**GOOD, "approved_by": ()},
                            by=own_admin)  # fmt: skip
    assert made.created_by == "transitc.admin"
    assert [a.username for a in made.approvals] == ["transitc.admin"]


def test_groups(managed):
    before = snapshot(managed)
    for call, message in [
        (lambda: create_group(managed, "Bad Id", "x"), "group id 'Bad Id'"),
        (lambda: create_group(managed, "tf", "again"), "exists already"),
        (lambda: create_group(managed, "g2", " "), "give the group a name"),
        (lambda: create_group(managed, "g3", "x", members=["ghost"]), "unknown agency 'ghost'"),
        (lambda: set_members(managed, "nope", add=["citya"]), "unknown group 'nope'"),
        (lambda: set_members(managed, "tf", add=["citya"]), "already a member"),
        (lambda: set_members(managed, "tf", remove=["transitc"]), "not a member"),
        (lambda: set_members(managed, "tf"), "name agencies to add or remove"),
    ]:
        with pytest.raises(AgreementError, match=message):
            call()
    assert snapshot(managed) == before
    done = set_members(managed, "tf", add=["transitc"], remove=["citya"])
    assert done.members == ("countyb", "transitc")
    assert [g.id for g in list_groups(managed)] == ["tf"]


def test_public_policy_can_only_tighten(managed):
    before = snapshot(managed)
    for settings, message in [
        ({"precision": "h3:9"}, "precision h3:9 is finer than h3:8"),
        ({"delay": "1d"}, "shorter than"),
        ({"threshold": 2}, "threshold 2 is below 5"),
        ({"fields": ["all"]}, "are not allowed"),
        ({"colour": "red"}, "unknown public-policy knob 'colour'"),
        ({"threshold": "many"}, "whole number"),
        ({}, "at least one knob"),
    ]:
        with pytest.raises(AgreementError, match=message):
            tighten_public_policy(managed, "countyb", settings)
    with pytest.raises(AgreementError, match="unknown agency"):
        tighten_public_policy(managed, "ghost", {"delay": "14d"})
    assert snapshot(managed) == before
    policy = tighten_public_policy(
        managed, "countyb", {"delay": "14d", "suppress_offences": ["13A"], "records": "false"}
    )
    assert policy.delay == timedelta(days=14) and not policy.records
    again = tighten_public_policy(managed, "countyb", {"suppress_offences": ["220"]})
    assert again.suppress_offences == {"13A", "220"}
    assert get_public_policy(managed, "citya") == DEFAULT_PUBLIC_POLICY


def test_cli_manages_agreements(managed, db_url):
    runner = CliRunner()
    env = {"CROSSBEAT_DB": db_url}

    def run(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    out = run(
        *("agreement", "add", "citya", "countyb", "--offences", "property,220"),
        *("--fields", "offence,location", "--precision", "h3:9", "--delay", "24h"),
        *("--purpose", "analysis", "--approved-by", "citya.admin", "--json"),
    )
    assert out.exit_code == 0, out.output
    made = json.loads(out.output)
    assert made["delay"] == "1d" and made["precision"] == "h3:9"
    bad = run("agreement", "add", "citya", "ghost", "--offences", "zzz", "--approved-by", "x")
    assert bad.exit_code == 1 and "unknown agency 'ghost'" in bad.output
    assert "unknown offence(s) 'zzz'" in bad.output
    listed = run("agreement", "list", "--owner", "citya", "--json")
    assert [a["id"] for a in json.loads(listed.output)] == [made["id"]]
    shown = run("agreement", "preview", "citya", "countyb", "--json")
    assert json.loads(shown.output)["owner"] == "citya"
    assert run("agreement", "revoke", made["id"], "--reason", "done").exit_code == 0
    assert "already revoked" in run("agreement", "revoke", made["id"], "--reason", "x").output
    assert run("group", "add", "g9", "--name", "Nine", "--member", "citya").exit_code == 0
    assert "transitc" in run("group", "members", "g9", "--add", "transitc").output
    policy = run("public-policy", "tighten", "citya", "--delay", "10d", "--aggregates-only")
    assert json.loads(policy.output)["records"] is False
    assert (
        "can only be tightened" in run("public-policy", "tighten", "citya", "--delay", "1d").output
    )
    assert json.loads(run("public-policy", "show", "citya").output)["delay"] == "10d"


def test_demo_agreements(store):
    from crossbeat.agencies import register_agency
    from crossbeat.auth.accounts import create_user
    from crossbeat.model import Agency
    from crossbeat.sharing.demo import TASKFORCE, demo_agreements

    approvers = {}
    for agency_id in ("rivertonpd", "clackmerco", "metrotransit"):
        register_agency(store, Agency(id=agency_id, name=agency_id))
        create_user(store, agency_id, f"{agency_id}.admin", "violet kettle under the bridge",
                    ["agency_admin"])  # fmt: skip
        approvers[agency_id] = (f"{agency_id}.admin",)
    made = demo_agreements(store, approvers)
    assert all(a.status(store.now()) == "active" for a in made)
    pairs = {(a.owner, str(a.grantee), a.scope.precision.name) for a in made}
    assert ("rivertonpd", "clackmerco", "exact") in pairs
    assert ("metrotransit", "rivertonpd", "block") in pairs
    assert ("metrotransit", f"group:{TASKFORCE}", "exact") in pairs
    assert {a.owner for a in made if str(a.grantee) == "public"} == {
        "rivertonpd",
        "clackmerco",
        "metrotransit",
    }
    transit = next(a for a in made if (a.owner, str(a.grantee)) == ("metrotransit", "clackmerco"))
    assert transit.scope.delay == timedelta(hours=24)
    assert not any(set(a.scope.fields) & {"full_address", "narrative", "persons"} for a in made)
    before = snapshot(store)
    with pytest.raises(AgreementError, match="exists already"):
        demo_agreements(store, approvers)
    assert snapshot(store) == before
