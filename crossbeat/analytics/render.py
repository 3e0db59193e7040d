"""Analysis results as JSON-ready dicts, GeoJSON and PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

import h3
import numpy as np
import shapely

from crossbeat.analysis.emerging import EmergingResult
from crossbeat.analysis.hotspots import GiResult
from crossbeat.analysis.kde import KdeResult
from crossbeat.analysis.nearrepeat import KnoxResult
from crossbeat.analysis.points import to_lonlat
from crossbeat.analysis.series import SeriesResult, Similar
from crossbeat.analytics.run import CompStat, Outcome, Trend


def _num(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _params(result: Any) -> dict[str, Any]:
    p = getattr(result, "params", None)
    return {k: _num(v) for k, v in asdict(p).items()} if p is not None and is_dataclass(p) else {}  # type: ignore[arg-type]


def _head(outcome: Outcome[Any], kind: str) -> dict[str, Any]:
    return {
        "analysis": kind,
        "params": _params(outcome.result),
        "n_used": _num(getattr(outcome.result, "n_used", len(outcome.selection.arrays))),
        "skipped": outcome.skipped.reasons,
        "owners": outcome.selection.owners,
    }


def h3_ring(cell: str) -> list[list[float]]:
    """Return the closed WGS84 ring ``[lon, lat]`` of an H3 cell (GeoJSON order)."""
    ring = [[lon, lat] for lat, lon in h3.cell_to_boundary(cell)]
    return [*ring, ring[0]]


def cell_geometry(result: GiResult, cell: str, shapes: Mapping[str, Any]) -> dict[str, Any]:
    """Return the GeoJSON geometry of a Gi* cell: an H3 cell, a grid square or an area."""
    if result.params.cells == "area":
        return dict(shapely.geometry.mapping(shapes[cell]))
    return {"type": "Polygon", "coordinates": [cell_polygon(result, cell)]}


def _rings(result: GiResult, cell: str, shapes: Mapping[str, Any]) -> list[list[list[float]]]:
    """Return the exterior rings of a cell (several for a multipolygon area)."""
    if result.params.cells != "area":
        return [cell_polygon(result, cell)]
    geom = shapes[cell]
    return [[list(xy) for xy in p.exterior.coords] for p in getattr(geom, "geoms", [geom])]


def cell_polygon(result: GiResult, cell: str) -> list[list[float]]:
    """Return the WGS84 ring (lon, lat) of an H3 cell or a grid square."""
    if result.params.cells == "h3":
        return h3_ring(cell)
    else:
        c, r = (int(v) for v in cell.split(","))
        s = result.params.resolution
        xs = np.array([c, c + 1, c + 1, c]) * s
        ys = np.array([r, r, r + 1, r + 1]) * s
        lon, lat = to_lonlat(xs, ys, str(result.params.crs))
        ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    return [*ring, ring[0]]


def hotspots_json(
    outcome: Outcome[GiResult], *, geojson: bool = False, only_significant: bool = True
) -> dict[str, Any]:
    """Return Gi* cells (hot or cold ones by default) as JSON or a GeoJSON FeatureCollection."""
    r = outcome.result
    pick = np.flatnonzero(r.hot | r.cold) if only_significant else np.arange(len(r.cell))
    rows = [
        {
            "cell": str(r.cell[i]),
            "count": _num(r.count[i]),
            "z": _num(r.z[i]),
            "p": _num(r.p[i]),
            "q": _num(r.q[i]),
            "class": "hot" if r.hot[i] else "cold" if r.cold[i] else "none",
        }
        for i in pick
    ]
    head = _head(outcome, "hotspots") | {
        "cells": len(r.cell),
        "hot": int(r.hot.sum()),
        "cold": int(r.cold.sum()),
    }
    if not geojson:
        return head | {"results": rows}
    feats = [
        {
            "type": "Feature",
            "geometry": cell_geometry(r, row["cell"], outcome.shapes),
            "properties": row,
        }
        for row in rows
    ]
    return {"type": "FeatureCollection", "features": feats, "properties": head}


def kde_json(outcome: Outcome[KdeResult], *, geojson: bool = False) -> dict[str, Any]:
    """Return the density raster (JSON) or the highest-density contours (GeoJSON)."""
    r = outcome.result
    head = _head(outcome, "kde") | {"thresholds": {str(k): v for k, v in r.thresholds.items()}}
    if geojson:
        feats = [
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(g),
                "properties": {"mass": level, "density_per_km2": r.thresholds[level]},
            }
            for level, g in sorted(r.contours.items(), reverse=True)
            if not g.is_empty
        ]
        return {"type": "FeatureCollection", "features": feats, "properties": head}
    return head | {
        "crs": r.params.crs,
        "x": [float(v) for v in r.x],
        "y": [float(v) for v in r.y],
        "density": np.round(r.density, 6).tolist(),
        "units": "incidents per km²; density[i][j] at projected node (x[i], y[j])",
    }


def emerging_json(outcome: Outcome[EmergingResult], *, geojson: bool = False) -> dict[str, Any]:
    """Return each cell's pattern (new, intensifying, persistent...) with its trend."""
    r = outcome.result
    rows = [
        {
            "cell": str(r.cell[i]),
            "pattern": str(r.pattern[i]),
            "trend_z": _num(r.trend_z[i]),
            "trend_p": _num(r.trend_p[i]),
            "counts": [float(c) for c in r.counts[i]],
        }
        for i in range(len(r.cell))
        if r.pattern[i] not in ("", "none", "no pattern")
    ]
    head = _head(outcome, "emerging")
    if not geojson:
        return head | {"results": rows}
    feats = [
        {"type": "Feature", "properties": row,
         "geometry": {"type": "Polygon", "coordinates": [h3_ring(row["cell"])]}}
        for row in rows
    ]  # fmt: skip
    return {"type": "FeatureCollection", "features": feats, "properties": head}


