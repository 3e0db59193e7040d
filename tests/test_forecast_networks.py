"""Road networks stored per agency; routes by pgRouting on PostgreSQL, in Python on SQLite (#13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from crossbeat.audit.tables import audit_events
from crossbeat.cli import cli
from crossbeat.forecast.history import Frame
from crossbeat.forecast.networks import (
    PgRoutingNetwork,
    has_pgrouting,
    store_road_network,
    stored_road_network,
)
from crossbeat.forecast.plans import save_patrol_plan
from crossbeat.forecast.roads import RoadNetworkError, load_osm
from crossbeat.forecast.service import run_forecast
from crossbeat.sharing.request import Viewer
from crossbeat.store.schema import road_edges
from tests.api_support import build_world
from tests.sharing_support import Inc, insert_incidents, setup_agencies

START = datetime(2026, 6, 1, tzinfo=UTC)
FRAME = Frame(-122.66, 45.53)


def _streets(path, lon0=-122.70, lat0=45.50, n=12, step=0.006) -> None:
    """Write an OSM extract: an n x n street grid; the second row is one-way eastwards."""
    nodes, ways = [], []
    for i in range(n):
        for j in range(n):
            lat, lon = lat0 + i * step, lon0 + j * step
            nodes.append(f'<node id="{i * n + j + 1}" lat="{lat:.6f}" lon="{lon:.6f}"/>')
    for i in range(n):
        row = "".join(f'<nd ref="{i * n + j + 1}"/>' for j in range(n))
        col = "".join(f'<nd ref="{j * n + i + 1}"/>' for j in range(n))
        oneway = '<tag k="oneway" v="yes"/>' if i == 1 else ""
        ways.append(f'<way id="{i + 1}">{row}<tag k="highway" v="residential"/>{oneway}</way>')
        ways.append(f'<way id="{n + i + 1}">{col}<tag k="highway" v="residential"/></way>')
    path.write_text("<osm>" + "".join(nodes) + "".join(ways) + "</osm>")


def _points(k: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    # Two points on the one-way street (row 1), then random ones.
    lon = np.r_[-122.688, -122.652, rng.uniform(-122.70, -122.634, k)]
    lat = np.r_[45.506, 45.506, rng.uniform(45.50, 45.566, k)]
    x, y = FRAME.forward(lon, lat)
    return np.asarray(x, float), np.asarray(y, float)


def test_a_stored_network_routes_as_the_extract_does(store, tmp_path) -> None:
    setup_agencies(store)
    osm = tmp_path / "city.osm"
    _streets(osm)
    assert stored_road_network(store, "citya", FRAME) is None
    got = store_road_network(store, "citya", osm, by="ana")
    assert got["nodes"] == 144 and got["edges"] == 2 * 2 * 12 * 11 - 11
    # Storing again replaces the network (and is audited each time).
    store_road_network(store, "citya", osm, by="ana")
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(road_edges)).scalar() == got["edges"]
        kinds = conn.execute(select(audit_events.c.resource_type)).scalars().all()
    assert kinds.count("road_network") == 2
    net = stored_road_network(store, "citya", FRAME)
    assert net is not None
    if store.engine.dialect.name == "postgresql":
        # PostGIS servers of this project have pgRouting: paths come from pgr_dijkstraCostMatrix.
        assert has_pgrouting(store) and isinstance(net, PgRoutingNetwork)
        assert net.source == "pgRouting: city.osm"
    else:
        assert not isinstance(net, PgRoutingNetwork) and net.source == "stored: city.osm"
    x, y = _points()
    theirs, missing = load_osm(osm, FRAME).travel_matrix(x, y)
    ours, ours_missing = net.travel_matrix(x, y)
    assert missing == ours_missing == 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-3)
    # Westwards along the one-way street means a detour round the block (2 x 667 m).
    assert ours[1, 0] - ours[0, 1] == pytest.approx(2 * 0.006 * 111_000, rel=0.02)


def test_patrol_plans_use_the_stored_network_else_straight_lines(store, tmp_path) -> None:
    setup_agencies(store)
    rng = np.random.default_rng(2)
    incidents = [
        Inc("citya", f"r{i}", 45.53 + rng.normal(0, 0.004), -122.66 + rng.normal(0, 0.006),
            ["220"], START - timedelta(days=float(rng.uniform(1, 300))))
        for i in range(200)
    ]  # fmt: skip
    insert_incidents(store, incidents)
    card = run_forecast(
        store,
        Viewer.user("ana", "citya", ["analyst"]),
        category="220",
        start=START,
        model="naive",
        cell_m=200.0,
        fraction=0.05,
    )
    before = save_patrol_plan(store, "citya", card.id, units=2, shift_start=START, seed=1)
    assert before["routing"] == "straight-line"
    osm = tmp_path / "city.osm"
    _streets(osm)
    out = CliRunner().invoke(
        cli, ["patrol", "roads", "--db", store.url, "--agency", "citya", str(osm)]
    )
    assert out.exit_code == 0 and "144 nodes" in out.output, out.output
    after = save_patrol_plan(
        store, "citya", card.id, units=2, shift_start=START + timedelta(days=1), seed=1
    )
    engine = "pgRouting" if store.engine.dialect.name == "postgresql" else "stored"
    assert after["routing"] == f"road network ({engine}: city.osm)"
    # Another agency's plans do not use citya's network.
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm></osm>")
    with pytest.raises(RoadNetworkError):
        store_road_network(store, "countyb", bad)
    out = CliRunner().invoke(
        cli, ["patrol", "roads", "--db", store.url, "--agency", "countyb", str(bad)]
    )
    assert out.exit_code != 0 and "no drivable road" in out.output


def test_the_api_plans_on_the_stored_network(store, tmp_path) -> None:
    world = build_world(store)
    now = world.clock.now()
    rng = np.random.default_rng(3)
    insert_incidents(
        store,
        [
            Inc("citya", f"q{i}", 45.53 + rng.normal(0, 0.004), -122.66 + rng.normal(0, 0.006),
                ["220"], now - timedelta(days=float(rng.uniform(1, 300))))
            for i in range(200)
        ],
    )  # fmt: skip
    client, headers = world.signed_in("a.analyst")
    body = {"category": "220", "start": now.isoformat(), "model": "naive", "fraction": 0.05}
    card = client.post("/api/v1/forecasts", json=body, headers=headers)
    assert card.status_code == 201, card.text
    plan = {"model_card_id": card.json()["id"], "units": 1, "shift_start": now.isoformat()}
    first = client.post("/api/v1/patrol-plans", json=plan, headers=headers)
    assert first.status_code == 201 and first.json()["routing"] == "straight-line"
    osm = tmp_path / "city.osm"
    _streets(osm)
    store_road_network(store, "citya", osm)
    later = {**plan, "shift_start": (now + timedelta(days=1)).isoformat()}
    second = client.post("/api/v1/patrol-plans", json=later, headers=headers)
    assert second.status_code == 201, second.text
    assert second.json()["routing"].startswith("road network (") and "city.osm" in second.text
