"""Vector tiles over HTTP: policy, suppression, ETag/304, invalidation, audit (issue #8)."""

from __future__ import annotations

import math
from typing import Any

import h3
import mapbox_vector_tile
import pytest
from sqlalchemy import select, update

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.audit.changes import record_change
from crossbeat.sharing.agreements import create_agreement, list_agreements, revoke_agreement
from crossbeat.sharing.mvt import EXTENT, mercator, tile_envelope
from crossbeat.sharing.overrides import tighten_public_policy
from crossbeat.sharing.reads import aggregate
from crossbeat.sharing.request import Viewer
from crossbeat.sharing.tiles import clear_cache, h3_column, tile, tile_bounds
from crossbeat.store import Store, generation, open_store
from crossbeat.store.schema import incidents
from tests.api_support import CANARIES, World, assert_error, build_world, events, last_seq
from tests.sharing_support import AGENCIES, AREA, NOW

MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture
def world(store: Store) -> World:
    clear_cache()
    return build_world(store)


def xy(z: int, lon: float, lat: float) -> tuple[int, int]:
    """Return the tile column and row holding a point."""
    n = 1 << z
    r = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(r)) / math.pi) / 2 * n)


def area_tiles(z: int) -> list[tuple[int, int, int]]:
    x0, y0 = xy(z, AREA[0], AREA[3])
    x1, y1 = xy(z, AREA[2], AREA[1])
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def features(data: bytes, layer: str) -> list[dict[str, Any]]:
    return mapbox_vector_tile.decode(data).get(layer, {}).get("features", []) if data else []


def units(z: int, x: int, y: int, lon: float, lat: float) -> tuple[float, float]:
    min_x, min_y, max_x, max_y = tile_envelope(z, x, y)
    mx, my = mercator(lon, lat)
    return ((mx - min_x) / (max_x - min_x) * EXTENT, (my - min_y) / (max_y - min_y) * EXTENT)


def stored(store: Store) -> dict[str, Any]:
    with store.connect() as conn:
        return {r.public_id: r for r in conn.execute(select(incidents))}


def all_points(client: Any, z: int = 13) -> dict[str, tuple[tuple[int, int, int], Any]]:
    out = {}
    for t in area_tiles(z):
        response = client.get("/api/v1/tiles/incidents/{}/{}/{}.mvt".format(*t))
        assert response.status_code == 200, response.text
        for f in features(response.content, "incidents"):
            out[f["properties"]["id"]] = (t, f)
    return out


def test_public_tiles_have_snapped_points_and_no_sensitive_incident(world: World) -> None:
    client = world.client()
    rows = stored(world.store)
    got = all_points(client)
    canaries = {c.public_id for c in CANARIES}
    assert got and not set(got) & canaries
    visible = {i.public_id for i in world.normal}
    assert set(got) <= visible
    for public_id, ((z, x, y), f) in got.items():
        row = rows[public_id]
        exact = units(z, x, y, row.lon, row.lat)
        gx, gy = f["geometry"]["coordinates"]
        assert math.dist(exact, (gx, gy)) > 2, "the public got an exact point"
        assert set(f["properties"]) <= {"id", "agency_id", "crime_against", "nibrs",
                                        "occurred_from"}  # fmt: skip


def test_a_partner_at_h3_9_gets_one_anchor_per_cell_never_the_point(world: World) -> None:
    (public,) = list_agreements(world.store, owner="countyb")  # only the partner grant left
    revoke_agreement(world.store, public.id, reason="test", clock=world.clock)
    create_agreement(
        world.store, "countyb", "citya", precision="h3:9", fields=["offence", "location"],
        offences=["all"], purposes=["analysis"],
        approved_by=("b.admin",), clock=world.clock,
    )  # fmt: skip
    client, _ = world.signed_in("a.analyst")
    rows = stored(world.store)
    got = all_points(client)
    theirs = {k: v for k, v in got.items() if v[1]["properties"]["agency_id"] == "countyb"}
    assert theirs
    by_cell: dict[str, set[tuple[int, int]]] = {}
    for public_id, ((z, x, y), f) in theirs.items():
        row = rows[public_id]
        gx, gy = f["geometry"]["coordinates"]
        assert math.dist(units(z, x, y, row.lon, row.lat), (gx, gy)) > 2
        by_cell.setdefault(row.h3_9, set()).add((gx, gy))
        assert "occurred_from" not in f["properties"]  # not granted
    # Every incident of a cell (and jurisdiction set) is drawn at that cell's anchor.
    assert all(len(points) == 1 for points in by_cell.values()), by_cell