def trends_json(outcome: Outcome[Trend]) -> dict[str, Any]:
    """Return counts per group and period."""
    pc = outcome.result.counts
    return _head(outcome, "trends") | {
        "by": outcome.result.by,
        "layer": outcome.result.layer,
        "period": outcome.result.period,
        "edges": [str(e) for e in pc.edges],
        "groups": {str(g): np.round(pc.counts[k], 3).tolist() for k, g in enumerate(pc.groups)},
        "outside": _num(pc.outside),
        "change": _change_json(outcome.result.change, outcome.result.change_note),
    }


def _change_json(change: Any, note: str) -> dict[str, Any]:
    """The last period against its seasonal expectation, per group (or why there is none)."""
    if change is None:
        return {"note": note}
    p = change.params
    return {
        "start": p.start,
        "end": p.end,
        "years": p.years,
        "spread_weeks": p.spread_weeks,
        "groups": {
            str(g): {
                "observed": _num(change.observed[k]),
                "expected": _num(change.expected[k]),
                "change_pct": _num(change.change[k]),
                "p": _num(change.p[k]),
            }
            for k, g in enumerate(change.groups)
        },
    }


def compstat_json(outcome: Outcome[CompStat]) -> dict[str, Any]:
    """Return the CompStat rows and the categories rising on both sides of a border."""
    t = outcome.result.table
    rows = [
        {
            "group": str(t.group[g]), "category": str(t.category[g]), "period": period,
            "current": _num(t.current[g, k]), "previous": _num(t.previous[g, k]),
            "change_pct": _num(t.change[g, k]), "p": _num(t.p[g, k]),
        }
        for g in range(len(t.group))
        for k, period in enumerate(t.period)
    ]  # fmt: skip
    rising = [{k: _num(v) for k, v in asdict(r).items()} for r in outcome.result.rising]
    borders = [list(b) for b in outcome.result.borders]
    return (
        _head(outcome, "compstat")
        | {
            "by": outcome.result.by,
            "layer": outcome.result.layer,
            "rows": rows,
            "borders": borders,
            "rising_across_borders": rising,
        }
        | _history_note(t.no_history, t.params.periods)
    )


def _history_note(
    no_history: tuple[str, ...], periods: tuple[tuple[str, str, str, str, str], ...]
) -> dict[str, Any]:
    """Say which CompStat periods have no year-earlier comparison, and why."""
    if not no_history:
        return {}
    starts = ", ".join(f"{p[0]} from {p[3]}" for p in periods if p[0] in no_history)
    return {
        "note": f"no comparison with last year for {', '.join(no_history)}: the selection "
        f"does not reach back to the year-earlier period ({starts}); no data is not zero "
        "incidents (select more history)"
    }


