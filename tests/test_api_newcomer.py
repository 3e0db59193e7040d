"""API answers a newcomer reads: parameter names as documented, users by name (issue 6)."""

from __future__ import annotations

import pytest

from crossbeat.store import Store
from tests.api_support import World, assert_error, build_world


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def test_a_bad_by_names_the_by_parameter(world: World) -> None:
    body = assert_error(world.client().get("/api/v1/aggregates?by=bad"), 400)
    assert body["errors"] == [body["error"]]
    assert body["error"].startswith("by: unknown ['bad']") and "group_by" not in body["error"]
    both = assert_error(world.client().get("/api/v1/aggregates?by=bad&offence=zzz"), 400)
    assert [e.split(":")[0] for e in both["errors"]] == ["offence", "by"]


def test_the_access_log_names_api_users(world: World) -> None:
    analyst, _ = world.signed_in("a.analyst")
    # Its own agency's records: the log of citya's auditor holds reads of citya's data, and
    # pages go in random public-id order, so an unfiltered page may hold only partners'.
    assert analyst.get("/api/v1/incidents?agency=citya&limit=2").json()["records"]
    auditor, _ = world.signed_in("a.auditor")
    events = auditor.get("/api/v1/audit?action=read").json()["events"]
    mine = [e for e in events if e["actor"] == world.user_id("a.analyst")]
    assert mine and {e["actor_name"] for e in mine} == {"a.analyst"}
