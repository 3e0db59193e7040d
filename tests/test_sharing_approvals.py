"""Issue #7 finding 5 in the library and the CLI: approvals are owner admins, not text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from crossbeat.auth.accounts import create_user, disable_user, get_user
from crossbeat.auth.errors import PermissionDenied
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.sharing._manage import AgreementError
from crossbeat.sharing.agreements import approve_agreement, create_agreement, get_agreement
from crossbeat.sharing.policy import Viewer
from crossbeat.sharing.reads import read_detail
from tests.sharing_support import ADMINS, NOW, Inc, add_admins, insert_incidents, setup_agencies

PERSONAL = {"offences": ["all"], "fields": ["all", "personal"], "precision": "exact",
            "purposes": ["investigation"]}  # fmt: skip
TRANSIT_OFFICER = Viewer.user("o-t", "transitc", ["officer"])


@pytest.fixture
def world(store):
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    add_admins(store, "citya", "transitc")
    people = {"full_address": "1 Elm St", "narrative": "victim named", "persons": []}
    victim = Inc("citya", "v-1", 45.53, -122.66, ["220"], NOW - timedelta(days=1), personal=people)
    insert_incidents(store, [victim])
    store.victim = victim
    return store


def _reads_personal(store) -> bool:
    """Whether transitc's officer reads the victim's personal data (by its public id:
    another agency never learns the owner's internal id)."""
    detail = read_detail(store, TRANSIT_OFFICER, store.victim.public_id, purpose="case 26-7")
    return detail.personal is not None


def test_the_grantees_admin_cannot_approve_the_owners_data(world):
    root = create_user(world, "transitc", "transitc.root", "violet kettle under the bridge",
                       ["platform_admin"])  # fmt: skip
    transit_admin = root.user.actor()  # a platform admin, but of the grantee
    made = create_agreement(world, "citya", "transitc", **PERSONAL, by=transit_admin)
    assert made.status(NOW) == "awaiting_approval" and made.approvals == ()
    assert not _reads_personal(world)
    with pytest.raises(PermissionDenied, match="only an agency_admin or platform_admin of citya"):
        approve_agreement(world, made.id, by=transit_admin)
    # The local operator cannot record text, nor an admin of another agency, as approval.
    for who, why in [("Chief of Police", "no user account"),
                     ("transitc.admin", "belongs to transitc, not the owner citya")]:  # fmt: skip
        with pytest.raises(AgreementError, match=why):
            approve_agreement(world, made.id, approver=who)
    assert not _reads_personal(world)


def test_personal_data_needs_two_different_admins_of_the_owner(world):
    made = create_agreement(world, "citya", "transitc", **PERSONAL, approved_by=["citya.admin"])
    assert made.required_approvals == 2 and made.status(NOW) == "awaiting_approval"
    assert not _reads_personal(world)
    with pytest.raises(AgreementError, match="different admin"):
        approve_agreement(world, made.id, approver="citya.admin")
    done = approve_agreement(world, made.id, approver="citya.admin2")
    assert done.status(NOW) == "active" and _reads_personal(world)
    assert {a.username for a in get_agreement(world, made.id).approvals} == set(ADMINS["citya"])


def test_a_disabled_or_non_admin_account_does_not_approve(world):
    disable_user(world, "citya.admin2")
    with pytest.raises(AgreementError, match="citya.admin2 is disabled"):
        create_agreement(world, "citya", "transitc", **PERSONAL, approved_by=ADMINS["citya"])
    officer = get_user(world, "citya.admin")
    assert officer.agency_id == "citya"


def test_cli_records_approvers_as_users(world, db_url):
    def run(*args):
        return CliRunner().invoke(cli, [*args, "--db", db_url], catch_exceptions=False)

    world.clock = FrozenClock(datetime.now(UTC) + timedelta(minutes=1))  # the CLI's clock
    base = ("agreement", "add", "citya", "transitc", "--offences", "all", "--fields",
            "all,personal", "--precision", "exact", "--purpose", "investigation")  # fmt: skip
    text = run(*base, "--approved-by", "Chief of Police, MoU 7")
    assert text.exit_code == 1 and "no user account" in text.output
    foreign = run(*base, "--approved-by", "transitc.admin")
    assert foreign.exit_code == 1 and "not the owner citya" in foreign.output
    added = run(*base, "--approved-by", "citya.admin", "--reference", "MoU 7")
    assert added.exit_code == 0, added.output
    assert "awaiting approval: 1 of 2" in added.output
    agreement_id = added.output.split()[1].rstrip(":")
    assert not _reads_personal(world)
    twice = run("agreement", "approve", agreement_id, "--by", "citya.admin")
    assert twice.exit_code == 1 and "different admin" in twice.output
    done = run("agreement", "approve", agreement_id, "--by", "citya.admin2")
    assert done.exit_code == 0 and "active" in done.output
    assert _reads_personal(world)
