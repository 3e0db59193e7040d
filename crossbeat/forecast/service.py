"""Forecasts on stored data: read the viewer's arrays, backtest, fit, store a card (issue #13).

The thin layer between the store and the database-free models. :func:`run_forecast`
reads the viewer's policy-filtered history through
:func:`crossbeat.sharing.arrays.analysis_arrays` (audited there), refuses categories that
are not forecastable (:data:`DEFAULT_FORECASTABLE`; drug and public-order offences are
never forecast unless an agency opts in), backtests the model on the windows just before
the forecast (its accuracy is stored and shown with every forecast), fits, flags the
highest-risk cells, measures accountability figures, and stores a model card with an
audit event in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import numpy as np
import shapely
from shapely.geometry import shape
from sqlalchemy import select

from crossbeat.areas import AreaError, layer_polygons
from crossbeat.audit import Action, AuditEvent, append
from crossbeat.forecast.backtest import consecutive, rolling_backtest
from crossbeat.forecast.borrowed import ALL, borrowed_selection
from crossbeat.forecast.cells import CellGrid, OnCells, area_grid, h3_grid
from crossbeat.forecast.gbm import GradientBoosted
from crossbeat.forecast.grid import SquareGrid, grid_for
from crossbeat.forecast.history import History, days, history_from_arrays
from crossbeat.forecast.metrics import flag
from crossbeat.forecast.models import (
    DecayedCounts,
    Ensemble,
    KernelDensity,
    Model,
    NaiveCounts,
    ProspectiveHotspot,
    RetrospectiveHotspot,
    ShrunkCounts,
)
from crossbeat.forecast.selection import OnlineSelection, count_family
from crossbeat.forecast.sepp import SelfExciting
from crossbeat.sharing.arrays import analysis_arrays
from crossbeat.sharing.request import ReadRequest, Viewer
from crossbeat.sharing.scope import Purpose
from crossbeat.store import Store
from crossbeat.store.schema import jurisdictions, model_cards

#: NIBRS codes forecast by default: property and street crimes whose records come from
#: victims' reports, not from where police choose to look.
DEFAULT_FORECASTABLE: frozenset[str] = frozenset(
    {"220", "240", "120", "23F", "23G", "23H", "23C", "23D", "200", "290", "13A"}
)
#: Never forecast unless an agency lists them explicitly: drug, weapon-law and
#: public-order offences are recorded mostly where police patrol (a feedback loop).
SENSITIVE: frozenset[str] = frozenset(
    {
        "35A",
        "35B",
        "520",
        "40A",
        "40B",
        "40C",
        "90B",
        "90C",
        "90D",
        "90E",
        "90F",
        "90G",
        "90J",
        "90Z",
    }
)

MODELS: dict[str, Callable[[], Model]] = {
    "naive": NaiveCounts,
    "retrospective": RetrospectiveHotspot,
    "prospective": ProspectiveHotspot,
    "kde": KernelDensity,
    "decayed": DecayedCounts,
    # Empirical-Bayes counts shrunk toward their smoothed surface (docs/forecasting.md).
    "shrunk": ShrunkCounts,
    "sepp": SelfExciting,
    "gbm": GradientBoosted,
    "ensemble": lambda: Ensemble([GradientBoosted(), SelfExciting(), NaiveCounts(days=730)]),
    # Chosen on validation windows before the test windows (docs/forecasting.md).
    "ensemble-decayed": lambda: Ensemble(
        [SelfExciting(), DecayedCounts(half_life=90.0)], name="ensemble-decayed"
    ),
    # The count model (look-back, decay, shrinkage) chosen on the windows before each
    # forecast (crossbeat.forecast.selection; docs/forecasting.md).
    "counts-selected": lambda: OnlineSelection(count_family(), name="counts-selected"),
}

#: Models that also learn from the viewer's other forecastable categories, which
#: :func:`model_factory` reads (audited) besides the forecast category: ``name ->
#: factory(history of every forecastable category, the forecast category's codes)``.
BORROWING: dict[str, Callable[[History, tuple[str, ...]], Model]] = {
    # Own counts plus related categories' counts, the related categories and weight
    # chosen on every window before each forecast (crossbeat.forecast.borrowed).
    "borrowed": lambda related, codes: borrowed_selection(
        related, ",".join(codes), related=[*sorted(set(related.category) - set(codes)), ALL]
    ),
}


def model_names() -> list[str]:
    """Return every model a forecast can name: :data:`MODELS`, then :data:`BORROWING`."""
    return [*MODELS, *BORROWING]


class ForecastError(ValueError):
    """A forecast that cannot be made, with the reason and the next step."""


def model_factory(
    store: Store,
    viewer: Viewer,
    model: str,
    *,
    category: str,
    history: History,
    until: datetime,
    allowed: frozenset[str] | None = None,
    purpose: Purpose | None = Purpose.ANALYSIS,
) -> tuple[Callable[[], Model], History | None]:
    """Return a factory of fresh ``model`` instances for ``category``, and what it borrows.

    For a model of :data:`BORROWING`, the viewer's incidents of every forecastable
    category (``allowed``, default :data:`DEFAULT_FORECASTABLE`) before ``until`` are
    read through the sharing policy (one more audited read) in ``history``'s frame, and
    are what it may borrow from (returned with the factory, for the model card's data
    snapshot; None for the other models). Categories that may not be forecast never
    steer a forecast either: drug and public-order records are made mostly where police
    look.

    Raises
    ------
    ForecastError
        For a name outside :func:`model_names`.
    """
    if model in MODELS:
        return MODELS[model], None
    if model not in BORROWING:
        raise ForecastError(f"unknown model {model!r}: use one of {', '.join(model_names())}")
    allowed = DEFAULT_FORECASTABLE if allowed is None else allowed
    arrays = analysis_arrays(
        store, viewer, ReadRequest(offences=frozenset(allowed), until=until, purpose=purpose)
    )
    related = history_from_arrays(arrays, frame=history.frame)
    make = BORROWING[model]
    codes = forecast_codes(category)
    return (lambda: make(related, codes)), related


def forecast_codes(category: str) -> tuple[str, ...]:
    """Return the NIBRS codes a forecast category names, sorted, each once.

    A category is one code (``220``) or several joined by commas (``120,13A,13B``: a
    group such as the NIJ challenge's "street crime", forecast as one category).

    Examples
    --------
    >>> forecast_codes("13b, 120,13A,120")
    ('120', '13A', '13B')
    """
    codes = sorted({c.strip().upper() for c in category.split(",") if c.strip()})
    if not codes:
        raise ForecastError("category: name a NIBRS code, or several joined by commas")
    return tuple(codes)


def check_forecastable(category: str, allowed: frozenset[str] | None = None) -> tuple[str, ...]:
    """Return the codes of ``category`` (:func:`forecast_codes`), each of them forecastable.

    Raises
    ------
    ForecastError
        Naming every code outside the allowed list (default :data:`DEFAULT_FORECASTABLE`).
    """
    allowed = DEFAULT_FORECASTABLE if allowed is None else allowed
    codes = forecast_codes(category)
    refused = [c for c in codes if c not in allowed]
    if refused:
        extra = (
            " (drug, weapon and public-order offences are never forecast by default)"
            if any(c in SENSITIVE for c in refused)
            else ""
        )
        what = ", ".join(repr(c) for c in refused)
        raise ForecastError(
            f"category {what} {'is' if len(refused) == 1 else 'are'} not forecastable{extra}; "
            f"forecastable: {', '.join(sorted(allowed))}. An agency opts in by listing it "
            "(see docs/forecasting.md)."
        )
    return codes


@dataclass(frozen=True)
class ModelCard:
    """A stored forecast: what produced it, on what data, how accurate it has been."""

    id: str
    agency_id: str
    created_at: datetime
    created_by: str
    category: str
    model: str
    params: dict[str, Any]
    grid: dict[str, Any]
    training_from: datetime | None
    training_to: datetime
    window_from: datetime
    window_to: datetime
    data_snapshot: dict[str, Any]
    backtest: dict[str, Any]
    accountability: dict[str, Any]
    forecast: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        d = asdict(self)
        for k in ("created_at", "training_from", "training_to", "window_from", "window_to"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


def jurisdiction_area(store: Store, agency_id: str) -> shapely.Geometry | None:
    """Return the union of an agency's jurisdiction polygons (WGS84), or None if it has none."""
    with store.connect() as conn:
        rows = conn.execute(
            select(jurisdictions.c.geojson).where(jurisdictions.c.agency_id == agency_id)
        ).all()
    if not rows:
        return None
    return shapely.union_all([shape(json.loads(r[0])) for r in rows])


#: Side of the square raster the models run on for H3 and area-layer cells (metres).
FINE_RASTER_M = 50.0


def parse_cells(spec: str) -> tuple[str, int | str | None]:
    """Split a cell kind: ``square``, ``h3:RESOLUTION`` (5–11) or ``area:LAYER``.

    Examples
    --------
    >>> parse_cells("h3:9"), parse_cells("area:wards"), parse_cells("square")
    (('h3', 9), ('area', 'wards'), ('square', None))
    """
    kind, _, arg = spec.partition(":")
    if kind == "square" and not arg:
        return "square", None
    if kind == "h3" and arg.isdigit() and 5 <= int(arg) <= 11:
        return "h3", int(arg)
    if kind == "area" and arg:
        return "area", arg
    raise ForecastError(
        f"cells {spec!r}: use square (with a cell size), h3:RESOLUTION (5 to 11: 9 is about "
        "0.1 km²) or area:LAYER (one of your agency's area layers)"
    )


def forecast_cells(
    store: Store,
    agency_id: str | None,
    history: History,
    spec: str,
    *,
    cell_m: float = 150.0,
    area: shapely.Geometry | None = None,
) -> SquareGrid | CellGrid:
    """Return the cells a forecast is made on: squares of ``cell_m``, H3 or an area layer.

    ``spec`` is ``square``, ``h3:RESOLUTION`` or ``area:LAYER`` (a layer of
    ``agency_id``'s, :mod:`crossbeat.areas`); every kind is clipped to ``area`` (the
    jurisdictions forecast for) when given.
    """
    kind, arg = parse_cells(spec)
    try:
        if kind == "h3":
            return h3_grid(history, int(arg or 0), area=area)
        if kind == "area":
            if agency_id is None:
                raise ForecastError("area-layer cells: sign in as a member of an agency")
            polys = dict(layer_polygons(store, agency_id, str(arg)))
            return area_grid(history, polys, layer=str(arg), area=area)
    except (AreaError, ValueError) as e:
        if isinstance(e, ForecastError):
            raise
        raise ForecastError(f"cells {spec!r}: {e}") from e
    return grid_for(history, cell_m, area=area)


def _on(grid: SquareGrid | CellGrid, model: Model) -> Any:
    # Models forecast on squares; other cells sum a fine raster's forecast (cells.OnCells).
    return model if isinstance(grid, SquareGrid) else OnCells(model, fine=FINE_RASTER_M)


def _grid_json(grid: SquareGrid | CellGrid, spec: str, clipped: bool) -> dict[str, Any]:
    common = {
        "clipped": clipped,
        "cells": grid.n,
        "area_m2": grid.total_area,
        "frame": [grid.frame.lon0, grid.frame.lat0],
    }
    if isinstance(grid, SquareGrid):
        return {
            "kind": "square",
            "size_m": grid.size,
            **common,
            "x0": grid.x0,
            "y0": grid.y0,
            "nx": grid.nx,
            "ny": grid.ny,
        }
    kind, arg = parse_cells(spec)
    key = "resolution" if kind == "h3" else "layer"
    return {"kind": kind, key: arg, **common, "fine_raster_m": FINE_RASTER_M}


def _dt(day: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)


def _digest(h: History) -> str:
    digest = hashlib.sha256()
    for a in (h.x, h.y, h.t0, h.t1):
        digest.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _snapshot(h: History, owners: dict[str, int], related: History | None) -> dict[str, Any]:
    out: dict[str, Any] = {"records": len(h), "owners": owners, "sha256": _digest(h)}
    if related is not None:
        # What a borrowing model read besides the category: every forecastable one.
        cats, n = np.unique(related.category.astype(str), return_counts=True)
        out["related"] = {
            "records": len(related),
            "categories": {str(c): int(k) for c, k in zip(cats, n, strict=True)},
            "sha256": _digest(related),
        }
    return out


def run_forecast(
    store: Store,
    viewer: Viewer,
    *,
    category: str,
    start: datetime,
    window_days: float = 7.0,
    model: str = "ensemble-decayed",
    cell_m: float = 150.0,
    fraction: float = 0.01,
    backtest_windows: int = 4,
    allowed: frozenset[str] | None = None,
    cells: str = "square",
) -> ModelCard:
    """Forecast ``category`` for ``[start, start + window_days)`` and store its model card.

    Parameters
    ----------
    store, viewer
        Whose visible history is used (read through the sharing policy, audited).
    category
        A forecastable NIBRS code, or several joined by commas, forecast together (see
        :func:`check_forecastable`); the card stores them sorted (``120,13A,13B``).
    start
        Start of the forecast window (timezone-aware); only incidents before it are used.
    window_days
        Window length (a shift is ``8 / 24``).
    model
        One of :func:`model_names` (a model of :data:`BORROWING` also reads the
        viewer's other forecastable categories, see :func:`model_factory`).
    cell_m
        Square cell side in metres (``cells="square"``).
    fraction
        Share of the area to flag.
    backtest_windows
        How many windows just before ``start`` to backtest on (stored on the card).
    allowed
        The agency's forecastable categories (default :data:`DEFAULT_FORECASTABLE`).
    cells
        ``square``, ``h3:RESOLUTION`` or ``area:LAYER`` (see :func:`forecast_cells`):
        the card's ``grid.kind`` says which, and every flagged cell of H3 or area-layer
        kind carries its id and GeoJSON geometry.
    """
    codes = check_forecastable(category, allowed)
    category = ",".join(codes)
    parse_cells(cells)
    if model not in model_names():
        raise ForecastError(f"unknown model {model!r}: use one of {', '.join(model_names())}")
    if start.tzinfo is None:
        raise ForecastError("start: give a date and time with a time zone")
    if not 0 < fraction < 1 or window_days <= 0 or cell_m <= 0:
        raise ForecastError("fraction must be in (0, 1), window and cell size positive")
    arrays = analysis_arrays(
        store,
        viewer,
        ReadRequest(offences=frozenset(codes), until=start, purpose=Purpose.ANALYSIS),
    )
    h = history_from_arrays(arrays)
    if len(h) < 30:
        raise ForecastError(
            f"only {len(h)} visible incidents of {category} before {start.date()}: need at least 30"
        )
    s = float(days(np.array([start.replace(tzinfo=None)], dtype="datetime64[us]"))[0])
    # Clipped to the viewer's jurisdictions: PAI then uses the real area forecast for.
    area = jurisdiction_area(store, viewer.agency_id) if viewer.agency_id else None
    grid = forecast_cells(store, viewer.agency_id, h, cells, cell_m=cell_m, area=area)
    if float(grid.area.min()) > fraction * grid.total_area:
        raise ForecastError(
            f"no cell fits in {fraction:g} of the area: the smallest of the {grid.n} cells is "
            f"{float(grid.area.min()) / grid.total_area:.3g} of it; flag a larger fraction"
        )
    windows = consecutive(s - backtest_windows * window_days, window_days, backtest_windows)
    make, related = model_factory(
        store, viewer, model, category=category, history=h, until=start, allowed=allowed
    )
    compared = [_on(grid, f()) for f in (make, NaiveCounts, KernelDensity)]
    bt = rolling_backtest(h, grid, compared, windows, (fraction, 0.05))
    m = _on(grid, make())
    m.fit(h, grid, s)
    expected = m.predict(s, s + window_days)
    flagged = flag(expected, grid.area, fraction * grid.total_area)
    card = ModelCard(
        id=str(uuid.uuid4()),
        agency_id=viewer.agency_id or "",
        created_at=store.clock.now(),
        created_by=viewer.id,
        category=category,
        model=model,
        params=m.params(),
        grid=_grid_json(grid, cells, area is not None),
        training_from=_dt(float(h.t0.min())),
        training_to=start,
        window_from=start,
        window_to=start + timedelta(days=window_days),
        data_snapshot=_snapshot(h, arrays.owner_counts(), related),
        backtest=_backtest_json(bt),
        accountability={},
        forecast=_forecast_json(grid, expected, flagged, fraction),
    )
    # Every agency whose records went into the card, the borrowed ones included.
    owners = set(arrays.owner_counts())
    if related is not None:
        owners |= {str(o) for o in np.unique(related.owner.astype(str))}
    with store.begin() as conn:
        previous = conn.execute(
            select(model_cards.c.forecast, model_cards.c.window_from)
            .where(model_cards.c.agency_id == card.agency_id, model_cards.c.category == category)
            .order_by(model_cards.c.created_at.desc())
            .limit(12)
        ).all()
        acc = accountability(h, grid, flagged, [(r[0], r[1]) for r in previous], s)
        card = ModelCard(**{**card.__dict__, "accountability": acc})
        conn.execute(model_cards.insert().values(**card.__dict__))
        append(
            store,
            AuditEvent(
                action=Action.CHANGE,
                actor=viewer.id,
                actor_agency=viewer.agency_id,
                resource_type="model_card",
                owner_agencies=tuple(sorted(owners)),
                record_count=len(h),
                details={
                    "operation": "forecast",
                    "model_card": card.id,
                    "model": model,
                    "category": category,
                    "window_from": start.isoformat(),
                },
            ),
            conn=conn,
        )
    return card


def _finite(v: float) -> float | None:
    # A score that cannot be computed (no incident, or no cell fits the area fraction) is
    # null: JSON has no NaN (PostgreSQL refuses it).
    return float(v) if np.isfinite(v) else None


def _backtest_json(bt: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"windows": len(bt.windows), "observed": bt.observed_total, "models": {}}
    for r in bt.results:
        out["models"][r.model] = {
            f"{f:g}": {
                "pai": _finite(r.mean(f, "pai")),
                "pei": _finite(r.mean(f, "pei")),
                "hit_rate": _finite(r.mean(f, "hit_rate")),
            }
            for f in bt.fractions
        }
        out["models"][r.model]["calibration"] = r.calibration(5)
    return out


def _forecast_json(
    grid: SquareGrid | CellGrid, expected: np.ndarray, flagged: np.ndarray, fraction: float
) -> dict[str, Any]:
    x, y = grid.centres()
    lon, lat = grid.frame.inverse(x[flagged], y[flagged])
    out = [
        {
            "cell": int(c),
            "lon": float(a),
            "lat": float(b),
            "expected": float(expected[c]),
            "h3_9": h3.latlng_to_cell(float(b), float(a), 9),
        }
        for c, a, b in zip(flagged, lon, lat, strict=True)
    ]
    if isinstance(grid, CellGrid):
        # Hexagons and areas are drawn and evaluated from their (clipped) geometry.
        shapes = grid.polygons_lonlat()
        for c, d in zip(flagged, out, strict=True):
            d["id"] = grid.ids[int(c)]
            d["geometry"] = json.loads(shapely.to_geojson(shapes[int(c)]))
    return {"fraction": fraction, "expected_total": float(expected.sum()), "cells": out}


def accountability(
    history: History,
    grid: SquareGrid | CellGrid,
    flagged: np.ndarray,
    previous: list[tuple[dict[str, Any], datetime]],
    start: float,
) -> dict[str, Any]:
    """Return concentration and feedback-loop figures for a forecast.

    * ``concentration``: the share of flagged cells in each neighbourhood (H3 resolution
      7, about 5 km²) and the largest share: a forecast that puts all its attention on one
      neighbourhood shows it;
    * ``persistence``: the share of this forecast's cells (H3 resolution 9) that earlier
      forecasts also flagged, newest first;
    * ``feedback``: among incidents recorded in the last 90 days, the share that fell in
      cells earlier forecasts had flagged, divided by those cells' share of the area (a lift
      that grows forecast after forecast means the forecasts are increasingly fed by
      records made where patrols were sent).
    """
    x, y = grid.centres()
    lon, lat = grid.frame.inverse(x[flagged], y[flagged])
    hoods = [h3.latlng_to_cell(float(b), float(a), 7) for a, b in zip(lon, lat, strict=True)]
    counts: dict[str, int] = {}
    for c in hoods:
        counts[c] = counts.get(c, 0) + 1
    shares = {k: v / max(len(hoods), 1) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
    mine = {h3.latlng_to_cell(float(b), float(a), 9) for a, b in zip(lon, lat, strict=True)}
    persistence = []
    before: set[str] = set()
    for forecast, when in previous:
        cells = {c["h3_9"] for c in forecast.get("cells", [])}
        before |= cells
        persistence.append(
            {"window_from": when.isoformat(), "share": len(mine & cells) / max(len(mine), 1)}
        )
    recent = history.take(history.t0 >= start - 90)
    lift = None
    if before and len(recent):
        rlon, rlat = grid.frame.inverse(recent.x, recent.y)
        inside = np.array(
            [
                h3.latlng_to_cell(float(b), float(a), 9) in before
                for a, b in zip(rlon, rlat, strict=True)
            ]
        )
        area_share = len(before) * h3.average_hexagon_area(9, "m^2") / grid.total_area
        lift = float(inside.mean() / area_share) if area_share > 0 else None
    return {
        "concentration": {
            "neighbourhoods": len(shares),
            "largest_share": max(shares.values(), default=0.0),
            "shares": dict(list(shares.items())[:20]),
        },
        "persistence": persistence,
        "feedback": {"lift_in_previously_flagged": lift, "previous_forecasts": len(previous)},
    }


def list_model_cards(store: Store, agency_id: str, *, limit: int = 50) -> list[ModelCard]:
    """Return an agency's model cards, newest first."""
    with store.begin() as conn:
        rows = (
            conn.execute(
                select(model_cards)
                .where(model_cards.c.agency_id == agency_id)
                .order_by(model_cards.c.created_at.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    return [ModelCard(**dict(r)) for r in rows]


def get_model_card(store: Store, card_id: str, agency_id: str) -> ModelCard:
    """Return one of an agency's model cards (:class:`ForecastError` if there is none)."""
    with store.begin() as conn:
        row = (
            conn.execute(
                select(model_cards).where(
                    model_cards.c.id == card_id, model_cards.c.agency_id == agency_id
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise ForecastError(f"no model card {card_id!r} for agency {agency_id!r}")
    return ModelCard(**dict(row))
