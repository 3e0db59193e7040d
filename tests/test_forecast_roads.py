"""Patrol routes on a road network read from an OpenStreetMap extract (issue #13).

The fixture tests/data/patrol_roads.osm is hand-written: two streets 222 m apart across a
river, a bridge at the east end, a one-way street in the middle, a footpath and a
private road that must not be driven, and an unconnected island.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossbeat.forecast.history import Frame
from crossbeat.forecast.patrol import Box, PatrolRules, Unit, plan_patrols
from crossbeat.forecast.roads import RoadNetwork, RoadNetworkError, load_osm

OSM = Path(__file__).parent / "data" / "patrol_roads.osm"
FRAME = Frame(-79.395, 43.651)


@pytest.fixture(scope="module")
def roads() -> RoadNetwork:
    return load_osm(OSM, FRAME)


def _xy(lon: float, lat: float) -> tuple[float, float]:
    x, y = FRAME.forward(np.array([lon]), np.array([lat]))
    return float(x[0]), float(y[0])


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


SW, S, SE = _xy(-79.400, 43.650), _xy(-79.395, 43.650), _xy(-79.390, 43.650)
NW, N, NE = _xy(-79.400, 43.652), _xy(-79.395, 43.652), _xy(-79.390, 43.652)


def test_only_drivable_ways_become_roads(roads: RoadNetwork) -> None:
    # Nodes 1-6 and the island's two; the footpath's own node 9 is left out.
    assert roads.nodes == 8
    # South and north streets (2 segments each, both ways), bridge (both ways),
    # one-way (1), island (both ways); not the footpath nor the private road.
    assert roads.edges == 2 * 2 + 2 * 2 + 2 + 1 + 2
    assert roads.source == "patrol_roads.osm"


def test_driving_distances_follow_roads_and_one_way_rules(roads: RoadNetwork) -> None:
    d, missing = roads.travel_matrix(np.array([SW[0], NW[0]]), np.array([SW[1], NW[1]]))
    assert missing == 0
    # North-west to south-west: down the one-way street in the middle.
    assert d[1, 0] == pytest.approx(_metres(NW, N) + _metres(N, S) + _metres(S, SW), rel=1e-9)
    # Back up: the one-way street is closed that way, so round by the bridge.
    assert d[0, 1] == pytest.approx(
        _metres(SW, S) + _metres(S, SE) + _metres(SE, NE) + _metres(NE, N) + _metres(N, NW),
        rel=1e-9,
    )
    assert d[0, 1] > 7 * _metres(SW, NW)  # nowhere near the straight line


def test_unreachable_pairs_fall_back_to_straight_lines_and_are_counted(
    roads: RoadNetwork,
) -> None:
    island = _xy(-79.400, 43.660)
    d, missing = roads.travel_matrix(np.array([SW[0], island[0]]), np.array([SW[1], island[1]]))
    assert missing == 2
    assert d[0, 1] == pytest.approx(_metres(SW, island))


def _boxes() -> list[Box]:
    return [
        Box(1, *SW, 5.0, "j"),
        Box(2, *NW, 4.0, "j"),
        Box(3, *SE, 3.0, "j"),
    ]


def test_patrol_routes_use_road_distances_and_say_so(roads: RoadNetwork) -> None:
    rules = PatrolRules(shift_minutes=240, speed_kmh=30)
    units = [Unit("u1", "a", ("j",))]
    on_roads = plan_patrols(_boxes(), units, rules, seed=4, roads=roads)
    straight = plan_patrols(_boxes(), units, rules, seed=4)
    assert on_roads.routing == "road network (patrol_roads.osm)"
    assert straight.routing == "straight-line"
    boxes = {b.cell: b for b in _boxes()}
    index = {1: 0, 2: 1, 3: 2}
    xs = np.array([b.x for b in _boxes()])
    ys = np.array([b.y for b in _boxes()])
    metres, _ = roads.travel_matrix(xs, ys)
    per_minute = rules.speed_kmh * 1000 / 60
    visits = on_roads.visits
    assert len({v.cell for v in visits}) == 3
    for a, b in zip(visits, visits[1:], strict=False):
        # Feasible: each gap is exactly the drive on the roads between the two boxes.
        drive = metres[index[a.cell], index[b.cell]] / per_minute
        assert b.start - a.end == pytest.approx(drive)
        assert drive >= rules.travel(boxes[a.cell], boxes[b.cell]) - 1e-9
        assert rules.dwell_min <= b.end - b.start <= rules.dwell_max
    # The same inputs and seed give the same plan.
    assert plan_patrols(_boxes(), units, rules, seed=4, roads=roads) == on_roads


def test_unreadable_or_roadless_extracts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RoadNetworkError, match="no such"):
        load_osm(tmp_path / "none.osm", FRAME)
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node id='1' lat='x'")
    with pytest.raises(RoadNetworkError, match="not a readable"):
        load_osm(bad, FRAME)
    paths = tmp_path / "paths.osm"
    paths.write_text(
        "<osm><node id='1' lat='43.65' lon='-79.4'/><node id='2' lat='43.66' lon='-79.4'/>"
        "<way id='1'><nd ref='1'/><nd ref='2'/><tag k='highway' v='footway'/></way></osm>"
    )
    with pytest.raises(RoadNetworkError, match="no drivable road"):
        load_osm(paths, FRAME)


def test_a_pbf_extract_gives_the_same_network(tmp_path: Path, roads: RoadNetwork) -> None:
    osmium = pytest.importorskip("osmium")
    pbf = tmp_path / "patrol_roads.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(OSM)):
            if obj.is_node():
                writer.add_node(obj)
            elif obj.is_way():
                writer.add_way(obj)
    other = load_osm(pbf, FRAME)
    assert other.nodes == roads.nodes and other.edges == roads.edges
    assert np.allclose(other.graph.toarray(), roads.graph.toarray())
