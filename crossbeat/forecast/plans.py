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
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import h3
from sqlalchemy import select

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.forecast.history import Frame
from crossbeat.forecast.patrol import Box, PatrolRules, Unit, plan_patrols
from crossbeat.forecast.roads import RoadNetworkError, load_osm
from crossbeat.forecast.service import ForecastError, get_model_card
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
    follow its roads (:mod:`crossbeat.forecast.roads`); without it they are straight
    lines, and the plan's ``routing`` says which.
    """
    if units < 1:
        raise ForecastError("units: give at least one unit on shift")
    if shift_start.tzinfo is None:
        raise ForecastError("shift start: give a date and time with a time zone")
    card = get_model_card(store, card_id, agency_id)
    frame = Frame(*card.grid["frame"])
    try:
        roads = load_osm(osm, frame) if osm is not None else None
    except RoadNetworkError as e:
        raise ForecastError(f"road network: {e}") from e
    cells = card.forecast["cells"]
    lon = [c["lon"] for c in cells]
    lat = [c["lat"] for c in cells]
    import numpy as np

    x, y = frame.forward(np.array(lon), np.array(lat))
    boxes = [
        Box(h3.str_to_int(c["h3_9"]), float(xi), float(yi), float(c["expected"]), agency_id)
        for c, xi, yi in zip(cells, x, y, strict=True)
    ]
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
            "seed": seed,
            "routing": plan.routing,
            "rules": asdict(plan.rules),
            "assignment": {u: [int(c) for c in beat] for u, beat in plan.assignment.items()},
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
