"""Dosage derived from posted unit positions: library, API and CLI (issue #13)."""

from __future__ import annotations

from datetime import timedelta

import h3
import numpy as np
import pytest
from click.testing import CliRunner

from crossbeat.cli import cli
from crossbeat.forecast.plans import (
    Position,
    dosage_from_positions,
    evaluate_dosage,
    save_patrol_plan,
)
from crossbeat.forecast.service import ForecastError, run_forecast
from crossbeat.sharing.request import Viewer
from tests.api_support import build_world
from tests.sharing_support import Inc, insert_incidents

ANALYST = Viewer.user("ana", "citya", ["analyst"])


@pytest.fixture
def planned(store):
    world = build_world(store)
    now = world.clock.now()
    rng = np.random.default_rng(8)
    insert_incidents(
        store,
        [
            Inc("citya", f"p{i}", 45.53 + rng.normal(0, 0.004), -122.66 + rng.normal(0, 0.006),
                ["220"], now - timedelta(days=float(rng.uniform(1, 300))))
            for i in range(200)
        ],
    )  # fmt: skip
    card = run_forecast(
        store, ANALYST, category="220", start=now, model="naive", cell_m=200.0, fraction=0.05
    )
    plan = save_patrol_plan(store, "citya", card.id, units=2, shift_start=now, seed=1)
    return world, now, plan


def _centre(cell: str) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cell)
    return lon, lat


def test_positions_become_stays_in_the_plans_boxes(planned) -> None:
    world, now, plan = planned
    first, second = sorted(b["h3_9"] for b in plan["boxes"].values())[:2]
    (lo1, la1), (lo2, la2) = _centre(first), _centre(second)
    t = now + timedelta(hours=1)
    pings = [Position("u1", t + timedelta(minutes=2 * k), lo1, la1) for k in range(7)]  # 12 min
    # Silent for 20 minutes (not counted), then 4 minutes in the second box.
    pings += [Position("u1", t + timedelta(minutes=32 + 2 * k), lo2, la2) for k in range(3)]
    # Back in the first box after a long silence: one ping, no time.
    pings.append(Position("u1", t + timedelta(minutes=60), lo1, la1))
    # Another unit outside every box.
    pings += [Position("u2", t + timedelta(minutes=k), -122.699, 45.559) for k in range(5)]
    stays = dosage_from_positions(world.store, "citya", plan["id"], pings[::-1], by="ana")
    assert [(s["unit"], s["h3_9"], s["minutes"]) for s in stays] == [
        ("u1", first, 12.0),
        ("u1", second, 4.0),
    ]
    out = evaluate_dosage(world.store, ANALYST, plan["id"])
    minutes = {b["h3_9"]: b["minutes"] for b in out["boxes"]}
    assert minutes[first] == 12.0 and minutes[second] == 4.0
    assert sum(minutes.values()) == 16.0
    with pytest.raises(ForecastError, match="time zone"):
        dosage_from_positions(
            world.store, "citya", plan["id"], [Position("u1", t.replace(tzinfo=None), lo1, la1)]
        )
    with pytest.raises(ForecastError, match="no patrol plan"):
        dosage_from_positions(world.store, "countyb", plan["id"], pings)


def test_the_api_and_cli_take_positions(planned, tmp_path) -> None:
    world, now, plan = planned
    box = sorted(b["h3_9"] for b in plan["boxes"].values())[0]
    lon, lat = _centre(box)
    t = now + timedelta(hours=2)
    client, headers = world.signed_in("a.officer")
    body = {
        "positions": [
            {"unit": "car-7", "at": (t + timedelta(minutes=k)).isoformat(), "lon": lon, "lat": lat}
            for k in range(11)
        ]
    }
    r = client.post(f"/api/v1/patrol-plans/{plan['id']}/positions", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["minutes"] == 10.0 and r.json()["stays"][0]["h3_9"] == box
    other, other_headers = world.signed_in("b.officer")
    r = other.post(f"/api/v1/patrol-plans/{plan['id']}/positions", json=body, headers=other_headers)
    assert r.status_code == 404
    path = tmp_path / "pings.csv"
    rows = [f"car-8,{(t + timedelta(minutes=3 * k)).isoformat()},{lon},{lat}" for k in range(3)]
    path.write_text("unit,at,lon,lat\n" + "\n".join(rows) + "\n")
    args = ["patrol", "positions", "--db", world.store.url, "--agency", "citya"]
    out = CliRunner().invoke(cli, [*args, "--plan", plan["id"], str(path)])
    assert out.exit_code == 0 and "logged 1 stays, 6.0 minutes" in out.output, out.output
    path.write_text("unit,at,lon,lat\ncar-8,yesterday,1,2\n")
    out = CliRunner().invoke(cli, [*args, "--plan", plan["id"], str(path)])
    assert out.exit_code != 0 and "line 2" in out.output
    out = evaluate_dosage(world.store, ANALYST, plan["id"])
    assert {b["h3_9"]: b["minutes"] for b in out["boxes"]}[box] == 16.0
