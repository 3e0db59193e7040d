"""Stored forecasts on H3 and area-layer cells: service, patrol plans, dosage, API, CLI (#13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h3
import numpy as np
import pytest
from click.testing import CliRunner
from shapely.geometry import Point, box, mapping, shape

from crossbeat.areas import add_layer
from crossbeat.cli import cli
from crossbeat.forecast.plans import evaluate_dosage, save_patrol_plan
from crossbeat.forecast.service import ForecastError, get_model_card, run_forecast
from crossbeat.sharing.request import Viewer
from tests.api_support import build_world
from tests.sharing_support import Inc, insert_incidents, setup_agencies

START = datetime(2026, 6, 1, tzinfo=UTC)
ANALYST = Viewer.user("ana", "citya", ["analyst"])
#: Three hot spots inside City A's jurisdiction (box -122.70..-122.62, 45.50..45.56).
HOT = [(-122.66, 45.53), (-122.64, 45.52), (-122.68, 45.545)]
#: City A cut in four at lon -122.67, lat 45.535: "se" holds two of the three hot spots.
QUADRANTS = {
    "nw": box(-122.70, 45.535, -122.67, 45.56),
    "ne": box(-122.67, 45.535, -122.62, 45.56),
    "sw": box(-122.70, 45.50, -122.67, 45.535),
    "se": box(-122.67, 45.50, -122.62, 45.535),
}


def _population(start: datetime, n: int = 400) -> list[Inc]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        if rng.random() < 0.8:
            lon, lat = HOT[int(rng.integers(0, 3))]
            lon, lat = lon + rng.normal(0, 0.0006), lat + rng.normal(0, 0.0004)
        else:
            lon, lat = rng.uniform(-122.695, -122.625), rng.uniform(45.505, 45.555)
        when = start - timedelta(days=float(rng.uniform(1, 400)))
        out.append(Inc("citya", f"h{i}", float(lat), float(lon), ["220"], when))
    return out


def _layer(store, tmp_path: Path) -> None:
    path = tmp_path / "quadrants.geojson"
    features = [
        {"type": "Feature", "properties": {"name": k}, "geometry": mapping(g)}
        for k, g in QUADRANTS.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    add_layer(store, "citya", "quadrants", path, name_field="name")


@pytest.fixture
def world(store, tmp_path):
    setup_agencies(store)
    insert_incidents(store, _population(START))
    _layer(store, tmp_path)
    return store


def test_an_h3_forecast_is_stored_on_hexagons_clipped_to_the_jurisdiction(world) -> None:
    card = run_forecast(
        world, ANALYST, category="220", start=START, model="naive", fraction=0.05, cells="h3:9"
    )
    assert card.grid["kind"] == "h3" and card.grid["resolution"] == 9
    # Clipped hexagons tile City A's jurisdiction (41.7 km²) exactly.
    assert card.grid["clipped"] and card.grid["area_m2"] == pytest.approx(41.67e6, rel=0.005)
    cells = card.forecast["cells"]
    ids = {c["id"] for c in cells}
    assert all(h3.get_resolution(c["id"]) == 9 and c["h3_9"] == c["id"] for c in cells)
    for c in cells:
        assert shape(c["geometry"]).covers(Point(c["lon"], c["lat"]))
    # Every hot spot's hexagon is flagged.
    assert {h3.latlng_to_cell(lat, lon, 9) for lon, lat in HOT} <= ids
    assert {"naive", "kde"} <= set(card.backtest["models"])
    assert card.params["fine_raster_m"] == 50.0
    assert get_model_card(world, card.id, "citya").forecast == card.forecast
    # A patrol plan over it carries the cell kind; its boxes are the flagged hexagons.
    plan = save_patrol_plan(world, "citya", card.id, units=1, shift_start=START, seed=3)
    assert plan["cells"] == "h3"
    assert {b["h3_9"] for b in plan["boxes"].values()} == ids


def test_an_area_layer_forecast_flags_whole_areas_and_dosage_counts_inside_them(world) -> None:
    card = run_forecast(
        world,
        ANALYST,
        category="220",
        start=START,
        model="naive",
        fraction=0.4,
        cells="area:quadrants",
    )
    assert card.grid["kind"] == "area" and card.grid["layer"] == "quadrants"
    assert card.grid["cells"] == 4
    # The south-east quadrant (36 % of the area) holds two hot spots; the next riskiest
    # would pass 40 % of the area.
    assert [c["id"] for c in card.forecast["cells"]] == ["se"]
    # The quadrant as stored (through the metric frame and back: within a metre).
    assert shape(card.forecast["cells"][0]["geometry"]).hausdorff_distance(QUADRANTS["se"]) < 2e-5
    plan = save_patrol_plan(world, "citya", card.id, units=1, shift_start=START, seed=1)
    assert plan["cells"] == "area"
    # In the window: 3 incidents in the south-east quadrant (away from its box), 2 outside.
    at = START + timedelta(hours=5)
    new = [
        Inc("citya", "in1", 45.51, -122.63, ["220"], at),
        Inc("citya", "in2", 45.505, -122.665, ["220"], at),
        Inc("citya", "in3", 45.53, -122.625, ["220"], at),
        Inc("citya", "out1", 45.55, -122.69, ["220"], at),
        Inc("citya", "out2", 45.51, -122.69, ["220"], at),
    ]
    insert_incidents(world, new)
    out = evaluate_dosage(world, ANALYST, plan["id"])
    assert [b["observed"] for b in out["boxes"]] == [3]


def test_bad_cell_kinds_are_refused_with_the_reason(world) -> None:
    with pytest.raises(ForecastError, match="h3:RESOLUTION"):
        run_forecast(world, ANALYST, category="220", start=START, cells="hex:9")
    with pytest.raises(ForecastError, match="h3:RESOLUTION"):
        run_forecast(world, ANALYST, category="220", start=START, cells="h3:14")
    with pytest.raises(ForecastError, match="quadrants"):
        run_forecast(world, ANALYST, category="220", start=START, cells="area:wards")
    with pytest.raises(ForecastError, match="no cell fits"):
        run_forecast(
            world, ANALYST, category="220", start=START, fraction=0.05, cells="area:quadrants"
        )


def test_the_api_forecasts_on_h3_cells(store) -> None:
    world = build_world(store)
    now = world.clock.now()
    insert_incidents(store, _population(now))
    client, headers = world.signed_in("a.analyst")
    body = {
        "category": "220",
        "start": now.isoformat(),
        "model": "naive",
        "fraction": 0.05,
        "cells": "h3:8",
    }
    r = client.post("/api/v1/forecasts", json=body, headers=headers)
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["grid"]["kind"] == "h3" and card["grid"]["resolution"] == 8
    assert all(h3.get_resolution(c["id"]) == 8 for c in card["forecast"]["cells"])
    assert client.get(f"/api/v1/forecasts/{card['id']}").json()["grid"] == card["grid"]
    plan = client.post(
        "/api/v1/patrol-plans",
        json={"model_card_id": card["id"], "units": 1, "shift_start": now.isoformat()},
        headers=headers,
    )
    assert plan.status_code == 201 and plan.json()["cells"] == "h3", plan.text
    bad = client.post("/api/v1/forecasts", json={**body, "cells": "hex:8"}, headers=headers)
    assert bad.status_code == 400 and "cells" in bad.text, bad.text
    bad = client.post("/api/v1/forecasts", json={**body, "cells": "h3:14"}, headers=headers)
    assert bad.status_code == 400 and "h3:RESOLUTION" in bad.text
    # Several codes as one category (sorted on the card); a malformed list is refused.
    group = client.post(
        "/api/v1/forecasts", json={**body, "category": "240, 220", "model": "borrowed"},
        headers=headers,
    )  # fmt: skip
    assert group.status_code == 201 and group.json()["category"] == "220,240", group.text
    for category in ("220;240", "220,,240", ",".join(["220"] * 21), "220,35A"):
        bad = client.post("/api/v1/forecasts", json={**body, "category": category}, headers=headers)
        assert bad.status_code == 400, (category, bad.text)


def test_the_cli_forecasts_on_h3_and_area_cells(world) -> None:
    runner = CliRunner()
    base = ["forecast", "run", "--db", world.url, "--agency", "citya", "--category", "220"]
    base += ["--start", START.isoformat(), "--model", "naive"]
    out = runner.invoke(cli, [*base, "--fraction", "0.05", "--cells", "h3:8"])
    assert out.exit_code == 0, out.output
    assert "H3 hexagons of resolution 8" in out.output
    out = runner.invoke(cli, [*base, "--fraction", "0.4", "--cells", "area:quadrants", "--json"])
    assert out.exit_code == 0, out.output
    assert [c["id"] for c in json.loads(out.output)["forecast"]["cells"]] == ["se"]
    out = runner.invoke(cli, [*base, "--cells", "area:wards"])
    assert out.exit_code != 0 and "quadrants" in out.output


def test_the_cli_offers_decayed_counts_and_the_validation_chosen_model(world) -> None:
    runner = CliRunner()
    base = ["forecast", "run", "--db", world.url, "--agency", "citya", "--category", "220"]
    base += ["--start", START.isoformat(), "--fraction", "0.05", "--json"]
    out = runner.invoke(cli, [*base, "--model", "decayed"])
    assert out.exit_code == 0, out.output
    card = json.loads(out.output)
    assert card["model"] == "decayed" and card["params"] == {"half_life_days": 90.0}
    assert {"decayed", "naive", "kde"} <= set(card["backtest"]["models"])
    out = runner.invoke(cli, [*base, "--model", "shrunk"])
    assert out.exit_code == 0, out.output
    card = json.loads(out.output)
    assert card["model"] == "shrunk" and card["params"]["bandwidth_m"] == 150.0
    assert card["params"]["kappa"] is None or card["params"]["kappa"] > 0
    out = runner.invoke(cli, [*base, "--model", "decayed-typo"])
    assert out.exit_code != 0 and "ensemble-decayed" in out.output


def test_the_cli_borrows_from_other_categories_in_a_forecast_and_an_nij_submission(
    world, tmp_path: Path
) -> None:
    # Thefts at the first hot spot: a category the burglary forecast may borrow from.
    rng = np.random.default_rng(3)
    thefts = [
        Inc("citya", f"t{i}", HOT[0][1] + rng.normal(0, 0.0004),
            HOT[0][0] + rng.normal(0, 0.0006), ["23F"],
            START - timedelta(days=float(rng.uniform(1, 400))))
        for i in range(150)
    ]  # fmt: skip
    insert_incidents(world, thefts)
    runner = CliRunner()
    base = ["--db", world.url, "--agency", "citya", "--category", "220"]
    base += ["--start", START.isoformat(), "--model", "borrowed"]
    out = runner.invoke(cli, ["forecast", "run", *base, "--fraction", "0.05", "--json"])
    assert out.exit_code == 0, out.output
    card = json.loads(out.output)
    assert card["model"] == "borrowed"
    assert card["data_snapshot"]["related"]["categories"] == {"220": 400, "23F": 150}
    members = {m["model"] for m in card["params"]["members"]}
    assert card["params"]["chosen"] in members and "borrowed (23F ×1)" in members
    out = runner.invoke(cli, ["forecast", "run", *base, "--fraction", "0.05"])
    assert out.exit_code == 0, out.output
    assert "borrowing from 550 incidents (220 400, 23F 150)" in out.output
    assert "chosen: " in out.output and "6 windows before the forecast" in out.output
    out = runner.invoke(cli, ["forecast", "nij", *base, "--window", "1w", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    flagged = json.loads((tmp_path / "flagged.geojson").read_text())
    assert flagged["features"] and (tmp_path / "grid.csv").exists()
    # Both categories as one, in an NIJ submission and a stored forecast.
    group = [a if a != "220" else "23F,220" for a in base]
    out = runner.invoke(cli, ["forecast", "nij", *group, "--window", "1w", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["forecast", "run", *group, "--fraction", "0.05", "--json"])
    assert out.exit_code == 0, out.output
    card = json.loads(out.output)
    assert card["category"] == "220,23F" and card["data_snapshot"]["records"] == 550
    out = runner.invoke(cli, ["forecast", "run", *[a if a != "220" else "220,35A" for a in base]])
    assert out.exit_code != 0 and "'35A' is not forecastable" in out.output