def nearrepeat_json(outcome: Outcome[KnoxResult]) -> dict[str, Any]:
    """Return the Knox table: observed, expected, ratio and p per distance x time band."""
    r = outcome.result
    d, t = r.params.distance_edges_m, r.params.time_edges_days
    rows = [
        {
            "distance_m": [d[i], d[i + 1]],
            "days": [t[j], t[j + 1]],
            "observed": _num(r.observed[i, j]),
            "expected": _num(r.expected[i, j]),
            "ratio": _num(r.ratio[i, j]),
            "p": _num(r.p[i, j]),
        }
        for i in range(len(d) - 1)
        for j in range(len(t) - 1)
    ]
    return _head(outcome, "nearrepeat") | {"pairs": r.n_pairs, "table": rows}


def _clock(hour: np.ndarray | None, width: np.ndarray | None, i: int) -> str | None:
    """The local time of day of incident ``i`` ("21:05", or "18:00-23:00" for a range)."""
    if hour is None or width is None or not np.isfinite(hour[i]):
        return None

    def hm(h: float) -> str:
        m = int(round(h * 60)) % (24 * 60)
        return f"{m // 60:02d}:{m % 60:02d}"

    return hm(hour[i]) if width[i] == 0 else f"{hm(hour[i])}-{hm(hour[i] + width[i])}"


def series_json(outcome: Outcome[SeriesResult]) -> dict[str, Any]:
    """Return each series with its members per agency (ids as the viewer sees them)."""
    a, r = outcome.selection.arrays, outcome.result
    out = []
    for k, members in enumerate(r.series):
        by: dict[str, list[dict[str, Any]]] = {}
        for i in members:
            by.setdefault(str(a.owner[i]), []).append(
                {
                    "id": str(a.id[i]),
                    "nibrs_code": str(a.nibrs_code[i]),
                    "occurred_from": str(a.occurred_from[i]),
                    "local_time": _clock(r.local_hour, r.range_hours, i),
                    "lon": _num(a.lon[i]),
                    "lat": _num(a.lat[i]),
                }
            )
        out.append({"series": k, "size": len(members), "agencies": sorted(by), "members": by})
    return _head(outcome, "series") | {"series": out}


def similar_json(outcome: Outcome[Similar]) -> dict[str, Any]:
    """Return the most similar incidents with score and reasons."""
    a, r = outcome.selection.arrays, outcome.result
    rows = [
        {
            "id": str(a.id[i]),
            "agency_id": str(a.owner[i]),
            "score": round(float(s), 4),
            "reason": why,
        }
        for i, s, why in zip(r.index, r.score, r.reasons, strict=True)
    ]
    return _head(outcome, "similar") | {"results": rows}


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    return buf.getvalue()


