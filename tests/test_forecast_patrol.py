"""Patrol plans respect every constraint, routes are feasible, seeds reproduce plans (issue #13)."""

from __future__ import annotations

import numpy as np
import pytest

from crossbeat.forecast.patrol import Box, PatrolPlan, PatrolRules, Unit, plan_patrols


def _boxes(seed: int = 3, n: int = 80) -> list[Box]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(0, 8000, 2)
        out.append(
            Box(i, float(x), float(y), float(rng.gamma(1.0)), "north" if y > 4000 else "south")
        )
    # A sharing jurisdiction with only low-risk boxes must still be covered.
    out.append(Box(n, 9000.0, 500.0, 0.001, "harbour"))
    return out


UNITS = [
    Unit("a1", "agency-a", ("north", "south")),
    Unit("a2", "agency-a", ("north", "south")),
    Unit("b1", "agency-b", ("south", "harbour")),
]
RULES = PatrolRules()


@pytest.fixture(scope="module")
def plan() -> PatrolPlan:
    return plan_patrols(_boxes(), UNITS, RULES, seed=11)


def test_every_visit_dwells_ten_to_sixteen_minutes_within_the_shift(plan: PatrolPlan) -> None:
    assert plan.visits
    for v in plan.visits:
        assert RULES.dwell_min <= v.end - v.start <= RULES.dwell_max
        assert 0 <= v.start < v.end <= RULES.shift_minutes


def test_routes_are_feasible_at_the_stated_speed(plan: PatrolPlan) -> None:
    boxes = {b.cell: b for b in _boxes()}
    for unit in plan.assignment:
        mine = [v for v in plan.visits if v.unit == unit]
        for a, b in zip(mine, mine[1:], strict=False):
            assert b.start - a.end >= RULES.travel(boxes[a.cell], boxes[b.cell]) - 1e-9
    assert plan.routing == "straight-line"


def test_every_box_is_revisited_within_two_hours(plan: PatrolPlan) -> None:
    for cell in {v.cell for v in plan.visits}:
        times = sorted((v.start, v.end) for v in plan.visits if v.cell == cell)
        for (_, end), (start, _) in zip(times, times[1:], strict=False):
            assert start - end <= RULES.revisit_max
        # A visit late enough that the box is not left unpatrolled at the end either.
        assert RULES.shift_minutes - times[-1][1] <= RULES.revisit_max + RULES.dwell_max


def test_no_box_goes_to_two_units_and_units_stay_in_their_jurisdictions(plan: PatrolPlan) -> None:
    boxes = {b.cell: b for b in _boxes()}
    cells = [c for beat in plan.assignment.values() for c in beat]
    assert len(cells) == len(set(cells))
    for u in UNITS:
        assert all(boxes[c].jurisdiction in u.jurisdictions for c in plan.assignment[u.id])
    assert {v.cell for v in plan.visits} <= set(cells)


def test_every_sharing_jurisdiction_is_covered(plan: PatrolPlan) -> None:
    boxes = {b.cell: b for b in _boxes()}
    covered = {boxes[c].jurisdiction for beat in plan.assignment.values() for c in beat}
    assert covered == {"north", "south", "harbour"}
    assert plan.uncovered == ()


def test_patrol_time_follows_risk(plan: PatrolPlan) -> None:
    boxes = sorted(_boxes(), key=lambda b: -b.risk)
    chosen = {c for beat in plan.assignment.values() for c in beat}
    top = {b.cell for b in boxes[:5]}
    assert top <= chosen
    assert np.mean([b.risk for b in boxes if b.cell in chosen]) > np.mean([b.risk for b in boxes])


def test_a_plan_is_reproducible_from_its_seed(plan: PatrolPlan) -> None:
    again = plan_patrols(_boxes(), UNITS, RULES, seed=11)
    assert again == plan
    other = plan_patrols(_boxes(), UNITS, RULES, seed=12)
    assert other.visits != plan.visits


def test_boxes_claimed_by_a_partner_are_never_assigned_again(plan: PatrolPlan) -> None:
    partner = set(plan.assignment["a1"])
    mine = plan_patrols(_boxes(), UNITS[1:], RULES, seed=11, taken=partner)
    assert not partner & {c for beat in mine.assignment.values() for c in beat}


def test_a_jurisdiction_no_unit_may_enter_is_reported_uncovered() -> None:
    p = plan_patrols(_boxes(), UNITS[:2], RULES, seed=1)
    assert p.uncovered == ("harbour",)


def test_dosage_evaluation_finds_a_known_effect_and_no_effect_when_there_is_none() -> None:
    from crossbeat.forecast.dosage import dosage_effect

    rng = np.random.default_rng(4)
    n = 4000
    expected = rng.uniform(0.5, 2.0, n)
    minutes = np.where(rng.random(n) < 0.5, 30.0, 0.0)
    halved = rng.poisson(expected * np.where(minutes > 0, 0.5, 1.0))
    e = dosage_effect(minutes, expected, halved)
    assert e.ci_low < 0.5 < e.ci_high and e.rate_ratio == pytest.approx(0.5, abs=0.05)
    assert e.p_value < 1e-6
    same = dosage_effect(minutes, expected, rng.poisson(expected))
    assert same.ci_low < 1.0 < same.ci_high and same.p_value > 0.01
    empty = dosage_effect(np.zeros(3), np.ones(3), np.ones(3))
    assert np.isnan(empty.rate_ratio)
