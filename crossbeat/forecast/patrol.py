"""Shared patrol plans over forecast hot spots, with Koper dwell times (issue #13).

:func:`plan_patrols` allocates boxes (forecast cells) to the units on shift across
agencies and routes each unit through its boxes:

* **minimum coverage**: every jurisdiction that shares data gets its
  ``min_boxes_per_jurisdiction`` highest-risk boxes first; then boxes are taken in
  descending risk (patrol time follows risk: proportional allocation);
* **capped**: a box goes to one unit only, and no box already claimed by a partner's plan
  (``taken``) is assigned again, so two agencies never send units to the same box
  unknowingly; a unit holds at most as many boxes as it can cycle through within
  ``revisit_max`` minutes;
* **Koper dwell**: each visit lasts a seeded random 10–16 minutes (Koper 1995), and a unit
  repeats its cycle so that every box is revisited within ``revisit_max`` (about 2 h);
* **routes**: the cycle through a unit's boxes is a travelling-salesman tour solved with
  OR-Tools on travel times at ``speed_kmh``: driving distances on a road network when one
  is given (:mod:`crossbeat.forecast.roads`, an agency's OpenStreetMap extract;
  ``routing = "road network (FILE)"``), else straight-line distances
  (``routing = "straight-line"``). The plan always says which.

The plan is reproducible: the same inputs and ``seed`` give the same plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from crossbeat.forecast.roads import RoadNetwork

Travel = Callable[["Box", "Box"], float]


@dataclass(frozen=True)
class Box:
    """A forecast cell to patrol: id, metric centre, risk and the jurisdiction it lies in."""

    cell: int
    x: float
    y: float
    risk: float
    jurisdiction: str


@dataclass(frozen=True)
class Unit:
    """A unit on shift, its agency and the jurisdictions it may patrol."""

    id: str
    agency: str
    jurisdictions: tuple[str, ...]


@dataclass(frozen=True)
class PatrolRules:
    """The constraints every plan respects (minutes, km/h)."""

    shift_minutes: float = 480.0
    dwell_min: float = 10.0
    dwell_max: float = 16.0
    revisit_max: float = 120.0
    speed_kmh: float = 25.0
    min_boxes_per_jurisdiction: int = 1

    def travel(self, a: Box, b: Box) -> float:
        """Return straight-line travel minutes between two boxes."""
        return float(np.hypot(a.x - b.x, a.y - b.y)) / (self.speed_kmh * 1000.0 / 60.0)


@dataclass(frozen=True)
class Visit:
    """One stay of a unit in a box, in minutes from the start of the shift."""

    unit: str
    cell: int
    start: float
    end: float


@dataclass(frozen=True)
class PatrolPlan:
    """The boxes each unit holds, its route (cycle order) and its visits."""

    seed: int
    rules: PatrolRules
    routing: str
    assignment: dict[str, tuple[int, ...]]
    visits: tuple[Visit, ...]
    uncovered: tuple[str, ...] = field(default=())

    def minutes_by_cell(self) -> dict[int, float]:
        """Return the planned dosage (minutes) per box."""
        out: dict[int, float] = {}
        for v in self.visits:
            out[v.cell] = out.get(v.cell, 0.0) + v.end - v.start
        return out


def _tour(boxes: Sequence[Box], travel: Travel) -> tuple[list[int], float]:
    """Return the shortest cycle order (OR-Tools) and its travel minutes."""
    n = len(boxes)
    if n <= 2:
        order = list(range(n))
        return order, sum(
            travel(boxes[order[i]], boxes[order[(i + 1) % n]]) for i in range(n)
        ) if n == 2 else 0.0
    scale = 1000.0
    matrix = [[int(round(travel(a, b) * scale)) for b in boxes] for a in boxes]
    manager = pywrapcp.RoutingIndexManager(n, 1, 0)
    routing = pywrapcp.RoutingModel(manager)

    def cost(i: int, j: int) -> int:
        return matrix[manager.IndexToNode(i)][manager.IndexToNode(j)]

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(cost))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    solution = routing.SolveWithParameters(params)
    order, index = [], routing.Start(0)
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(routing.NextVar(index))
    minutes = sum(travel(boxes[order[i]], boxes[order[(i + 1) % n]]) for i in range(n))
    return order, minutes


def _cycle_fits(boxes: Sequence[Box], rules: PatrolRules, travel: Travel) -> bool:
    """Return whether a cycle at the longest dwell keeps every revisit within the limit."""
    if len(boxes) <= 1:
        return True
    # Gap between two visits of a box = the rest of the cycle (dwells + travel).
    _, minutes = _tour(boxes, travel)
    return (len(boxes) - 1) * rules.dwell_max + minutes <= rules.revisit_max


def plan_patrols(
    boxes: Iterable[Box],
    units: Sequence[Unit],
    rules: PatrolRules | None = None,
    *,
    seed: int = 0,
    taken: Iterable[int] = (),
    roads: RoadNetwork | None = None,
) -> PatrolPlan:
    """Allocate boxes to units and route them (see the module docstring).

    Parameters
    ----------
    boxes
        Candidate boxes (forecast cells with their risk).
    units
        Units on shift, across agencies.
    rules
        Constraints (default :class:`PatrolRules`).
    seed
        Seed for the dwell times and tie-breaks: the same seed gives the same plan.
    taken
        Cells already claimed by partner agencies' plans for the same shift.
    roads
        A road network (:func:`crossbeat.forecast.roads.load_osm`) in the boxes' frame:
        routes use driving distances on it; without one, straight lines (labelled).
    """
    rules = rules or PatrolRules()
    rng = np.random.default_rng(seed)
    claimed = set(taken)
    pool = sorted((b for b in boxes if b.cell not in claimed), key=lambda b: (-b.risk, b.cell))
    first: list[Box] = []
    seen: dict[str, int] = {}
    for b in pool:
        if seen.get(b.jurisdiction, 0) < rules.min_boxes_per_jurisdiction:
            seen[b.jurisdiction] = seen.get(b.jurisdiction, 0) + 1
            first.append(b)
    # Beyond ~12 boxes a unit the cycle limit binds: later boxes are never reached.
    order = first + [b for b in pool if b not in first][: 12 * len(units)]
    travel, routing = _travel(order, rules, roads)
    beats: dict[str, list[Box]] = {u.id: [] for u in units}
    uncovered: list[str] = []
    for b in order:
        eligible = [u for u in units if b.jurisdiction in u.jurisdictions]
        # The unit whose beat is nearest (an empty beat counts as far); seeded tie-break.
        eligible.sort(key=lambda u: (_distance(beats[u.id], b), rng.random()))
        placed = False
        for u in eligible:
            if _cycle_fits([*beats[u.id], b], rules, travel):
                beats[u.id].append(b)
                placed = True
                break
        if not placed and b in first:
            uncovered.append(b.jurisdiction)
    visits: list[Visit] = []
    assignment: dict[str, tuple[int, ...]] = {}
    for u in units:
        beat = beats[u.id]
        if not beat:
            assignment[u.id] = ()
            continue
        tour, _ = _tour(beat, travel)
        route = [beat[i] for i in tour]
        assignment[u.id] = tuple(b.cell for b in route)
        visits += _timeline(u.id, route, rules, rng, travel)
    return PatrolPlan(
        seed, rules, routing, assignment, tuple(visits), tuple(sorted(set(uncovered)))
    )


def _travel(
    boxes: Sequence[Box], rules: PatrolRules, roads: RoadNetwork | None
) -> tuple[Travel, str]:
    """Return the travel-minutes function between boxes and the routing label."""
    if roads is None or not boxes:
        return rules.travel, "straight-line"
    metres, missing = roads.travel_matrix(
        np.array([b.x for b in boxes]), np.array([b.y for b in boxes])
    )
    per_minute = rules.speed_kmh * 1000.0 / 60.0
    at = {b.cell: i for i, b in enumerate(boxes)}

    def travel(a: Box, b: Box) -> float:
        return float(metres[at[a.cell], at[b.cell]]) / per_minute

    label = f"road network ({roads.source})"
    if missing:
        label += f"; {missing} box pairs without a road path: straight-line"
    return travel, label


def _distance(beat: list[Box], b: Box) -> float:
    if not beat:
        return 1e12
    return min(float(np.hypot(a.x - b.x, a.y - b.y)) for a in beat)


def _timeline(
    unit: str, route: list[Box], rules: PatrolRules, rng: np.random.Generator, travel: Travel
) -> list[Visit]:
    """Repeat the cycle over the shift, each stay a seeded 10–16 minutes."""
    out: list[Visit] = []
    t, k = 0.0, 0
    while True:
        box = route[k % len(route)]
        if k:
            t += travel(route[(k - 1) % len(route)], box)
        dwell = float(rng.uniform(rules.dwell_min, rules.dwell_max))
        if t + dwell > rules.shift_minutes:
            break
        out.append(Visit(unit, box.cell, t, t + dwell))
        t += dwell
        k += 1
    return out