def test_hexagon_counts_are_the_aggregates_with_their_suppression(world: World) -> None:
    viewer = Viewer.public()
    for z in (10, 12):
        col = h3_column(z)
        want = aggregate(world.store, viewer, by=(col,)).cells
        seen: dict[str, Any] = {}
        for t in area_tiles(z):
            result = tile(world.store, viewer, *t)
            for f in features(result.data, "hexagons"):
                seen[f["properties"]["h3"]] = f["properties"]
        # Each cell is in exactly one tile, counted whole, hidden exactly when hidden.
        assert set(seen) == {cell for (cell,) in want if cell != "none"}
        for (cell,), n in want.items():
            if cell == "none":
                continue
            props = seen[cell]
            if n is None:
                assert "count" not in props and "count" in props["hidden"].split(",")
            else:
                assert props["count"] == n
        assert any(n is None for n in want.values()) or z == 10


def test_etag_304_and_cache_headers(world: World) -> None:
    z, x, y = area_tiles(13)[0]
    url = f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt"
    public = world.client()
    first = public.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == MVT
    assert first.headers["cache-control"] == "public, max-age=60"
    etag = first.headers["etag"]
    again = public.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert public.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    client, _ = world.signed_in("a.analyst")
    mine = client.get(url)
    assert mine.headers["cache-control"] == "private, no-store"
    assert mine.headers["etag"] != etag  # another policy, another tile
    assert client.get(url, headers={"If-None-Match": mine.headers["etag"]}).status_code == 304


