"""Stored patrol plans and dosage logs, shared across agencies (issue #13).

:func:`save_patrol_plan` plans a shift over a stored model card's flagged cells
(:func:`crossbeat.forecast.patrol.plan_patrols`) and stores it, naming the card it came
from. Boxes are identified across agencies by their H3 resolution-9 cell, so a box
already in another agency's plan for the same shift start is never assigned again (it
is listed under ``claimed_by_partners`` instead). :func:`log_dosage` records time an
officer spent in a box. Each change is an audit event in its transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import numpy as np
import shapely
from shapely.geometry import shape
from sqlalchemy import select

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.forecast.dosage import dosage_effect
from crossbeat.forecast.history import Frame
from crossbeat.forecast.networks import stored_road_network
from crossbeat.forecast.patrol import Box, PatrolRules, Unit, plan_patrols
from crossbeat.forecast.roads import RoadNetwork, RoadNetworkError, load_osm
from crossbeat.forecast.service import ForecastError, forecast_codes, get_model_card
from crossbeat.sharing.arrays import analysis_arrays
from crossbeat.sharing.request import ReadRequest, Viewer
from crossbeat.sharing.scope import Purpose
from crossbeat.store import Store
from crossbeat.store.schema import dosage_logs, patrol_plans


def save_patrol_plan(
    store: Store,
    agency_id: str,
    card_id: str,
    *,
    units: int,
    shift_start: datetime,
    seed: int = 0,
    rules: PatrolRules | None = None,
    osm: str | Path | None = None,
    by: str = "system",
) -> dict[str, Any]:
    """Plan ``units`` units of ``agency_id`` over a model card's flagged cells and store it.

    ``osm`` is the agency's OpenStreetMap extract (``.osm`` or ``.pbf``): routes then
    follow its roads (:mod:`crossbeat.forecast.roads`). Without it, routes follow the
    agency's stored road network when it has one
    (:func:`crossbeat.forecast.networks.stored_road_network`: pgRouting on PostgreSQL,
    the in-Python graph elsewhere), else straight lines; the plan's ``routing`` says which.
    """
    if units < 1:
        raise ForecastError("units: give at least one unit on shift")
    if shift_start.tzinfo is None:
        raise ForecastError("shift start: give a date and time with a time zone")
    card = get_model_card(store, card_id, agency_id)
    frame = Frame(*card.grid["frame"])
    try:
        roads: RoadNetwork | None
        if osm is not None:
            roads = load_osm(osm, frame)
        else:
            roads = stored_road_network(store, agency_id, frame)
    except RoadNetworkError as e:
        raise ForecastError(f"road network: {e}") from e
    cells = card.forecast["cells"]
    lon = [c["lon"] for c in cells]
    lat = [c["lat"] for c in cells]
    x, y = frame.forward(np.array(lon), np.array(lat))
    # A box is the H3 resolution-9 cell of a flagged cell's centre; grid cells that share
    # one are one box (at the riskiest one's centre, with their summed risk).
    merged: dict[int, tuple[Box, float, float]] = {}
    for c, xi, yi, lo, la in zip(cells, x, y, lon, lat, strict=True):
        key, risk = h3.str_to_int(c["h3_9"]), float(c["expected"])
        if key not in merged:
            merged[key] = (Box(key, float(xi), float(yi), risk, agency_id), lo, la)
        else:
            old, lo0, la0 = merged[key]
            merged[key] = (Box(key, old.x, old.y, old.risk + risk, agency_id), lo0, la0)
    boxes = [b for b, _, _ in merged.values()]
    lon = [lo for _, lo, _ in merged.values()]
    lat = [la for _, _, la in merged.values()]
    with store.begin() as conn:
        others = conn.execute(
            select(patrol_plans.c.agency_id, patrol_plans.c.plan).where(
                patrol_plans.c.shift_start == shift_start, patrol_plans.c.agency_id != agency_id
            )
        ).all()
        taken = {int(c) for _, p in others for beat in p["assignment"].values() for c in beat}
        team = [Unit(f"{agency_id}-{i + 1}", agency_id, (agency_id,)) for i in range(units)]
        plan = plan_patrols(boxes, team, rules, seed=seed, taken=taken, roads=roads)
        data = {
            "id": str(uuid.uuid4()),
            "model_card_id": card_id,
            "model": card.model,
            # The forecast's cells: square, h3 or area (boxes are H3 resolution 9 either way).
            "cells": card.grid.get("kind", "square"),
            "seed": seed,
            "routing": plan.routing,
            "rules": asdict(plan.rules),
            "assignment": {u: [int(c) for c in beat] for u, beat in plan.assignment.items()},
            # The same routes by H3 cell name: 64-bit cell numbers do not survive a
            # JavaScript number (the web page uses these).
            "assignment_h3": {
                u: [h3.int_to_str(int(c)) for c in beat] for u, beat in plan.assignment.items()
            },
            "boxes": {
                str(b.cell): {"h3_9": h3.int_to_str(b.cell), "lon": lo, "lat": la, "risk": b.risk}
                for b, lo, la in zip(boxes, lon, lat, strict=True)
            },
            "visits": [asdict(v) for v in plan.visits],
            "claimed_by_partners": sorted({str(c) for c in taken} & {str(b.cell) for b in boxes}),
            "uncovered": list(plan.uncovered),
        }
        conn.execute(
            patrol_plans.insert().values(
                id=data["id"],
                agency_id=agency_id,
                model_card_id=card_id,
                created_at=store.clock.now(),
                created_by=by,
                shift_start=shift_start,
                seed=seed,
                plan=data,
            )
        )
        append(
            store,
            AuditEvent(
                action=Action.CHANGE,
                actor=by,
                actor_agency=agency_id,
                resource_type="patrol_plan",
                owner_agencies=(agency_id,),
                record_count=len(plan.visits),
                details={
                    "operation": "plan",
                    "patrol_plan": data["id"],
                    "model_card": card_id,
                    "seed": seed,
                },
            ),
            conn=conn,
        )
    return data


def log_dosage(
    store: Store,
    agency_id: str,
    *,
    plan_id: str | None,
    cell: int,
    unit: str,
    started_at: datetime,
    minutes: float,
    by: str = "system",
) -> int:
    """Record ``minutes`` a unit spent in a box (audited); return the log id."""
    if not 0 < minutes <= 24 * 60:
        raise ForecastError(
            "minutes: give the time spent in the box, more than 0 and at most a day"
        )
    if started_at.tzinfo is None:
        raise ForecastError("started at: give a date and time with a time zone")
    with store.begin() as conn:
        if plan_id is not None:
            found = conn.execute(
                select(patrol_plans.c.id).where(
                    patrol_plans.c.id == plan_id, patrol_plans.c.agency_id == agency_id
                )
            ).first()
            if found is None:
                raise ForecastError(f"no patrol plan {plan_id!r} for agency {agency_id!r}")
        new = conn.execute(
            dosage_logs.insert().values(
                agency_id=agency_id, plan_id=plan_id, cell=cell, unit=unit, started_at=started_at,
                minutes=minutes, logged_by=by, created_at=store.clock.now(),
            )
        ).inserted_primary_key  # fmt: skip
        append(
            store,
            AuditEvent(
                action=Action.CHANGE,
                actor=by,
                actor_agency=agency_id,
                resource_type="dosage",
                owner_agencies=(agency_id,),
                record_count=1,
                details={
                    "operation": "dosage",
                    "patrol_plan": plan_id,
                    "cell": cell,
                    "seconds": int(round(minutes * 60)),
                },
            ),
            conn=conn,
        )
    return int(new[0]) if new else 0


@dataclass(frozen=True)
class Position:
    """Where a unit was at a moment (a ping from a vehicle locator or the field app)."""

    unit: str
    at: datetime
    lon: float
    lat: float


def dosage_from_positions(
    store: Store,
    agency_id: str,
    plan_id: str,
    positions: Sequence[Position],
    *,
    max_gap_minutes: float = 5.0,
    by: str = "system",
) -> list[dict[str, Any]]:
    """Derive and log the time units spent in a plan's boxes from their posted positions.

    Method: each unit's positions are taken in time order; a position is in a box when
    its H3 resolution-9 cell is one of the plan's boxes. The time between two
    consecutive positions of a unit counts towards a box when both are in that box and
    they are at most ``max_gap_minutes`` apart (a longer silence is not assumed to be
    spent in the box). Each unbroken run of counted time is one stay, logged with
    :func:`log_dosage` against the plan (audited). Positions themselves are not stored.
    Returns the stays logged (unit, box, start, minutes).
    """
    if not 0 < max_gap_minutes <= 60:
        raise ForecastError("max gap: give minutes, more than 0 and at most 60")
    with store.connect() as conn:
        row = conn.execute(
            select(patrol_plans.c.plan).where(
                patrol_plans.c.id == plan_id, patrol_plans.c.agency_id == agency_id
            )
        ).first()
    if row is None:
        raise ForecastError(f"no patrol plan {plan_id!r} for agency {agency_id!r}")
    boxes = {int(b) for b in row[0]["boxes"]}
    for p in positions:
        if p.at.tzinfo is None:
            raise ForecastError(f"position of {p.unit}: give a time with a time zone")
        if not (-180 <= p.lon <= 180 and -90 <= p.lat <= 90):
            raise ForecastError(f"position of {p.unit} at {p.at.isoformat()}: lon/lat out of range")
    by_unit: dict[str, list[Position]] = {}
    for p in positions:
        by_unit.setdefault(p.unit, []).append(p)
    stays: list[dict[str, Any]] = []
    gap = timedelta(minutes=max_gap_minutes)
    for unit in sorted(by_unit):
        pings = sorted(by_unit[unit], key=lambda q: q.at)
        cells = [h3.str_to_int(h3.latlng_to_cell(q.lat, q.lon, 9)) for q in pings]
        run: dict[str, Any] | None = None
        for a, b, ca, cb in zip(pings, pings[1:], cells, cells[1:], strict=False):
            if ca == cb and ca in boxes and b.at - a.at <= gap:
                if run is None:
                    run = {"unit": unit, "cell": ca, "start": a.at, "minutes": 0.0}
                run["minutes"] += (b.at - a.at).total_seconds() / 60
                continue
            if run is not None:
                stays.append(run)
                run = None
        if run is not None:
            stays.append(run)
    stays = [s for s in stays if s["minutes"] > 0]
    for s in stays:
        log_dosage(
            store, agency_id, plan_id=plan_id, cell=s["cell"], unit=s["unit"],
            started_at=s["start"], minutes=min(s["minutes"], 24 * 60), by=by,
        )  # fmt: skip
    return [{**s, "h3_9": h3.int_to_str(s["cell"]), "start": s["start"].isoformat()} for s in stays]


def evaluate_dosage(
    store: Store, viewer: Viewer, plan_id: str, *, threshold: float = 10.0
) -> dict[str, Any]:
    """Evaluate a patrol plan's logged dosage against what happened (open method).

    The plan's boxes are its model card's flagged cells, identified by the H3
    resolution-9 cell of their centre (grid cells sharing one are one box). For each
    box: the forecast's expected count (from the card), the minutes logged by the agency
    in that box during the card's window (logs for this plan and logs without a plan),
    and the incidents of the card's category recorded in the box's cells (squares, H3 or
    areas, by the card's ``grid.kind``) during
    the window, read through
    the sharing policy as ``viewer`` (an audited read). Those three columns go to
    :func:`crossbeat.forecast.dosage.dosage_effect` (dosed = at least ``threshold``
    minutes): the rate ratio of observed/expected in dosed against undosed boxes, its
    exact 95 % interval and p-value. The answer states the method and lists every box,
    so anyone can recompute it.
    """
    if viewer.agency_id is None:
        raise ForecastError("dosage evaluation: sign in as a member of an agency")
    if not 0 < threshold <= 24 * 60:
        raise ForecastError("threshold: give minutes, more than 0 and at most a day")
    agency_id = viewer.agency_id
    with store.connect() as conn:
        row = conn.execute(
            select(patrol_plans.c.model_card_id, patrol_plans.c.plan).where(
                patrol_plans.c.id == plan_id, patrol_plans.c.agency_id == agency_id
            )
        ).first()
    if row is None:
        raise ForecastError(f"no patrol plan {plan_id!r} for agency {agency_id!r}")
    card = get_model_card(store, row[0], agency_id)
    plan = row[1]
    cells = card.forecast["cells"]
    boxes = [h3.str_to_int(c["h3_9"]) for c in cells]
    with store.connect() as conn:
        logs = conn.execute(
            select(dosage_logs.c.cell, dosage_logs.c.minutes).where(
                dosage_logs.c.agency_id == agency_id,
                dosage_logs.c.started_at >= card.window_from,
                dosage_logs.c.started_at < card.window_to,
                (dosage_logs.c.plan_id == plan_id) | dosage_logs.c.plan_id.is_(None),
            )
        ).all()
    minutes = dict.fromkeys(boxes, 0.0)
    for cell, m in logs:
        if int(cell) in minutes:
            minutes[int(cell)] += float(m)
    arrays = analysis_arrays(
        store,
        viewer,
        ReadRequest(
            offences=frozenset(forecast_codes(card.category)),
            since=card.window_from,
            until=card.window_to,
            purpose=Purpose.ANALYSIS,
        ),
    )
    inside = _incidents_in_cells(card.grid, cells, arrays.lon, arrays.lat)
    # A box is an H3 cell: two grid cells whose centres share one are one box.
    ids = sorted(set(boxes))
    at = {b: i for i, b in enumerate(ids)}
    observed, expected = np.zeros(len(ids)), np.zeros(len(ids))
    for b, c, n in zip(boxes, cells, inside, strict=True):
        observed[at[b]] += float(n)
        expected[at[b]] += float(c["expected"])
    dosed = np.array([minutes[b] for b in ids])
    effect = dosage_effect(dosed, expected, observed, threshold=threshold)
    h3_of = {b: c["h3_9"] for b, c in zip(boxes, cells, strict=True)}

    def num(v: float) -> float | None:
        return None if not np.isfinite(v) else float(v)

    return {
        "plan_id": plan_id,
        "model_card_id": card.id,
        "category": card.category,
        "window_from": card.window_from.isoformat(),
        "window_to": card.window_to.isoformat(),
        "threshold_minutes": threshold,
        "planned_minutes": sum(v["end"] - v["start"] for v in plan["visits"]),
        "logged_minutes": float(dosed.sum()),
        "method": DOSAGE_METHOD,
        "result": {k: (num(v) if isinstance(v, float) else v) for k, v in asdict(effect).items()},
        "boxes": [
            {
                "cell": b,
                "h3_9": h3_of[b],
                "expected": float(e),
                "observed": float(o),
                "minutes": float(m),
                "dosed": bool(m >= threshold),
            }
            for b, e, o, m in zip(ids, expected, observed, dosed, strict=True)
        ],
    }


def _incidents_in_cells(
    grid: dict[str, Any], cells: list[dict[str, Any]], lon: np.ndarray, lat: np.ndarray
) -> list[int]:
    """Return how many of the points fall in each flagged cell of a model card.

    Square cells are found on the card's raster; H3 and area-layer cells by their stored
    (clipped) geometry.
    """
    if not len(lon):
        return [0] * len(cells)
    if grid.get("kind", "square") != "square":
        pts = shapely.points(np.asarray(lon, float), np.asarray(lat, float))
        return [int(np.count_nonzero(shapely.covers(shape(c["geometry"]), pts))) for c in cells]
    frame = Frame(*grid["frame"])
    size, x0, y0 = float(grid["size_m"]), float(grid["x0"]), float(grid["y0"])

    def raster(lo: np.ndarray, la: np.ndarray) -> np.ndarray:
        x, y = frame.forward(np.asarray(lo, float), np.asarray(la, float))
        ix = np.floor((np.asarray(x) - x0) / size).astype(np.int64)
        iy = np.floor((np.asarray(y) - y0) / size).astype(np.int64)
        return iy * 10_000_000 + ix

    seen = raster(lon, lat)
    keys = raster(np.array([c["lon"] for c in cells]), np.array([c["lat"] for c in cells]))
    return [int(np.sum(seen == k)) for k in keys]


#: The evaluation's method, returned with every result.
DOSAGE_METHOD = (
    "Boxes are the model card's flagged cells. A box is dosed when the agency logged at least "
    "the threshold minutes in it during the forecast window. Rate ratio = (observed/expected "
    "in dosed boxes) / (observed/expected in undosed boxes), expected from the forecast. "
    "Given the total observed, the dosed count is binomial with p = E_dosed / (E_dosed + "
    "E_undosed) when dosage has no effect: exact two-sided binomial p-value, Clopper-Pearson "
    "95% interval turned into a rate ratio. Observational: boxes are not dosed at random."
)
