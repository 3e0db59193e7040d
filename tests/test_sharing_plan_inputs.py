"""Plan inputs kept per data generation are never stale (issue #8).

Reads keep the stored agreements, memberships, time zones and public policies per data
generation (:mod:`crossbeat.sharing.plan_inputs`). Each test warms the kept inputs with
a read, changes one of them through its audited entry point, and requires the very
next read to plan from the change, on SQLite and PostgreSQL. A change made and rolled
back in one transaction must never be kept.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete

from crossbeat.agencies import register_agency
from crossbeat.clock import FrozenClock
from crossbeat.model import Agency
from crossbeat.sharing._manage import audit_change
from crossbeat.sharing.agreements import create_agreement, revoke_agreement
from crossbeat.sharing.groups import create_group, set_members
from crossbeat.sharing.overrides import tighten_public_policy
from crossbeat.sharing.plan_inputs import load_inputs, plan_inputs
from crossbeat.sharing.policy import Viewer
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.sharing.tables import sharing_agreement_approvals, sharing_agreements
from tests.sharing_support import ADMINS, NOW, Inc, add_admins, insert_incidents, setup_agencies

PARTNER = Viewer.user("u-b", "countyb", ["analyst"])
OWNER = Viewer.user("u-a", "citya", ["analyst"])
PUBLIC = Viewer.public()
ALL = {"offences": ["all"], "fields": ["all"], "purposes": ["analysis"], "precision": "exact"}


@pytest.fixture
def world(store):
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    add_admins(store, "citya", "countyb")
    population = [
        Inc("citya", f"a{i}", 45.53, -122.66 + i * 0.001, ["220"], NOW - timedelta(days=10))
        for i in range(4)
    ]
    insert_incidents(store, population)
    return store


def _owners(store, viewer: Viewer) -> set[str]:
    return {r["agency_id"] for r in read_incidents(store, viewer).records}


def test_an_agreement_made_or_revoked_is_planned_by_the_next_read(world):
    assert _owners(world, PARTNER) == set()  # warms the kept inputs
    made = create_agreement(world, "citya", "countyb", approved_by=ADMINS["citya"], **ALL)
    assert _owners(world, PARTNER) == {"citya"}
    revoke_agreement(world, made.id, reason="ended")
    assert _owners(world, PARTNER) == set()


def test_a_membership_change_is_planned_by_the_next_read(world):
    create_group(world, "task", "Task force", members=["transitc"])
    create_agreement(world, "citya", "group:task", approved_by=ADMINS["citya"], **ALL)
    assert _owners(world, PARTNER) == set()
    set_members(world, "task", add=["countyb"])
    assert _owners(world, PARTNER) == {"citya"}
    set_members(world, "task", remove=["countyb"])
    assert _owners(world, PARTNER) == set()


def test_a_public_policy_change_is_planned_by_the_next_read(world):
    create_agreement(world, "citya", "public", approved_by=ADMINS["citya"][0])
    assert _owners(world, PUBLIC) == {"citya"}
    tighten_public_policy(world, "citya", {"records": False})
    assert _owners(world, PUBLIC) == set()  # counts only from now on
    assert aggregate(world, PUBLIC, by=()).total is not None


def test_a_time_zone_change_is_planned_by_the_next_read(world):
    assert {r.timezone for r in read_incidents(world, OWNER).rules} == {"America/Los_Angeles"}
    register_agency(world, Agency(id="citya", name="Citya", timezone="America/Denver"))
    assert {r.timezone for r in read_incidents(world, OWNER).rules} == {"America/Denver"}


def test_inputs_are_kept_per_generation(world):
    with world.connect() as conn:
        first = plan_inputs(conn)
        assert plan_inputs(conn) is first  # nothing changed: kept
        assert first == load_inputs(conn)
    create_agreement(world, "citya", "countyb", approved_by=ADMINS["citya"], **ALL)
    with world.connect() as conn:
        second = plan_inputs(conn)
    assert second is not first
    assert [a.owner for a in second.agreements] == ["citya"]


def test_a_change_rolled_back_is_never_kept(world):
    kept = create_agreement(world, "citya", "countyb", approved_by=ADMINS["citya"], **ALL)
    with world.connect() as conn:
        assert [a.id for a in plan_inputs(conn).agreements] == [kept.id]

    class Undo(Exception):
        pass

    with pytest.raises(Undo), world.begin() as conn:
        # An uncommitted change: the generation is bumped in this transaction only.
        conn.execute(delete(sharing_agreement_approvals))
        conn.execute(delete(sharing_agreements))
        audit_change(world, conn, None, "agreement", ["citya"], {"change": "test"})
        assert plan_inputs(conn).agreements == ()  # this transaction sees its own change
        raise Undo
    with world.connect() as conn:
        assert [a.id for a in plan_inputs(conn).agreements] == [kept.id]
    # The next committed change reaches the generation the rolled-back one had seen.
    other = create_agreement(world, "countyb", "citya", approved_by=ADMINS["countyb"], **ALL)
    with world.connect() as conn:
        assert sorted(a.id for a in plan_inputs(conn).agreements) == sorted([kept.id, other.id])
    assert _owners(world, PARTNER) == {"citya"}  # the kept agreement still applies