def kde_png(result: KdeResult, title: str = "Kernel density") -> bytes:
    """Draw the density raster with its highest-density contours."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 6))
    m = ax.pcolormesh(result.lon, result.lat, result.density, cmap="magma", shading="auto")
    fig.colorbar(m, ax=ax, label="incidents per km²")
    for geom in result.contours.values():
        for poly in getattr(geom, "geoms", [geom]):
            if not poly.is_empty:
                ax.plot(*poly.exterior.xy, color="cyan", lw=0.8)
    ax.set_title(
        f"{title} (bandwidth {result.params.bandwidth_m:.0f} m; contours hold "
        f"{', '.join(f'{v:.0%}' for v in sorted(result.contours))} of incidents)",
        fontsize=9,
    )
    ax.set_aspect(1 / math.cos(math.radians(float(np.nanmean(result.lat)))))
    return _save(fig)


def hotspots_png(
    result: GiResult,
    title: str = "Getis-Ord Gi* hot spots",
    shapes: Mapping[str, Any] | None = None,
) -> bytes:
    """Draw hot (red) and cold (blue) cells at the FDR level over all occupied cells.

    ``shapes`` are the areas' geometries when the cells are an area layer's areas.
    """
    from matplotlib.collections import PolyCollection

    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 6))
    polys, colours = [], []
    show = (result.count > 0) | result.hot | result.cold
    if result.params.cells == "area":
        show[:] = True
    for i in np.flatnonzero(show):
        colour = "#d7301f" if result.hot[i] else "#2b8cbe" if result.cold[i] else "#dddddd"
        for ring in _rings(result, str(result.cell[i]), shapes or {}):
            polys.append(ring)
            colours.append(colour)
    edge = "white" if result.params.cells == "area" else "none"
    ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors=edge, linewidths=0.5))
    ax.autoscale()
    lat = np.mean([p[0][1] for p in polys]) if polys else 0.0
    ax.set_aspect(1 / math.cos(math.radians(lat)))
    ax.set_title(
        f"{title}: {int(result.hot.sum())} hot, {int(result.cold.sum())} cold cells "
        f"(FDR {result.params.alpha}; grey: not significant)",
        fontsize=9,
    )
    return _save(fig)


PATTERN_COLOURS = {
    "new": "#67000d",
    "consecutive": "#a50f15",
    "intensifying": "#cb181d",
    "persistent": "#ef3b2c",
    "diminishing": "#fc9272",
    "sporadic": "#fdae6b",
    "oscillating": "#fd8d3c",
    "historical": "#fee0d2",
}


def _pattern_colour(pattern: str) -> str | None:
    """Reds for hot patterns (darker: newer, stronger), blues for cold; None for none."""
    p = pattern.lower()
    if not p or p == "none":
        return None
    base = next((c for k, c in PATTERN_COLOURS.items() if k in p), "#969696")
    if "cold" in p:
        blues = {"#67000d": "#08306b", "#a50f15": "#08519c", "#cb181d": "#2171b5",
                 "#ef3b2c": "#4292c6", "#fc9272": "#9ecae1", "#fdae6b": "#c6dbef",
                 "#fd8d3c": "#6baed6", "#fee0d2": "#deebf7"}  # fmt: skip
        return blues.get(base, "#6baed6")
    return base


def emerging_png(result: EmergingResult, title: str = "Emerging hot spots") -> bytes:
    """Draw each cell coloured by its emerging hot spot pattern (grey: none)."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 6))
    polys, colours, seen = [], [], set()
    for cell, pat in zip(result.cell, result.pattern, strict=True):
        colour = _pattern_colour(str(pat))
        polys.append([[lon, lat] for lat, lon in h3.cell_to_boundary(str(cell))])
        colours.append(colour or "#eeeeee")
        if colour:
            seen.add(str(pat))
    ax.add_collection(PolyCollection(polys, facecolors=colours, edgecolors="none"))
    ax.autoscale()
    lat = np.mean([p[0][1] for p in polys]) if polys else 0.0
    ax.set_aspect(1 / math.cos(math.radians(lat)))
    handles = [Patch(color=_pattern_colour(p) or "#eeeeee", label=p) for p in sorted(seen)]
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=9)
    return _save(fig)


def knox_png(result: KnoxResult, title: str = "Knox near-repeat test") -> bytes:
    """Draw the observed/expected ratio per band, starring cells with p < 0.05."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    m = ax.imshow(result.ratio, cmap="RdBu_r", vmin=0.5, vmax=1.5, origin="lower", aspect="auto")
    d, t = result.params.distance_edges_m, result.params.time_edges_days
    ax.set_yticks(range(len(d) - 1), [f"{d[i]:g}-{d[i + 1]:g} m" for i in range(len(d) - 1)])
    ax.set_xticks(range(len(t) - 1), [f"{t[j]:g}-{t[j + 1]:g} d" for j in range(len(t) - 1)])
    for i in range(len(d) - 1):
        for j in range(len(t) - 1):
            star = "*" if result.p[i, j] < 0.05 else ""
            ax.text(j, i, f"{result.ratio[i, j]:.2f}{star}", ha="center", va="center", fontsize=8)
    fig.colorbar(m, ax=ax, label="observed / expected pairs")
    ax.set_title(f"{title} ({result.params.permutations} permutations; * p < 0.05)", fontsize=9)
    return _save(fig)


def trends_png(trend: Trend, title: str = "Incidents per period") -> bytes:
    """Draw one line per group."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    pc = trend.counts
    x = pc.edges[:-1]
    for k, g in enumerate(pc.groups):
        ax.plot(x, pc.counts[k], label=str(g))
    ax.legend(fontsize=7)
    ax.set_ylabel(f"incidents per {trend.period}")
    ax.set_title(title, fontsize=9)
    return _save(fig)


def series_png(outcome: Outcome[SeriesResult], title: str = "Series") -> bytes:
    """Draw every incident in grey and each series' members in colour, joined in time order."""
    plt = _figure()
    a, r = outcome.selection.arrays, outcome.result
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(a.lon, a.lat, s=1, c="#cccccc")
    for k, members in enumerate(r.series[:10]):
        m = list(members)
        ax.plot(
            a.lon[m],
            a.lat[m],
            "-o",
            ms=4,
            lw=0.8,
            label=f"series {k} ({len(m)}, {a.nibrs_code[m[0]]})",
        )
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig)
