"""Issue #10: the public's aggregates and tiles are kept, never past a write or a policy change.

A kept answer must be exactly what a fresh computation would give (a withdrawal, a
revoked public agreement, a changed rule move the key on at once) and must be audited
exactly as a computed one: the same owners, requests and record counts.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from crossbeat.api.deps import get_viewer
from crossbeat.audit import public_reads
from crossbeat.live.field import Reporter, create_report
from crossbeat.sharing.agreements import list_agreements, revoke_agreement
from crossbeat.sharing.reads import aggregate
from crossbeat.sharing.request import ReadRequest, Viewer
from crossbeat.store import Store
from tests.api_support import CLIENT_IP, World, build_world, events, last_seq
from tests.sharing_support import NOW

AGG = "/api/v1/aggregates?by=agency"
TILE = "/api/v1/tiles/incidents/10/163/366.mvt"


@pytest.fixture()
def world(store: Store) -> World:
    return build_world(store)


def _counts(client, url: str = AGG) -> dict[str, int | None]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return {cell["key"][0]: cell["count"] for cell in response.json()["cells"]}


def _fresh(world: World) -> dict[str, int | None]:
    """The same question computed by the core, without any cache."""
    result = aggregate(world.store, Viewer.public(), ReadRequest(), by=("agency",))
    return {k[0]: v for k, v in result.cells.items()}


def test_kept_answers_follow_withdrawals_and_revocations(world: World) -> None:
    client = world.client()
    cache = client.app.state.public_cache  # type: ignore[attr-defined]
    first = _counts(client)
    assert first == _fresh(world) and first["citya"]
    assert _counts(client) == first and cache.hits == 1  # kept: nothing changed

    near = next(i for i in world.normal if i.owner == "citya")
    report = {"offence": "23H", "occurred_from": (NOW - timedelta(days=12)).isoformat(),
              "lat": near.lat, "lon": near.lon}  # fmt: skip
    create_report(world.store, "citya", report, by=Reporter("u1", "citya"))
    after_write = _counts(client)
    assert after_write == _fresh(world) != first  # a write: computed again
    assert cache.hits == 1

    public = next(
        a for a in list_agreements(world.store, owner="citya") if a.grantee.kind == "public"
    )
    revoke_agreement(world.store, public.id, reason="policy review", clock=world.clock)
    after_policy = _counts(client)
    assert after_policy == _fresh(world)
    assert after_policy.get("citya") is None  # citya publishes nothing now
    assert cache.hits == 1


def test_a_signed_in_reader_is_never_served_a_kept_answer(world: World) -> None:
    public = world.client()
    _counts(public)
    client, _ = world.signed_in("a.analyst")
    cache = client.app.state.public_cache  # type: ignore[attr-defined]
    own = _counts(client)
    assert cache.hits == 0 and cache.misses == 0  # never looked up
    assert own != _counts(public)


def test_kept_answers_are_audited_as_computed_ones(world: World) -> None:
    before = last_seq(world.store)
    client = world.client()
    with client:  # the lifespan: counts buffered in memory, written every second
        for _ in range(5):
            assert client.get(AGG).status_code == 200
            tile = client.get(TILE)
            assert tile.status_code == 200
        again = client.get(TILE, headers={"If-None-Match": tile.headers["ETag"]})
        assert again.status_code == 304
        cache = client.app.state.public_cache  # type: ignore[attr-defined]
        assert cache.hits == 9 and cache.misses == 2
    # Stopped: the buffered counts were written; the closed window becomes events.
    world.clock.advance(minutes=15)
    public_reads.flush(world.store, world.clock.now())
    reads = events(world.store, before, action="read", actor="public")
    by = {(e.resource_type, e.owner_agencies): e for e in reads}
    shown = _fresh(world)
    for owner, count in shown.items():
        agg = by[("incident_aggregate", (owner,))]
        assert agg.source_ip == CLIENT_IP
        assert agg.details["aggregated"]["requests"] == 5
        assert agg.record_count == 5 * (count or 0)
    tiles = [e for e in reads if e.resource_type == "incident_tile"]
    assert tiles and all(e.details["aggregated"]["requests"] == 6 for e in tiles)


def _refuse_routes(client) -> None:
    """Make every route that identifies its caller fail: only the fast path can answer."""

    def refuse() -> None:
        raise AssertionError("the route ran")

    client.app.dependency_overrides[get_viewer] = refuse


@pytest.mark.parametrize("url", [AGG, TILE])
def test_kept_public_answers_are_served_before_routing_exactly_as_computed(
    world: World, url: str
) -> None:
    client = world.client()
    computed = client.get(url)
    assert computed.status_code == 200 and computed.content
    _refuse_routes(client)
    kept = client.get(url)
    # The same answer with the same headers, without the route.
    assert (kept.status_code, kept.content) == (200, computed.content)
    assert dict(kept.headers) == dict(computed.headers)
    assert kept.headers["Vary"] == "Cookie, Authorization"
    assert kept.headers["X-Content-Type-Options"] == "nosniff"  # security headers outside
    assert client.app.state.public_cache.hits == 1  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="the route ran"):
        client.get(url + ("&" if "?" in url else "?") + "since=2020-01-01T00:00:00Z")
    signed, _ = world.signed_in("a.analyst")
    _refuse_routes(signed)
    with pytest.raises(AssertionError, match="the route ran"):
        signed.get(url)  # a signed-in caller is never answered from the public's


def test_public_aggregates_have_a_strong_etag_that_writes_and_policy_changes_move(
    world: World,
) -> None:
    client = world.client()
    first = client.get(AGG)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get(AGG, headers={"If-None-Match": f'"other", {etag}'})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    assert client.get(AGG, headers={"If-None-Match": '"other"'}).status_code == 200

    near = next(i for i in world.normal if i.owner == "citya")
    report = {"offence": "23H", "occurred_from": (NOW - timedelta(days=12)).isoformat(),
              "lat": near.lat, "lon": near.lon}  # fmt: skip
    create_report(world.store, "citya", report, by=Reporter("u1", "citya"))
    after_write = client.get(AGG, headers={"If-None-Match": etag})
    assert after_write.status_code == 200 and after_write.headers["ETag"] != etag
    assert {c["key"][0]: c["count"] for c in after_write.json()["cells"]} == _fresh(world)

    etag = after_write.headers["ETag"]
    assert client.get(AGG, headers={"If-None-Match": etag}).status_code == 304
    public = next(
        a for a in list_agreements(world.store, owner="citya") if a.grantee.kind == "public"
    )
    revoke_agreement(world.store, public.id, reason="policy review", clock=world.clock)
    after_policy = client.get(AGG, headers={"If-None-Match": etag})
    assert after_policy.status_code == 200 and after_policy.headers["ETag"] != etag
    assert {c["key"][0]: c["count"] for c in after_policy.json()["cells"]} == _fresh(world)
