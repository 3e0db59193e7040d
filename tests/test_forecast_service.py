"""Forecasts on the store: policy-filtered reads, model cards, audit, opt-in categories (#13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from crossbeat.audit.tables import audit_events as audit_log
from crossbeat.forecast.service import ForecastError, get_model_card, list_model_cards, run_forecast
from crossbeat.sharing.request import Viewer
from tests.sharing_support import Inc, insert_incidents, setup_agencies

START = datetime(2026, 6, 1, tzinfo=UTC)


def _population() -> list[Inc]:
    rng = np.random.default_rng(5)
    hot = [(-122.66, 45.53), (-122.64, 45.52), (-122.68, 45.545)]
    out = []
    for i in range(400):
        if rng.random() < 0.8:
            lon, lat = hot[int(rng.integers(0, 3))]
            lon, lat = lon + rng.normal(0, 0.0008), lat + rng.normal(0, 0.0006)
        else:
            lon, lat = rng.uniform(-122.695, -122.625), rng.uniform(45.505, 45.555)
        when = START - timedelta(days=float(rng.uniform(1, 400)))
        code = "220" if i % 10 else "35A"
        out.append(Inc("citya", f"b{i}", float(lat), float(lon), [code], when))
    return out


@pytest.fixture
def world(store):
    setup_agencies(store)
    insert_incidents(store, _population())
    return store


ANALYST = Viewer.user("ana", "citya", ["analyst"])


def test_a_forecast_stores_its_model_card_with_backtest_and_audit(world) -> None:
    card = run_forecast(
        world, ANALYST, category="220", start=START, model="sepp", cell_m=200.0, fraction=0.05
    )
    assert card.data_snapshot["records"] > 300 and card.data_snapshot["owners"] == {
        "citya": card.data_snapshot["records"]
    }
    # The grid is clipped to City A's jurisdiction (a 0.08° x 0.06° box, 41.7 km²).
    assert card.grid["clipped"] and card.grid["area_m2"] == pytest.approx(41.67e6, rel=0.005)
    assert card.training_to == START and card.window_to == START + timedelta(days=7)
    scores = card.backtest["models"]["sepp"]["0.05"]
    assert scores["pai"] > 1 and 0 <= scores["hit_rate"] <= 1
    assert {"naive", "kde"} <= set(card.backtest["models"])
    assert card.forecast["cells"] and card.accountability["concentration"]["largest_share"] > 0
    again = get_model_card(world, card.id, "citya")
    assert again.params == card.params and again.forecast == card.forecast
    with world.begin() as conn:
        events = conn.execute(select(audit_log.c.resource_type, audit_log.c.details)).all()
    assert any(r[0] == "model_card" and r[1]["model_card"] == card.id for r in events)
    # A second forecast sees the first in its accountability figures.
    second = run_forecast(
        world, ANALYST, category="220", start=START + timedelta(days=7), model="naive", cell_m=200.0
    )
    assert second.accountability["feedback"]["previous_forecasts"] == 1
    assert second.accountability["persistence"][0]["share"] >= 0
    assert [c.id for c in list_model_cards(world, "citya")] == [second.id, card.id]


def test_the_model_chosen_on_validation_is_offered_with_its_fitted_members(world) -> None:
    card = run_forecast(
        world,
        ANALYST,
        category="220",
        start=START,
        model="ensemble-decayed",
        cell_m=200.0,
        fraction=0.05,
    )
    members = card.params["members"]
    assert [m["model"] for m in members] == ["sepp", "decayed"]
    assert members[1]["half_life_days"] == 90.0
    scores = card.backtest["models"]["ensemble-decayed"]["0.05"]
    assert scores["pai"] > 1 and 0 <= scores["hit_rate"] <= 1


def test_the_count_model_chosen_online_names_its_choice_and_evidence(world) -> None:
    card = run_forecast(
        world,
        ANALYST,
        category="220",
        start=START,
        model="counts-selected",
        cell_m=200.0,
        fraction=0.05,
    )
    params = card.params
    names = [m["model"] for m in params["members"]]
    assert names[0] == "naive" and params["chosen"] in names
    # A fresh fit is chosen on its six warm-up windows before the forecast's start.
    assert params["windows_scored"] == params["warmup_windows"] == 6
    assert set(params["hits"]) == set(names)
    assert params["hits"][params["chosen"]] == max(params["hits"].values())
    scores = card.backtest["models"]["counts-selected"]["0.05"]
    assert 0 <= scores["hit_rate"] <= 1


def test_borrowing_reads_only_forecastable_categories_and_names_its_choice(world) -> None:
    card = run_forecast(
        world, ANALYST, category="220", start=START, model="borrowed", cell_m=200.0, fraction=0.05
    )
    params = card.params
    names = [m["model"] for m in params["members"]]
    assert names[0] == "naive" and params["chosen"] in names
    assert params["windows_scored"] == params["warmup_windows"] == 6
    assert params["hits"][params["chosen"]] == max(params["hits"].values())
    # The drug offences in the store are not forecastable, so they steer nothing: the
    # read it borrows from holds burglaries only, and the card says so.
    related = card.data_snapshot["related"]
    assert related["categories"] == {"220": card.data_snapshot["records"]}
    assert {m.get("related") for m in params["members"]} == {"all categories"}
    assert 0 <= card.backtest["models"]["borrowed"]["0.05"]["hit_rate"] <= 1
    # Both reads are audited: the category, then the categories it may borrow from.
    with world.begin() as conn:
        reads = conn.execute(
            select(audit_log.c.details).where(audit_log.c.resource_type == "incident_arrays")
        ).all()
    offences = [sorted(r[0]["request"]["offences"] or []) for r in reads[-2:]]
    assert offences[0] == ["220"] and "35A" not in offences[1] and "220" in offences[1]
    # An agency that opts in to forecasting drug offences lets them be borrowed from.
    opted = run_forecast(
        world, ANALYST, category="220", start=START, model="borrowed", cell_m=200.0,
        fraction=0.05, allowed=frozenset({"220", "35A"}),
    )  # fmt: skip
    assert set(opted.data_snapshot["related"]["categories"]) == {"220", "35A"}
    assert "35A" in {m.get("related") for m in opted.params["members"]}


def test_a_card_that_borrowed_names_every_agency_whose_records_it_used(world) -> None:
    from crossbeat.sharing.agreements import create_agreement
    from tests.sharing_support import ADMINS, add_admins

    # County B shares its vehicle thefts with City A, and nothing else.
    add_admins(world, "countyb")
    create_agreement(
        world, "countyb", "citya", offences=["23F"], fields=["all"], precision="exact",
        purposes=["analysis"], approved_by=ADMINS["countyb"],
    )  # fmt: skip
    rng = np.random.default_rng(9)
    insert_incidents(world, [
        Inc("countyb", f"v{i}", 45.53 + rng.normal(0, 0.002), -122.66 + rng.normal(0, 0.003),
            ["23F"], START - timedelta(days=float(rng.uniform(1, 300))))
        for i in range(60)
    ])  # fmt: skip
    card = run_forecast(
        world, ANALYST, category="220", start=START, model="borrowed", cell_m=200.0,
        fraction=0.05,
    )  # fmt: skip
    # The burglaries are City A's alone; what it borrowed holds County B's thefts.
    assert card.data_snapshot["owners"] == {"citya": card.data_snapshot["records"]}
    assert card.data_snapshot["related"]["categories"]["23F"] == 60
    with world.begin() as conn:
        owners = conn.execute(
            select(audit_log.c.owner_agencies).where(audit_log.c.resource_type == "model_card")
        ).scalar_one()
    assert sorted(owners) == ["citya", "countyb"]


def test_drug_offences_are_not_forecast_by_default(world) -> None:
    with pytest.raises(ForecastError, match="never forecast by default"):
        run_forecast(world, ANALYST, category="35A", start=START)
    card = run_forecast(
        world, ANALYST, category="35A", start=START, model="naive", allowed=frozenset({"35A"})
    )
    assert card.category == "35A"


def test_several_codes_are_forecast_together_each_of_them_forecastable(world) -> None:
    # Burglaries and drug offences as one category: refused while 35A is not opted in.
    with pytest.raises(ForecastError, match="'35A' is not forecastable"):
        run_forecast(world, ANALYST, category="220,35A", start=START, model="naive")
    with pytest.raises(ForecastError, match="'35A', '90C' are not forecastable"):
        run_forecast(world, ANALYST, category="90c, 35A", start=START, model="naive")
    both = run_forecast(
        world, ANALYST, category=" 35a,220 ,220", start=START, model="naive",
        allowed=frozenset({"220", "35A"}), cell_m=200.0, fraction=0.05,
    )  # fmt: skip
    alone = run_forecast(world, ANALYST, category="220", start=START, model="naive")
    # Stored sorted, each code once; the history holds both codes' incidents.
    assert both.category == "220,35A"
    assert both.data_snapshot["records"] == 400 > alone.data_snapshot["records"]
    # Borrowing for a group borrows from the other forecastable codes only.
    grouped = run_forecast(
        world, ANALYST, category="220,35A", start=START, model="borrowed",
        allowed=frozenset({"220", "35A", "23F"}), cell_m=200.0, fraction=0.05,
    )  # fmt: skip
    assert {m.get("related") for m in grouped.params["members"]} == {"all categories"}


def test_a_viewer_without_access_gets_no_forecast(world) -> None:
    other = Viewer.user("bob", "countyb", ["analyst"])
    with pytest.raises(ForecastError, match="only 0 visible incidents"):
        run_forecast(world, other, category="220", start=START)


def _street_grid(path, lon0=-122.70, lat0=45.50, n=16, step=0.005) -> None:
    """Write a generated OSM extract: an n x n grid of two-way residential streets."""
    nodes, ways = [], []
    for i in range(n):
        for j in range(n):
            lat, lon = lat0 + i * step, lon0 + j * step
            nodes.append(f'<node id="{i * n + j + 1}" lat="{lat:.6f}" lon="{lon:.6f}"/>')
    for i in range(n):
        row = "".join(f'<nd ref="{i * n + j + 1}"/>' for j in range(n))
        col = "".join(f'<nd ref="{j * n + i + 1}"/>' for j in range(n))
        ways.append(f'<way id="{i + 1}">{row}<tag k="highway" v="residential"/></way>')
        ways.append(f'<way id="{n + i + 1}">{col}<tag k="highway" v="residential"/></way>')
    path.write_text("<osm>" + "".join(nodes) + "".join(ways) + "</osm>")


def test_a_patrol_plan_routes_on_the_agency_road_network_when_given(world, tmp_path) -> None:
    from crossbeat.forecast.patrol import PatrolRules
    from crossbeat.forecast.plans import save_patrol_plan

    card = run_forecast(
        world, ANALYST, category="220", start=START, model="naive", cell_m=200.0, fraction=0.05
    )
    osm = tmp_path / "city.osm"
    _street_grid(osm)
    shift = START + timedelta(hours=8)
    plan = save_patrol_plan(world, "citya", card.id, units=2, shift_start=shift, seed=3, osm=osm)
    assert plan["routing"] == "road network (city.osm)"
    straight = save_patrol_plan(
        world, "citya", card.id, units=2, shift_start=shift + timedelta(days=1), seed=3
    )
    assert straight["routing"] == "straight-line"
    # On a street grid, driving between boxes takes at least the straight line.
    rules = PatrolRules()
    per_minute = rules.speed_kmh * 1000 / 60
    from crossbeat.forecast.history import Frame

    frame = Frame(*card.grid["frame"])
    for unit in plan["assignment"]:
        stays = [v for v in plan["visits"] if v["unit"] == unit]
        for a, b in zip(stays, stays[1:], strict=False):
            if a["cell"] == b["cell"]:
                continue
            pa, pb = plan["boxes"][str(a["cell"])], plan["boxes"][str(b["cell"])]
            x, y = frame.forward(np.array([pa["lon"], pb["lon"]]), np.array([pa["lat"], pb["lat"]]))
            gap = b["start"] - a["end"]
            assert gap >= float(np.hypot(x[1] - x[0], y[1] - y[0])) / per_minute - 1e-6
    bad = tmp_path / "bad.osm"
    bad.write_text("not xml")
    with pytest.raises(ForecastError, match="road network"):
        save_patrol_plan(world, "citya", card.id, units=1, shift_start=shift, osm=bad)


def test_dosage_evaluation_states_its_method_and_recomputes_from_its_boxes(world) -> None:
    from crossbeat.forecast.dosage import dosage_effect
    from crossbeat.forecast.plans import evaluate_dosage, log_dosage, save_patrol_plan

    card = run_forecast(
        world, ANALYST, category="220", start=START, model="naive", cell_m=200.0, fraction=0.05
    )
    plan = save_patrol_plan(world, "citya", card.id, units=1, shift_start=START, seed=1)
    import h3

    # Four boxes (H3 cells) and one flagged grid cell in each.
    first: dict[int, dict] = {}
    for c in card.forecast["cells"]:
        first.setdefault(h3.str_to_int(c["h3_9"]), c)
    assert len(first) >= 4
    box = list(first)[:4]
    cells = [first[b] for b in box]
    at = START + timedelta(hours=2)
    log_dosage(world, "citya", plan_id=plan["id"], cell=box[0], unit="u", started_at=at, minutes=9)
    log_dosage(world, "citya", plan_id=None, cell=box[0], unit="u", started_at=at, minutes=6)
    log_dosage(world, "citya", plan_id=plan["id"], cell=box[1], unit="u", started_at=at, minutes=20)
    log_dosage(world, "citya", plan_id=plan["id"], cell=box[2], unit="u", started_at=at, minutes=5)
    # Outside the forecast window: not counted.
    later = START + timedelta(days=9)
    log_dosage(
        world, "citya", plan_id=plan["id"], cell=box[2], unit="u", started_at=later, minutes=60
    )
    # Incidents in the window, at box centres: 1 in a dosed box, 3 and 2 in undosed ones,
    # and one after the window (not counted).
    where = [(0, 1), (2, 3), (3, 2)]
    new = []
    for k, (i, n) in enumerate(where):
        for j in range(n):
            new.append(
                Inc(
                    "citya",
                    f"w{k}-{j}",
                    cells[i]["lat"],
                    cells[i]["lon"],
                    ["220"],
                    at + timedelta(hours=j),
                )
            )
    new.append(Inc("citya", "late", cells[3]["lat"], cells[3]["lon"], ["220"], later))
    insert_incidents(world, new)
    out = evaluate_dosage(world, ANALYST, plan["id"])
    rows = {b["cell"]: b for b in out["boxes"]}
    assert rows[box[0]]["minutes"] == 15 and rows[box[0]]["dosed"]
    assert rows[box[1]]["minutes"] == 20 and rows[box[2]]["minutes"] == 5
    assert not rows[box[2]]["dosed"]
    assert [rows[box[i]]["observed"] for i in range(4)] == [1, 0, 3, 2]
    assert sum(b["observed"] for b in out["boxes"]) == 6
    again = dosage_effect(
        np.array([b["minutes"] for b in out["boxes"]]),
        np.array([b["expected"] for b in out["boxes"]]),
        np.array([b["observed"] for b in out["boxes"]]),
    )
    assert out["result"]["rate_ratio"] == pytest.approx(again.rate_ratio)
    assert out["result"]["p_value"] == pytest.approx(again.p_value)
    assert out["result"]["dosed_boxes"] == 2 and "binomial" in out["method"]
    # Another agency cannot evaluate (or learn of) citya's plan.
    with pytest.raises(ForecastError, match="no patrol plan"):
        evaluate_dosage(world, Viewer.user("bob", "countyb", ["analyst"]), plan["id"])
    with pytest.raises(ForecastError, match="threshold"):
        evaluate_dosage(world, ANALYST, plan["id"], threshold=0)


def test_a_stored_patrol_plan_is_reproduced_from_its_card_and_seed(world) -> None:
    from sqlalchemy import select as sa_select

    from crossbeat.forecast.plans import save_patrol_plan
    from crossbeat.store.schema import patrol_plans

    card = run_forecast(
        world, ANALYST, category="220", start=START, model="naive", cell_m=200.0, fraction=0.05
    )
    shift = START + timedelta(hours=8)
    first = save_patrol_plan(world, "citya", card.id, units=2, shift_start=shift, seed=7)
    again = save_patrol_plan(world, "citya", card.id, units=2, shift_start=shift, seed=7)
    other = save_patrol_plan(world, "citya", card.id, units=2, shift_start=shift, seed=8)
    assert first["id"] != again["id"] and first["visits"]
    same = ("assignment", "boxes", "visits", "routing", "rules", "seed")
    assert {k: first[k] for k in same} == {k: again[k] for k in same}
    assert other["visits"] != first["visits"]
    # What is stored is what was returned: the seed and the plan read back equal.
    with world.begin() as conn:
        rows = dict(
            conn.execute(
                sa_select(patrol_plans.c.id, patrol_plans.c.plan).where(
                    patrol_plans.c.seed == 7, patrol_plans.c.model_card_id == card.id
                )
            ).all()
        )
    assert set(rows) == {first["id"], again["id"]}
    assert rows[first["id"]]["visits"] == first["visits"]
