"""One function per analysis: read the viewer's incidents once, run, return the result.

Each function takes the store, the viewer and a :class:`ReadRequest` (filters: time
window, offences, agencies, areas, bounding box), reads the incidents through
:func:`crossbeat.analytics.selection.select` (one audited query; linked duplicates once)
and returns an :class:`Outcome`: the analysis's typed result (with the parameters it
used), what the selection set aside, and the count per owner agency. Bad input raises
:class:`crossbeat.analysis.errors.AnalysisError` with a message for the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import h3
import numpy as np
import shapely

from crossbeat.agencies import jurisdiction_index, list_agencies
from crossbeat.analysis import emerging as emerging_mod
from crossbeat.analysis import hotspots as hotspots_mod
from crossbeat.analysis import kde as kde_mod
from crossbeat.analysis import localtime
from crossbeat.analysis import nearrepeat as nearrepeat_mod
from crossbeat.analysis import series as series_mod
from crossbeat.analysis import trends as trends_mod
from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.analytics.selection import Selection, select
from crossbeat.areas import AreaError, layer_polygons
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.scope import parse_precision
from crossbeat.store import Store

R = TypeVar("R")

Period = Literal["day", "week", "month"]
#: How trends and CompStat group incidents: by owner agency (the jurisdiction whose
#: incident it is), by area of an area layer (precinct, district, beat ...) or not at all.
By = Literal["agency", "region", "area"]


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """An analysis result with the selection it ran on.

    ``skipped`` is what the selection set aside (linked duplicates); the result's own
    ``skipped`` says what the analysis could not use (missing place or time...).
    """

    result: R
    selection: Selection
    #: Geometries of named cells (an area layer's areas), for GeoJSON and pictures.
    shapes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def skipped(self) -> Skipped:
        """Everything left out: by the selection and by the analysis."""
        own = getattr(self.result, "skipped", None)
        return (
            self.selection.skipped.merged(own)
            if isinstance(own, Skipped)
            else self.selection.skipped
        )


def granted_resolution(sel: Selection) -> tuple[str, str, int] | None:
    """Return the owner whose points the viewer was granted at the coarsest H3 cells.

    Among the owners with incidents in the selection whose grants snap points to the
    anchors of H3 cells (``block``: resolution 10, ``h3:N``): ``(owner, precision,
    resolution)`` of the lowest resolution (ties: the first owner by name). None when
    every point is exact (or no precision is known).
    """
    known = sel.arrays.precisions
    if not known:
        return None
    found: tuple[int, str, str] | None = None
    for owner in sorted(sel.owners):
        name = known.get(owner)
        if name is None:
            continue
        p = parse_precision(name)
        if p.name == "exact" or p.resolution is None or not p.has_point:
            continue
        if found is None or p.resolution < found[0]:
            found = (p.resolution, owner, p.name)
    return None if found is None else (found[1], found[2], found[0])


def check_resolution(sel: Selection, resolution: int, what: str) -> None:
    """Refuse H3 cells finer than the cells the selection's points were granted at.

    A partner granted ``h3:9`` has every point at the anchor of its res-9 cell: counted
    on res-10 or res-11 cells they would look finer than the grant and mislead.

    Raises
    ------
    AnalysisError
        Naming the owner, its granted precision and the finest resolution allowed.
    """
    granted = granted_resolution(sel)
    if granted is None or resolution <= granted[2]:
        return
    owner, name, finest = granted
    raise AnalysisError(
        f"{what} at H3 resolution {resolution} is finer than {owner}'s incidents were shared "
        f"with you ({name}: points snapped to H3 resolution {finest} cells): ask for "
        f"resolution={finest} or coarser (the finest allowed), or leave {owner}'s incidents "
        f"out (the agency filter)"
    )


def finest_metres(sel: Selection) -> tuple[str, str, int] | None:
    """Return ``(owner, precision, metres)``: the smallest length an analysis may resolve.

    The edge of the coarsest granted H3 cell (:func:`granted_resolution`), its average
    hexagon edge length rounded up to a whole metre. None when every point is exact.
    """
    granted = granted_resolution(sel)
    if granted is None:
        return None
    owner, name, res = granted
    return owner, name, int(np.ceil(h3.average_hexagon_edge_length(res, unit="m")))


def check_metres(sel: Selection, param: str, metres: float, what: str = "") -> None:
    """Refuse a length (bandwidth, cell size) shorter than the granted cells' edge.

    Raises
    ------
    AnalysisError
        Naming the owner, its granted precision and the smallest value allowed.
    """
    finest = finest_metres(sel)
    if finest is None or metres >= finest[2]:
        return
    owner, name, least = finest
    raise AnalysisError(
        f"{param}={what or f'{metres:g}'} m is finer than {owner}'s incidents were shared "
        f"with you ({name}: points snapped to the anchors of H3 cells with {least} m edges): "
        f"ask for {param}={least} or more (the finest allowed), or leave {owner}'s incidents "
        f"out (the agency filter)"
    )


def viewer_zone(store: Store, viewer: Viewer, owners: Iterable[str]) -> str:
    """Return the IANA time zone whose local calendar a viewer's time bins follow.

    The viewer's agency's; for a viewer without one (the public), the zone the owner
    agencies of the selection share, else ``"UTC"`` (also for an empty selection).
    """
    zone = _zones(store)
    if viewer.agency_id in zone:
        return zone[viewer.agency_id]
    shared = {zone.get(owner, "UTC") for owner in owners}
    return shared.pop() if len(shared) == 1 else "UTC"


def _zones(store: Store) -> dict[str, str]:
    """Each registered agency's IANA time zone, in one query."""
    return {a.id: a.timezone for a in list_agencies(store)}