def _etag(world: World, client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return str(response.headers["etag"])


def test_a_write_and_a_revoke_invalidate_the_tile(world: World) -> None:
    target = world.normal[0]
    z, x, y = 13, *xy(13, target.lon, target.lat)
    url = f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt"
    public = world.client()
    before = public.get(url)
    assert target.public_id in {
        f["properties"]["id"] for f in features(before.content, "incidents")
    }
    # The world's ids are fixed by the test (not incident_id()), so this withdraws the
    # record as withdraw_records does: the row and its audited change, one transaction.
    with world.store.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == target.id).values(withdrawn_at=NOW))
        record_change(world.store, conn, Action.WITHDRAW, None, resource_type="incident",
                      owners=[target.owner], record_ids=[target.id],
                      details={"operation": "withdraw"})  # fmt: skip
    after = public.get(url, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert target.public_id not in {
        f["properties"]["id"] for f in features(after.content, "incidents")
    }
    # Revoking the owner's public agreement empties its part of the tile at once.
    (agreement,) = list_agreements(world.store, owner=target.owner)
    revoke_agreement(world.store, agreement.id, reason="test", clock=world.clock)
    last = public.get(url, headers={"If-None-Match": after.headers["etag"]})
    assert last.status_code == 200 and last.headers["etag"] != after.headers["etag"]
    owners = {f["properties"]["agency_id"] for f in features(last.content, "incidents")}
    assert target.owner not in owners
    # A public-policy change (coarser public points) gives a new tile too.
    other = next(a for a in sorted(AGENCIES) if a != target.owner)
    tighten_public_policy(world.store, other, {"precision": "h3:7"}, clock=world.clock)
    final = public.get(url, headers={"If-None-Match": last.headers["etag"]})
    assert final.status_code == 200 and final.headers["etag"] != last.headers["etag"]


def test_the_generation_counts_changes_not_reads(store: Store) -> None:
    with store.connect() as conn:
        start = generation.current(conn)
    append(store, AuditEvent(action=Action.READ, actor="x", resource_type="incident"))
    with store.connect() as conn:
        assert generation.current(conn) == start
    append(store, AuditEvent(action=Action.INGEST, actor="x", resource_type="incident"))
    append(store, AuditEvent(action=Action.AGREEMENT_CHANGE, actor="x", resource_type="agreement"))
    with store.connect() as conn:
        assert generation.current(conn) == start + 2


@pytest.mark.parametrize(
    "path",
    ["23/0/0", "-1/0/0", "a/0/0", "2/4/0", "2/0/4", "1/0/99999999999", "0/0/x"],
)
def test_bad_tiles_are_400(world: World, path: str) -> None:
    body = assert_error(world.client().get(f"/api/v1/tiles/incidents/{path}.mvt"), 400)
    assert "tile" in body["error"] or "zoom" in body["error"] or "outside" in body["error"]


def test_one_audit_event_per_owner_per_tile(world: World) -> None:
    client, _ = world.signed_in("a.analyst")
    start = last_seq(world.store)
    z, x, y = 10, *xy(10, -122.65, 45.52)
    response = client.get(f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt")
    assert response.status_code == 200
    got = events(world.store, start, resource_type="incident_tile")
    assert got and all(len(e.owner_agencies) == 1 for e in got)
    assert len({e.owner_agencies for e in got}) == len(got)
    total = sum(int(f["properties"].get("count", 0))
                for f in features(response.content, "hexagons"))  # fmt: skip
    assert sum(e.record_count for e in got) >= total > 0
    assert all(not e.record_ids for e in got)


def test_both_backends_draw_the_same_tiles(sqlite_url: str, pg_url: str, kek: Any) -> None:
    drawn = []
    for url in (sqlite_url, pg_url):
        clear_cache()
        store = open_store(url, kek=kek)
        world = build_world(store)
        tiles = {}
        for z in (10, 12, 13):
            for t in area_tiles(z):
                data = tile(world.store, Viewer.public(), *t).data
                layer = "incidents" if z >= 13 else "hexagons"
                tiles[t] = _shapes(features(data, layer), world)
        drawn.append(tiles)
    assert drawn[0].keys() == drawn[1].keys()
    for t in drawn[0]:
        a, b = drawn[0][t], drawn[1][t]
        assert [p for p, _ in a] == [p for p, _ in b], t
        for (_, ga), (_, gb) in zip(a, b, strict=True):
            assert math.dist(ga, gb) <= 2, (t, ga, gb)


def _shapes(found: list[dict[str, Any]], world: World) -> list[tuple[Any, tuple[float, float]]]:
    """Return (properties, centre) per feature; public ids become source ids (random)."""
    ids = {i.public_id: i.source_id for i in world.population}
    out = []
    for f in found:
        props = dict(f["properties"])
        if "id" in props:
            props["id"] = ids[props["id"]]
        geom = f["geometry"]
        if geom["type"] == "Point":
            centre = tuple(geom["coordinates"])
        else:
            ring = geom["coordinates"][0]
            centre = (sum(p[0] for p in ring[:-1]) / (len(ring) - 1),
                      sum(p[1] for p in ring[:-1]) / (len(ring) - 1))  # fmt: skip
        out.append((sorted(props.items()), centre))
    return sorted(out, key=lambda s: (s[0], s[1]))


def test_tile_bounds_round_trip() -> None:
    west, south, east, north = tile_bounds(13, *xy(13, -122.65, 45.52))
    assert west <= -122.65 < east and south <= 45.52 < north
    assert h3.is_valid_cell(h3.latlng_to_cell(45.52, -122.65, 9))


def test_public_tiles_are_counted_per_window_like_other_public_reads(world: World) -> None:
    from crossbeat.audit import public_reads

    before = last_seq(world.store)
    client = world.client()
    for z, x, y in area_tiles(12):
        assert client.get(f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt").status_code == 200
    assert events(world.store, before, action="read", actor="public") == []
    world.clock.advance(minutes=15)
    public_reads.flush(world.store, world.clock.now())
    reads = events(world.store, before, action="read", actor="public")
    # One event per owner (and one without owner for the tiles that drew nothing).
    assert all(len(e.owner_agencies) <= 1 for e in reads)
    assert {e.owner_agencies for e in reads} >= {("citya",), ("countyb",), ("transitc",)}
    assert all(not e.record_ids for e in reads)


def test_an_area_filter_keeps_the_tiles_to_the_area(world: World, tmp_path: Any) -> None:
    import json

    from shapely.geometry import Point, box, mapping

    from crossbeat.areas import add_layer

    mid = (AREA[0] + AREA[2]) / 2
    west = box(AREA[0] - 0.5, AREA[1] - 0.5, mid, AREA[3] + 0.5)
    path = tmp_path / "halves.geojson"
    feature = {"type": "Feature", "properties": {"NAME": "west"}, "geometry": mapping(west)}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    add_layer(world.store, "citya", "halves", path, name_field="NAME")
    # citya's analyst sees citya's records exactly, so their areas too (the public, at a
    # coarser precision, does not: filtering by them would tell what it may not see).
    client, _ = world.signed_in("a.analyst")
    with world.store.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(incidents))}
    everything = all_points(client)
    inside = {}
    for t in area_tiles(13):
        url = "/api/v1/tiles/incidents/{}/{}/{}.mvt".format(*t)
        response = client.get(url, params={"area": "citya/halves:west"})
        assert response.status_code == 200, response.text
        for f in features(response.content, "incidents"):
            inside[f["properties"]["id"]] = f
    assert inside and set(inside) < set(everything)
    for shown_id in inside:
        row = rows[shown_id]
        assert row.agency_id == "citya" and west.contains(Point(float(row.lon), float(row.lat)))
    assert len(inside) == sum(
        1 for i, (_, f) in everything.items() if f["properties"]["agency_id"] == "citya"
    )
    # Counted hexagons follow the same filter: no more than without it.
    z, x, y = area_tiles(10)[0]
    url = f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt"
    assert (
        client.get(url, params={"area": "citya/halves:west"}).headers["ETag"]
        != (client.get(url).headers["ETag"])
    )


def test_an_analysts_tiles_are_kept_for_that_analyst_until_the_data_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed-in viewer's tile is drawn once per ETag and viewer, audited every time.

    The same analyst asking again gets the kept tile (same bytes, same ETag, one more
    audit event); an officer of the same agency (other rules: no kept tile of theirs)
    gets a tile drawn for them; a withdrawal gives a new ETag, a new drawing and no
    withdrawn record.
    """
    from crossbeat.sharing import tiles as tiles_module

    drawn: list[str] = []
    real = tiles_module._points

    def counted(store: Store, conn: Any, p: Any, *args: Any) -> Any:
        drawn.append(p.viewer.id)
        return real(store, conn, p, *args)

    monkeypatch.setattr(tiles_module, "_points", counted)
    target = next(i for i in world.normal if i.owner == "citya")
    z, x, y = 13, *xy(13, target.lon, target.lat)
    url = f"/api/v1/tiles/incidents/{z}/{x}/{y}.mvt"
    client, _ = world.signed_in("a.analyst")
    start = last_seq(world.store)
    first = client.get(url)
    ids = {f["properties"]["id"] for f in features(first.content, "incidents")}
    assert target.id in ids  # the owner's analyst sees its own id
    again = client.get(url)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == "private, no-store"
    assert len(drawn) == 1
    audited = events(world.store, start, resource_type="incident_tile")
    assert sum(1 for e in audited if "citya" in e.owner_agencies) == 2
    officer, _ = world.signed_in("a.officer")
    assert officer.get(url).status_code == 200
    assert len(drawn) == 2
    with world.store.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == target.id).values(withdrawn_at=NOW))
        record_change(world.store, conn, Action.WITHDRAW, None, resource_type="incident",
                      owners=[target.owner], record_ids=[target.id],
                      details={"operation": "withdraw"})  # fmt: skip
    after = client.get(url)
    assert after.headers["etag"] != first.headers["etag"] and len(drawn) == 3
    assert target.id not in {f["properties"]["id"] for f in features(after.content, "incidents")}