def layer_shapes(store: Store, viewer: Viewer, layer: str | None) -> list[tuple[str, Any]]:
    """Return the areas of ``layer`` (``LAYER``, the viewer's agency's, or ``AGENCY/LAYER``).

    Raises
    ------
    AnalysisError
        When no layer is named or the agency has no such layer (naming those it has).
    """
    if not layer:
        raise AnalysisError("areas need layer=LAYER (your agency's) or layer=AGENCY/LAYER")
    owner, _, name = layer.rpartition("/")
    owner = owner or (viewer.agency_id or "")
    try:
        return layer_polygons(store, owner, name)
    except AreaError as exc:
        raise AnalysisError(str(exc)) from None


def area_of(shapes: list[tuple[str, Any]], lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return the name of the area containing each point (``""``: in none, or no point).

    Points are the granted ones (an incident shared at block or H3 precision is placed
    by its anchor). A point on the border of two areas goes to the first by name, so
    every incident counts once and the areas add up.
    """
    out = np.full(len(lon), "", dtype=object)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not shapes or not ok.any():
        return out
    names = np.array([n for n, _ in shapes], dtype=object)
    tree = shapely.STRtree([g for _, g in shapes])
    where = np.flatnonzero(ok)
    pt, poly = tree.query(shapely.points(lon[where], lat[where]), predicate="intersects")
    order = np.lexsort((poly, pt))  # per point, the first area by name (shapes are sorted)
    pt, poly = pt[order], poly[order]
    first = np.unique(pt, return_index=True)[1]
    out[where[pt[first]]] = names[poly[first]]
    return out


def _groups(
    store: Store, viewer: Viewer, sel: Selection, by: By, layer: str | None
) -> tuple[np.ndarray | None, str | None, Skipped]:
    """Return the group of each selected incident, the layer used and what fell outside."""
    a = sel.arrays
    if by != "area":
        if layer:
            raise AnalysisError("layer= needs by=area")
        return (a.owner.astype(str) if by == "agency" else None), None, Skipped()
    shapes = layer_shapes(store, viewer, layer)
    groups = area_of(shapes, a.lon, a.lat)
    outside = int((groups == "").sum())
    if outside == len(groups):
        raise AnalysisError(
            f"none of the {len(groups):,} incidents you may see lies in an area of layer "
            f"{layer} (or has a place you may see): choose another layer or selection"
        )
    reason = f"no point in an area of layer {layer}"
    return groups, layer, Skipped({reason: outside} if outside else {})


def _rename_missing(skipped: Skipped, layer: str | None) -> Skipped:
    """Drop the library's "missing group" (counted by :func:`_groups` with its reason)."""
    if layer is None:
        return skipped
    return Skipped({k: v for k, v in skipped.reasons.items() if k != "missing group"})


def kde(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    bandwidth: kde_mod.Bandwidth = "scott",
    cell_m: float | None = None,
) -> Outcome[kde_mod.KdeResult]:
    """Kernel density of the viewer's incidents (raster and highest-density contours).

    A bandwidth (given, or the rule of thumb's) or a ``cell_m`` shorter than the edge of
    the coarsest H3 cell a partner's points were granted at is refused
    (:func:`check_metres`): the surface would look finer than the grant.
    """
    sel = select(store, viewer, request)
    a = sel.arrays
    if not isinstance(bandwidth, str):
        check_metres(sel, "bandwidth", float(bandwidth))
    if cell_m is not None:
        check_metres(sel, "cell_m", float(cell_m))
    res = kde_mod.kernel_density(a.lon, a.lat, bandwidth=bandwidth, cell_m=cell_m)
    if isinstance(bandwidth, str):
        bw = res.params.bandwidth_m
        check_metres(sel, "bandwidth", bw, f"{bandwidth} (here {bw:.0f})")
    return Outcome(res, sel)


def hotspots(
    store: Store, viewer: Viewer, request: ReadRequest | None = None, *,
    cells: Literal["h3", "grid", "area"] = "h3", resolution: int = 9, cell_m: float = 250.0,
    layer: str | None = None, k: int = 1, alpha: float = 0.05, permutations: int = 0,
    seed: int | None = 0,
) -> Outcome[hotspots_mod.GiResult]:  # fmt: skip
    """Getis-Ord Gi* hot and cold spots on H3 cells, a square grid or an area layer (BH FDR).

    ``layer`` (with ``cells="area"``) is ``LAYER`` (the viewer's agency's) or
    ``AGENCY/LAYER``; areas are neighbours when they touch. H3 cells finer than a
    partner's granted cells, or grid cells smaller than their edge, are refused
    (:func:`check_resolution`, :func:`check_metres`).
    """
    if cells == "area":
        if not layer:
            raise AnalysisError("hotspots on areas need layer=LAYER or layer=AGENCY/LAYER")
        shapes = layer_shapes(store, viewer, layer)
    sel = select(store, viewer, request)
    a = sel.arrays
    common = {"alpha": alpha, "permutations": permutations, "seed": seed}
    if cells == "area":
        names = [n for n, _ in shapes]
        res = hotspots_mod.area_hotspots(a.lon, a.lat, names, [g for _, g in shapes], **common)  # type: ignore[arg-type]
        return Outcome(res, sel, dict(shapes))
    if layer:
        raise AnalysisError("layer= needs cells=area")
    if cells == "h3":
        check_resolution(sel, resolution, "hotspots")
        res = hotspots_mod.h3_hotspots(a.lon, a.lat, resolution=resolution, k=k, **common)  # type: ignore[arg-type]
    else:
        check_metres(sel, "cell_m", cell_m)
        res = hotspots_mod.grid_hotspots(a.lon, a.lat, cell_m=cell_m, k=k, **common)  # type: ignore[arg-type]
    return Outcome(res, sel)


#: The most time bins emerging hot spots use by default (a year of months).
EMERGING_BINS = 12


def emerging(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    period: Period = "month",
    bins: int | None = None,
    resolution: int = 8,
    k: int = 1,
    alpha: float = 0.05,
) -> Outcome[emerging_mod.EmergingResult]:
    """Emerging hot spots: each H3 cell's Gi* history over time bins, Mann-Kendall trend.

    The bins end with the period of the latest incident and never start before the
    period of the earliest: a bin before any data would count as a real zero and make
    every busy cell a "new" hot spot. ``bins`` None: as many as the selection covers,
    at most :data:`EMERGING_BINS`; more than it covers is refused. A ``resolution``
    finer than a partner's granted cells is refused (:func:`check_resolution`).
    """
    sel = select(store, viewer, request)
    check_resolution(sel, resolution, "emerging hot spots")
    a = sel.arrays
    tz = viewer_zone(store, viewer, sel.owners)
    covered = len(localtime.edges(a.occurred_from, period, None, tz)) - 1
    if covered < 3:
        shorter = {"month": "choose period=week or day, or ", "week": "choose period=day or "}
        raise AnalysisError(
            f"emerging hot spots need at least three {period} bins and the selection covers "
            f"{covered}: {shorter.get(period, '')}select more history"
        )
    if bins is not None and bins > covered:
        raise AnalysisError(
            f"bins={bins} reaches back before the earliest incident: the selection covers "
            f"{covered} {period} bin{'s' if covered != 1 else ''}, and a bin before any data "
            "would count as zero incidents and make every busy cell a new hot spot "
            f"(ask for at most {covered}, or select more history)"
        )
    n = min(covered, EMERGING_BINS) if bins is None else bins
    edges = localtime.edges(a.occurred_from, period, n, tz)
    res = emerging_mod.emerging_hotspots(
        a.lon, a.lat, a.occurred_from, a.occurred_to, edges, resolution=resolution, k=k, alpha=alpha
    )
    return Outcome(replace(res, params=replace(res.params, timezone=tz)), sel)


@dataclass(frozen=True)
class TrendParams:
    """The parameters of a trend: periods are local to ``timezone`` (an IANA name)."""

    period: str
    by: str
    layer: str | None
    timezone: str


@dataclass(frozen=True)
class Trend:
    """Counts per group and period, with the parameters used (``layer``: with by=area)."""

    counts: trends_mod.PeriodCounts
    period: str
    by: str
    skipped: Skipped
    layer: str | None = None
    #: The latest period against its seasonal expectation (None: not enough history,
    #: with the reason in ``change_note``).
    change: trends_mod.SeasonalExpected | None = None
    change_note: str = ""
    #: Incidents counted (the selection less those skipped here).
    n_used: int = 0
    #: The IANA time zone whose local days, weeks and months the periods are.
    timezone: str = "UTC"

    @property
    def params(self) -> TrendParams:
        """The parameters used, for reproducing the result."""
        return TrendParams(self.period, self.by, self.layer, self.timezone)


def latest_change(
    t_from: np.ndarray,
    t_to: np.ndarray,
    edges: np.ndarray,
    groups: np.ndarray | None,
    years: int | None,
) -> tuple[trends_mod.SeasonalExpected | None, str]:
    """The last period ``[edges[-2], edges[-1])`` against the same weeks of earlier years.

    ``years`` None: as many as the history allows (at most 3). Returns the comparison,
    or None and the reason when the selection does not reach back a year.
    """
    start, end = edges[-2], edges[-1]
    valid = t_from[~np.isnat(t_from)]
    span = (start.astype("datetime64[D]") - valid.min().astype("datetime64[D]")).astype(int)
    available = int((span - 7) // 364)
    use = min(3, available) if years is None else years
    if use < 1:
        return None, (
            "no seasonal expectation: the selection does not reach back a year and a week "
            "before the last period (select more history)"
        )
    try:
        res = trends_mod.seasonal_expected(t_from, t_to, start, end, groups=groups, years=use)
    except AnalysisError as exc:
        return None, f"no seasonal expectation: {exc}"
    return res, ""


def trends(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    period: Period = "month",
    bins: int | None = None,
    by: By = "agency",
    layer: str | None = None,
    years: int | None = None,
) -> Outcome[Trend]:
    """Counts by period per agency, per area of ``layer`` (by=area) or for the region.

    Time ranges are spread over the periods they may fall in. With ``by="area"`` each
    incident counts in the area of ``layer`` (``LAYER`` or ``AGENCY/LAYER``) containing
    its point as granted; incidents in none are skipped and counted. The last period
    is compared per group with its seasonal expectation (the same weeks of ``years``
    earlier years, ±1 week; default as many as the history allows, at most 3) and an
    exact Poisson test of the change (:func:`crossbeat.analysis.trends.seasonal_expected`).
    """
    sel = select(store, viewer, request)
    a = sel.arrays
    tz = viewer_zone(store, viewer, sel.owners)
    edges = localtime.edges(a.occurred_from, period, bins, tz)
    groups, used, outside = _groups(store, viewer, sel, by, layer)
    pc = trends_mod.counts_by_period(a.occurred_from, a.occurred_to, edges, groups=groups)
    skipped = _rename_missing(pc.skipped, used).merged(outside)
    if used is not None:  # every area of the layer, with zeros where nothing was counted
        names = sorted({n for n, _ in layer_shapes(store, viewer, used)} | set(pc.groups))
        row = {str(g): k for k, g in enumerate(pc.groups)}
        table = np.zeros((len(names), pc.counts.shape[1]))
        for k, n in enumerate(names):
            if n in row:
                table[k] = pc.counts[row[n]]
        pc = replace(pc, groups=np.array(names, dtype=object), counts=table)
    change, note = latest_change(a.occurred_from, a.occurred_to, edges, groups, years)
    n_used = len(a) - skipped.total
    return Outcome(Trend(pc, period, by, skipped, used, change, note, n_used, tz), sel)


@dataclass(frozen=True)
class CompStat:
    """A CompStat table and the categories rising on both sides of a border at once."""

    table: trends_mod.CompStatTable
    borders: tuple[tuple[str, str], ...]
    rising: tuple[trends_mod.BorderRise, ...]
    by: str = "agency"
    layer: str | None = None
    outside: Skipped = field(default_factory=Skipped)
    #: Incidents in the table (the selection less those skipped here).
    n_used: int = 0

    @property
    def params(self) -> trends_mod.CompStatParams:
        """The table's parameters."""
        return self.table.params

    @property
    def skipped(self) -> Skipped:
        """What the table could not use (with by=area: incidents in no area)."""
        return _rename_missing(self.table.skipped, self.layer).merged(self.outside)


def agency_borders(store: Store, agencies: set[str]) -> tuple[tuple[str, str], ...]:
    """Return the pairs of ``agencies`` whose jurisdiction polygons touch or overlap."""
    polys = [p for p in jurisdiction_index(store).polygons if p.agency_id in agencies]
    out = set()
    for i, a in enumerate(polys):
        for b in polys[i + 1 :]:
            if a.agency_id != b.agency_id and a.geometry.intersects(b.geometry):
                out.add(tuple(sorted((a.agency_id, b.agency_id))))
    return tuple(sorted(out))  # type: ignore[arg-type]


def area_borders(shapes: list[tuple[str, Any]]) -> tuple[tuple[str, str], ...]:
    """Return the pairs of areas (by name) that touch or overlap."""
    if len(shapes) < 2:
        return ()
    tree = shapely.STRtree([g for _, g in shapes])
    left, right = tree.query([g for _, g in shapes], predicate="intersects")
    names = [n for n, _ in shapes]
    return tuple(sorted({(names[i], names[j]) for i, j in zip(left, right, strict=True) if i < j}))


def compstat(
    store: Store, viewer: Viewer, request: ReadRequest | None = None, *,
    as_of: datetime | None = None, by: By = "agency", layer: str | None = None,
    categories: Literal["crime_against", "nibrs_code"] = "crime_against", alpha: float = 0.05,
) -> Outcome[CompStat]:  # fmt: skip
    """CompStat table (week, 28 days, year to date vs last year) per group and category.

    Groups are agencies, areas of ``layer`` (``by="area"``) or the region. With agencies
    or areas, categories that rose significantly over the 28 days in two neighbours
    (jurisdictions or areas that touch) are flagged (a lead to check, not a finding).
    """
    sel = select(store, viewer, request)
    a = sel.arrays
    tz = viewer_zone(store, viewer, sel.owners)
    if as_of is None:
        valid = a.occurred_from[~np.isnat(a.occurred_from)]
        if valid.size == 0:
            raise AnalysisError("no incident has a time: a CompStat table needs occurred_from")
        day = np.datetime64(localtime.local_date(valid.max(), tz), "D")
    else:
        day = np.datetime64(as_of.date(), "D")
    groups, used, outside = _groups(store, viewer, sel, by, layer)
    cats = getattr(a, categories).astype(str)
    table = trends_mod.compstat(
        a.occurred_from, a.occurred_to, day, groups=groups, categories=cats, alpha=alpha, tz=tz
    )
    if by == "agency":
        borders = agency_borders(store, set(sel.owners))
    elif by == "area":
        borders = area_borders(layer_shapes(store, viewer, layer))
    else:
        borders = ()
    rising = tuple(trends_mod.rising_across_borders(table, borders)) if borders else ()
    stat = CompStat(table, borders, rising, by, used, outside)
    return Outcome(replace(stat, n_used=len(a) - stat.skipped.total), sel)


def nearrepeat(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    distance_edges_m: tuple[float, ...] = (0, 100, 200, 300, 400),
    time_edges_days: tuple[float, ...] = (0, 7, 14, 21, 28),
    permutations: int = 99,
    seed: int | None = 0,
) -> Outcome[nearrepeat_mod.KnoxResult]:
    """Knox near-repeat test with Monte Carlo permutations over distance and time bands.

    The first distance band may not be narrower than the edge of a partner's granted
    cells (:func:`check_metres`): with points snapped to anchors, pairs closer than that
    are an artefact of the snapping.
    """
    sel = select(store, viewer, request)
    positive = [float(e) for e in distance_edges_m if float(e) > 0]
    if positive:
        check_metres(
            sel, "distance_edges_m", min(positive),
            f"{','.join(f'{float(e):g}' for e in distance_edges_m)} (first band {min(positive):g})",
        )  # fmt: skip
    a = sel.arrays
    res = nearrepeat_mod.knox_test(
        a.lon,
        a.lat,
        a.occurred_from,
        a.occurred_to,
        distance_edges_m=distance_edges_m,
        time_edges_days=time_edges_days,
        permutations=permutations,
        seed=seed,
    )
    return Outcome(res, sel)


def agency_zones(store: Store, owner: np.ndarray) -> np.ndarray:
    """Return the IANA time zone of each incident's owner agency (UTC when unknown)."""
    zone = _zones(store)
    names, inverse = np.unique(owner.astype(str), return_inverse=True)
    return np.array([zone.get(str(n), "UTC") for n in names], dtype=object)[inverse]


def series(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    eps_m: float = 3000.0,
    eps_days: float = 10.0,
    eps_hours: float = 2.5,
    min_samples: int = 3,
) -> Outcome[series_mod.SeriesResult]:
    """Series: ST-DBSCAN clusters of alike incidents across the agencies the viewer sees.

    The time of day is each incident's on its agency's local clock (its time zone).
    ``eps_m`` may not be shorter than the edge of a partner's granted cells.
    """
    sel = select(store, viewer, request)
    check_metres(sel, "eps_m", float(eps_m))
    a = sel.arrays
    res = series_mod.detect_series(
        a.lon,
        a.lat,
        a.occurred_from,
        a.occurred_to,
        a.nibrs_code,
        a.location_type,
        eps_m=eps_m,
        eps_days=eps_days,
        eps_hours=eps_hours,
        min_samples=min_samples,
        timezone=agency_zones(store, a.owner),
    )
    return Outcome(res, sel)


def similar(
    store: Store,
    viewer: Viewer,
    incident_id: str,
    request: ReadRequest | None = None,
    *,
    limit: int = 10,
    eps_m: float = 3000.0,
    eps_days: float = 30.0,
) -> Outcome[series_mod.Similar]:
    """Incidents most like one incident (the id as the viewer sees it).

    Linked duplicates are kept (not counted once): each can be asked about, and the
    other reports of the same event rank among the most similar.

    Raises
    ------
    LookupError
        When the viewer sees no incident with that id.
    """
    sel = select(store, viewer, request, once=False)
    a = sel.arrays
    hit = np.flatnonzero(a.id == incident_id)
    if hit.size == 0:
        raise LookupError(f"no incident {incident_id!r} that you may see")
    res = series_mod.similar_to(
        int(hit[0]),
        a.lon,
        a.lat,
        a.occurred_from,
        a.occurred_to,
        a.nibrs_code,
        a.location_type,
        limit=limit,
        eps_m=eps_m,
        eps_days=eps_days,
        timezone=agency_zones(store, a.owner),
    )
    return Outcome(res, sel)
