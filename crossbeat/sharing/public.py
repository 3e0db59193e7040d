"""The public release policy: strong defaults that an agency can only tighten (issue #3).

The public is a grantee like any other, but whatever an owner's public agreement says,
it is capped by :data:`DEFAULT_PUBLIC_POLICY` merged with the owner's tightenings
(:meth:`PublicPolicy.merge` takes the stricter value of every knob):

* **Location**: snapped to an *anchor point* of the incident's H3 resolution-9 cell
  (about 0.1 km², many addresses in a built-up area): the representative point of the
  part of the cell that lies in exactly the same jurisdiction polygons as the true
  point. An anchor therefore never crosses a jurisdiction boundary, and it depends only
  on the cell and the boundaries, so the same incident always gets the same point and
  repeated queries cannot be averaged towards the true location (:class:`AnchorIndex`).
* **Suppression**: incidents flagged as sexual offence, domestic violence,
  juvenile-involved, victim-identifying or informant are never published. The flags are
  re-derived at publication from the stored flags, from the NIBRS table for every
  offence code of the incident, and from keywords in local codes, descriptions and kept
  attributes, so a miscoded record whose code looks harmless is still caught
  (:func:`incident_flags`).
* **Time**: coarsened to the day in the owner's time zone and published only 7 days
  after the latest of when it happened and when it was reported.
* **Counts**: published aggregate counts are 0 or at least ``threshold`` (5); each
  owner's counts are released on its own before they are combined, totals are sums of
  published cells, and an owner publishing counts only answers from a fixed base table
  (:mod:`crossbeat.sharing.release`), or with differential-privacy noise if it chose
  ``noise_epsilon`` (:mod:`crossbeat.sharing.noise`).

Why these defaults: H3 res-9 anchors are coarser than a street block yet still show
neighbourhood patterns; a day is the usual resolution of public crime maps; a week
keeps publication from tipping off suspects in open cases; 5 is the most common small
cell threshold in official statistics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from crossbeat.geo.cells import h3_cell_ints
from crossbeat.model import CrimeAgainst, Sensitivity
from crossbeat.sharing.scope import (
    PUBLIC_FIELDS,
    Precision,
    ScopeError,
    TimeResolution,
    coarser,
    expand_fields,
    finer,
    format_delay,
    parse_delay,
    parse_offences,
    parse_precision,
    parse_time_resolution,
)
from crossbeat.taxonomy.nibrs import nibrs_offences
from crossbeat.taxonomy.sensitivity import keyword_sensitivity, rules_fingerprint

#: A stored row (SQLAlchemy ``RowMapping`` or a plain dict), read by column name.
Row = Mapping[Any, Any]

#: Columns of ``incidents`` that hold the stored sensitivity flags.
FLAG_COLUMNS: Mapping[Sensitivity, str] = {
    Sensitivity.SEXUAL_OFFENCE: "sens_sexual",
    Sensitivity.DOMESTIC_VIOLENCE: "sens_domestic",
    Sensitivity.JUVENILE: "sens_juvenile",
    Sensitivity.VICTIM_IDENTIFYING: "sens_victim_identifying",
    Sensitivity.INFORMANT: "sens_informant",
}


@dataclass(frozen=True)
class PublicPolicy:
    """The knobs of the public release policy; every knob can only be made stricter.

    Parameters
    ----------
    precision
        Spatial precision of public points (default ``h3:9`` anchors).
    time_resolution
        Resolution of published times (default ``day``).
    delay
        Minimum time after an incident (and its report) before publication (7 days).
    threshold
        Smallest published non-zero count (5).
    fields
        Fields the public may receive (a subset of :data:`PUBLIC_FIELDS`).
    suppress_offences
        Further offence tokens (codes, categories) never published.
    records
        Whether individual records are published (False: aggregate counts only).
    noise_epsilon
        Release aggregate counts with differential privacy (OpenDP, Laplace noise with
        a threshold on which cells appear): the ε each release spends. None: no noise.
        Noise implies aggregate counts only (with records published, noise would
        protect nothing). See :mod:`crossbeat.sharing.noise`.
    noise_budget
        The ε an owner's noisy releases may spend together in one calendar month
        (UTC); when it is spent, the owner's counts are left out until the next month.
    """

    precision: Precision = field(default_factory=lambda: parse_precision("h3:9"))
    time_resolution: TimeResolution = TimeResolution.DAY
    delay: timedelta = timedelta(days=7)
    threshold: int = 5
    fields: frozenset[str] = PUBLIC_FIELDS
    suppress_offences: frozenset[str] = frozenset()
    records: bool = True
    noise_epsilon: float | None = None
    noise_budget: float | None = None

    #: Flags whose incidents are never published (not a knob: always all of them).
    suppressed_flags: frozenset[Sensitivity] = frozenset(Sensitivity)

    def merge(self, other: PublicPolicy) -> PublicPolicy:
        """Return a policy with the stricter value of every knob of ``self`` and ``other``."""
        return PublicPolicy(
            precision=coarser(self.precision, other.precision),
            time_resolution=max(self.time_resolution, other.time_resolution, key=lambda t: t.rank),
            delay=max(self.delay, other.delay),
            threshold=max(self.threshold, other.threshold),
            fields=self.fields & other.fields,
            suppress_offences=self.suppress_offences | other.suppress_offences,
            records=self.records and other.records,
            noise_epsilon=_smaller(self.noise_epsilon, other.noise_epsilon),
            noise_budget=_smaller(self.noise_budget, other.noise_budget),
        )

    @property
    def publishes_records(self) -> bool:
        """Whether individual records are published (never with noisy counts)."""
        return self.records and self.noise_epsilon is None

    def looser_than(self, other: PublicPolicy) -> list[str]:
        """Return, for every knob where ``self`` reveals more than ``other``, why."""
        problems = []
        if finer(self.precision, other.precision):
            problems.append(f"precision {self.precision} is finer than {other.precision}")
        if self.time_resolution.rank < other.time_resolution.rank:
            problems.append(
                f"time resolution {self.time_resolution} is finer than {other.time_resolution}"
            )
        if self.delay < other.delay:
            problems.append(
                f"delay {format_delay(self.delay)} is shorter than {format_delay(other.delay)}"
            )
        if self.threshold < other.threshold:
            problems.append(f"threshold {self.threshold} is below {other.threshold}")
        extra = self.fields - other.fields
        if extra:
            problems.append("fields " + ", ".join(sorted(extra)) + " are not allowed")
        missing = other.suppress_offences - self.suppress_offences
        if missing:
            problems.append("suppressed offences " + ", ".join(sorted(missing)) + " are dropped")
        if self.records and not other.records:
            problems.append("records are published where only aggregates are allowed")
        for knob in ("noise_epsilon", "noise_budget"):
            mine, theirs = getattr(self, knob), getattr(other, knob)
            if theirs is not None and (mine is None or mine > theirs):
                problems.append(f"{knob} {mine} spends more privacy than {theirs}")
        return problems

    def to_settings(self) -> dict[str, Any]:
        """Return the policy as JSON-ready settings (the stored override format)."""
        return {
            "precision": self.precision.name,
            "time_resolution": self.time_resolution.value,
            "delay": format_delay(self.delay),
            "threshold": self.threshold,
            "fields": sorted(self.fields),
            "suppress_offences": sorted(self.suppress_offences),
            "records": self.records,
            # As text: the audit log (and its hashes) hold no floats.
            "noise_epsilon": _text(self.noise_epsilon),
            "noise_budget": _text(self.noise_budget),
            "suppressed_flags": sorted(f.value for f in self.suppressed_flags),
        }

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], base: PublicPolicy | None = None
    ) -> PublicPolicy:
        """Build a policy from settings; knobs not given keep ``base``'s value.

        Raises
        ------
        ScopeError
            Listing every malformed or unknown knob.
        """
        base = base or DEFAULT_PUBLIC_POLICY
        changes: dict[str, Any] = {}
        problems: list[str] = []
        parsers = {
            "precision": parse_precision,
            "time_resolution": parse_time_resolution,
            "delay": parse_delay,
            "threshold": _parse_threshold,
            "fields": lambda v: expand_fields(v, personal=False),
            "suppress_offences": _parse_suppressed,
            "records": _parse_bool,
            "noise_epsilon": _parse_epsilon,
            "noise_budget": _parse_epsilon,
        }
        for key, value in settings.items():
            if key == "suppressed_flags":
                continue
            parser = parsers.get(key)
            if parser is None:
                problems.append(f"unknown public-policy knob {key!r} (use {', '.join(parsers)})")
                continue
            try:
                changes[key] = parser(value)
            except ScopeError as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise ScopeError("; ".join(problems))
        merged = dataclasses.replace(base, **changes)
        if merged.noise_epsilon is not None and merged.noise_budget is None:
            merged = dataclasses.replace(merged, noise_budget=10 * merged.noise_epsilon)
        if merged.noise_budget is not None and merged.noise_epsilon is None:
            raise ScopeError("noise_budget needs noise_epsilon (the ε of each release)")
        if (
            merged.noise_epsilon is not None
            and merged.noise_budget is not None
            and merged.noise_budget < merged.noise_epsilon
        ):
            raise ScopeError("noise_budget must be at least noise_epsilon (one release)")
        return merged


def _parse_suppressed(value: Any) -> frozenset[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not [i for i in items if str(i).strip()]:
        return frozenset()
    tokens = parse_offences(items)
    return frozenset({"all"}) if tokens is None else tokens


def _parse_threshold(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ScopeError(f"threshold must be a whole number, not {value!r}")
    try:
        k = int(value)
    except ValueError:
        raise ScopeError(f"threshold must be a whole number, not {value!r}") from None
    if k < 1:
        raise ScopeError("threshold must be at least 1")
    return k


def _text(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _smaller(a: float | None, b: float | None) -> float | None:
    """Return the stricter of two privacy-loss knobs (None: no noise, the loosest)."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _parse_epsilon(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ScopeError(f"expected a positive number (ε), not {value!r}")
    try:
        eps = float(value)
    except (TypeError, ValueError):
        raise ScopeError(f"expected a positive number (ε), not {value!r}") from None
    if not (0 < eps <= 100) or eps != eps:
        raise ScopeError(f"ε must be above 0 and at most 100, not {value!r}")
    return eps


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ScopeError(f"expected true or false, not {value!r}")


#: The default every owner's public release starts from.
DEFAULT_PUBLIC_POLICY = PublicPolicy()


# -- sensitivity at publication ----------------------------------------------------------
@lru_cache(maxsize=16384)
def _cached_text_flags(
    rules: str, texts: tuple[str | None, ...], person_crime: bool
) -> frozenset[Sensitivity]:
    return keyword_sensitivity(*texts, person_crime=person_crime)


def _text_flags(*texts: str | None, person_crime: bool = False) -> frozenset[Sensitivity]:
    """Return :func:`keyword_sensitivity` of the texts, cached per rule set.

    Local codes and descriptions repeat across records: each combination is read once
    per version of the rules (:func:`rules_fingerprint`), so reloaded rules apply at once.
    """
    return _cached_text_flags(rules_fingerprint(), texts, person_crime)


def incident_flags(row: Row, offences: Sequence[Row]) -> frozenset[Sensitivity]:
    """Return every sensitivity flag an incident carries, re-derived at publication.

    Parameters
    ----------
    row
        The ``incidents`` row (``sens_*`` columns, ``nibrs_code``, ``offence_local_code``,
        ``attributes``).
    offences
        Its ``incident_offences`` rows.

    Returns
    -------
    frozenset[Sensitivity]
        Stored flags, plus the flags implied by every NIBRS code of the incident, plus
        flags from keywords and the word lexicon in local codes, descriptions and kept
        attribute values (a relationship word counts as possible domestic violence
        when an offence is against a person).
    """
    flags = {flag for flag, column in FLAG_COLUMNS.items() if row.get(column)}
    table = nibrs_offences()
    codes = {row.get("nibrs_code")} | {o.get("nibrs_code") for o in offences}
    person_crime = False
    for code in codes:
        entry = table.get(code) if code else None
        if entry is not None:
            flags |= entry.sensitivity
            person_crime |= entry.crime_against == CrimeAgainst.PERSON
    texts: list[str | None] = [row.get("offence_local_code")]
    for o in offences:
        texts += [o.get("local_code"), o.get("local_description")]
    attributes = row.get("attributes")
    if isinstance(attributes, Mapping):
        texts += [v for v in attributes.values() if isinstance(v, str)]
    flags |= _text_flags(*texts, person_crime=person_crime)
    return frozenset(flags)


# -- anchor points -------------------------------------------------------------------------
def _cell_polygon(cell: int) -> Polygon:
    return Polygon([(lng, lat) for lat, lng in h3i.cell_to_boundary(cell)])


class AnchorIndex:
    """Stable anchor points that never cross a jurisdiction boundary.

    The anchor of a point at resolution ``r`` is the representative point of the part
    of its H3 cell that lies inside exactly the jurisdiction polygons containing the
    point (and outside every other polygon). Every incident in that part of the cell
    gets the same anchor, whatever is asked and however often.

    Which polygons contain a point is decided by one rule, for one point
    (:meth:`anchor`) and for many (:meth:`anchor_many`) alike: whole cells first (the
    polygons containing all of the point's cell, when no polygon boundary crosses it;
    decided once per cell and kept), and only for a point in a cell that a boundary
    crosses, the polygons covering the point itself.

    Parameters
    ----------
    polygons
        Every jurisdiction polygon (WGS84 lon/lat) of every agency.

    Examples
    --------
    >>> square = shapely.box(-0.2, 51.4, 0.0, 51.6)
    >>> index = AnchorIndex([square])
    >>> a = index.anchor(51.5, -0.1, 9)
    >>> a == index.anchor(51.5, -0.1, 9) and a != (51.5, -0.1)
    True
    """

    def __init__(self, polygons: Sequence[BaseGeometry]) -> None:
        self._polygons = list(polygons)
        for geom in self._polygons:
            shapely.prepare(geom)
        self._tree = shapely.STRtree(self._polygons) if self._polygons else None
        #: Per (cell, containing polygons): the anchor ``(lat, lon)``.
        self._cache: dict[tuple[int, tuple[int, ...]], tuple[float, float]] = {}
        #: Per cell: the polygons containing all of it, or None when one crosses it.
        self._whole: dict[int, tuple[int, ...] | None] = {}
        #: The anchors of whole cells seen by :meth:`anchor_many`, for a vectorised look-up:
        #: ``(cells, lat, lon)``, cells sorted (replaced whole, never changed in place).
        self._known: tuple[np.ndarray, np.ndarray, np.ndarray] = (
            np.empty(0, dtype=np.uint64), np.empty(0), np.empty(0),
        )  # fmt: skip

    def anchor(self, lat: float, lon: float, resolution: int) -> tuple[float, float]:
        """Return the anchor ``(lat, lon)`` of a point at an H3 resolution."""
        cell = h3i.latlng_to_cell(lat, lon, resolution)
        inside = self._whole.get(cell, _UNKNOWN)
        if inside is _UNKNOWN:
            inside = self._whole_cells([cell])[0]
        if inside is None:  # a boundary crosses the cell: the polygons covering the point
            inside = ()
            if self._tree is not None:
                near = sorted(int(i) for i in self._tree.query(shapely.Point(lon, lat)))
                inside = tuple(
                    i for i in near if shapely.intersects_xy(self._polygons[i], lon, lat)
                )
        return self._anchor_of(cell, inside)

    def anchor_many(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        resolution: int,
        cells: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the anchors of many points as ``(lat, lon)`` arrays (NaN stays NaN).

        The same anchors as :meth:`anchor` point by point, by the same rule, computed
        once per distinct cell (the cells from one vectorised H3 call, the whole cells
        decided in bulk) and, in the cells a boundary crosses, once per distinct set of
        polygons covering the points (one bulk query of the polygon tree).

        ``cells`` are the points' H3 cells at ``resolution`` as integers where already
        known (the stored ones; 0: not known, computed here).
        """
        out_lat = np.full(lat.shape[0], np.nan)
        out_lon = np.full(lat.shape[0], np.nan)
        idx = np.flatnonzero(~(np.isnan(lat) | np.isnan(lon)))
        if not idx.size:
            return out_lat, out_lon
        ys, xs = lat[idx], lon[idx]
        if cells is None:
            known = h3_cell_ints(ys, xs, resolution)
        else:
            known = np.asarray(cells, dtype=np.uint64)[idx]
            missing = np.flatnonzero(known == 0)
            if missing.size:
                known[missing] = h3_cell_ints(ys[missing], xs[missing], resolution)
        # Whole cells anchored before: one vectorised look-up (the cells' anchors kept).
        seen, seen_lat, seen_lon = self._known
        hit = np.zeros(idx.size, dtype=bool)
        if seen.size:
            at = np.minimum(np.searchsorted(seen, known), seen.size - 1)
            hit = seen[at] == known
            out_lat[idx[hit]] = seen_lat[at[hit]]
            out_lon[idx[hit]] = seen_lon[at[hit]]
            if hit.all():
                return out_lat, out_lon
        rest = np.flatnonzero(~hit)
        idx, ys, xs, known = idx[rest], ys[rest], xs[rest], known[rest]
        cells, inverse = np.unique(known, return_inverse=True)
        inverse = inverse.reshape(-1)
        keys = cells.tolist()
        whole = self._whole_cells(keys)
        found = np.empty((len(keys), 2))
        crossed = np.zeros(len(keys), dtype=bool)
        for k, (cell, inside) in enumerate(zip(keys, whole, strict=True)):
            if inside is None:
                crossed[k] = True
            else:
                found[k] = self._anchor_of(cell, inside)
        got = found[inverse]
        at = np.flatnonzero(crossed[inverse])
        if at.size:  # points in cells a boundary crosses: by the polygons covering each
            which, sets = self._covering(xs[at], ys[at])
            pairs, back = np.unique(inverse[at] * len(sets) + which, return_inverse=True)
            points = [self._anchor_of(keys[k // len(sets)], sets[k % len(sets)]) for k in
                      pairs.tolist()]  # fmt: skip
            got[at] = np.array(points, dtype=float).reshape(-1, 2)[back.reshape(-1)]
        out_lat[idx] = got[:, 0]
        out_lon[idx] = got[:, 1]
        if (~crossed).any():  # keep the whole cells' anchors for the next look-up
            new = np.flatnonzero(~crossed)
            all_cells = np.concatenate([seen, cells[new]])
            order = np.argsort(all_cells, kind="stable")
            self._known = (
                all_cells[order],
                np.concatenate([seen_lat, found[new, 0]])[order],
                np.concatenate([seen_lon, found[new, 1]])[order],
            )
        return out_lat, out_lon

    def whole_anchors(self, cells: Sequence[int]) -> list[tuple[float, float] | None]:
        """Return the anchor ``(lat, lon)`` of each cell no boundary crosses, else None.

        Every point of such a cell has that anchor (:meth:`anchor`, :meth:`anchor_many`);
        a point of a cell a boundary crosses has one of several, which depends on the
        point. ``cells`` are H3 cells as integers, at the anchors' resolution.
        """
        return [
            None if inside is None else self._anchor_of(cell, inside)
            for cell, inside in zip(cells, self._whole_cells(cells), strict=True)
        ]

    def warm(self, cells: Sequence[int]) -> int:
        """Compute and keep the anchors of whole cells (no boundary crosses them).

        What :meth:`anchor_many` would compute for the points of these cells on first
        use, done ahead (a server process warms the cells holding records when it
        starts: issue #12). The cells a boundary crosses are left to first use: their
        anchors depend on the polygons covering each point. Returns how many anchors
        were computed (cells already known are skipped).
        """
        before = len(self._cache)
        for cell, inside in zip(cells, self._whole_cells(cells), strict=True):
            if inside is not None:
                self._anchor_of(cell, inside)
        return len(self._cache) - before

    def _anchor_of(self, cell: int, inside: tuple[int, ...]) -> tuple[float, float]:
        key = (cell, inside)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._compute(cell, inside)
        return found

    def _covering(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """Return which polygons cover each point (boundary included), as :meth:`anchor` does.

        Returns, per point, the position of its set of polygons in the list returned
        with it (each set a sorted tuple of polygon indexes), decided by one vectorised
        test per polygon near the points.
        """
        n = xs.shape[0]
        candidates = np.empty(0, dtype=np.intp)
        if self._tree is not None and n:
            extent = shapely.box(xs.min(), ys.min(), xs.max(), ys.max())
            candidates = np.sort(self._tree.query(extent))
        if not candidates.size:
            return np.zeros(n, dtype=np.intp), [()]
        hits = np.zeros((n, candidates.size), dtype=bool)
        for col, i in enumerate(candidates.tolist()):
            hits[:, col] = shapely.intersects_xy(self._polygons[i], xs, ys)
        packed = np.ascontiguousarray(np.packbits(hits, axis=1))
        rows = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
        _rows, first, which = np.unique(rows, return_index=True, return_inverse=True)
        sets = [tuple(candidates[hits[j]].tolist()) for j in first.tolist()]
        return which.reshape(-1), sets

    def _whole_cells(self, cells: Sequence[int]) -> list[tuple[int, ...] | None]:
        """Return, per cell, the polygons that contain all of it, or None when one crosses it.

        Each cell is widened by a tenth of its size first, so that no point H3 assigns
        to it (its edges are geodesic, the hexagon's straight in degrees) is missed.
        Decided in bulk for the cells not seen before, and kept.
        """
        new = [c for c in dict.fromkeys(cells) if c not in self._whole]
        if new:
            if self._tree is None:
                self._whole.update((c, ()) for c in new)
            else:
                hexagons = [_cell_polygon(c) for c in new]
                wide = shapely.buffer(hexagons, 0.1 * np.sqrt(shapely.area(hexagons)))
                touched = self._pairs(wide, "intersects")
                within = self._pairs(wide, "within")  # the polygon contains the widened cell
                for k, c in enumerate(new):
                    inside = within.get(k, ())
                    self._whole[c] = None if len(touched.get(k, ())) > len(inside) else inside
        return [self._whole[c] for c in cells]

    def _pairs(self, geoms: np.ndarray, predicate: str) -> dict[int, tuple[int, ...]]:
        assert self._tree is not None
        out: dict[int, list[int]] = {}
        g, poly = self._tree.query(geoms, predicate=predicate)
        for k, i in sorted(zip(g.tolist(), poly.tolist(), strict=True)):
            out.setdefault(k, []).append(i)
        return {k: tuple(v) for k, v in out.items()}

    def _compute(self, cell: int, inside: tuple[int, ...]) -> tuple[float, float]:
        hexagon = _cell_polygon(cell)
        region: BaseGeometry = hexagon
        if self._tree is not None:
            for i in sorted(int(i) for i in self._tree.query(hexagon)):
                poly = self._polygons[i]
                region = region.intersection(poly) if i in inside else region.difference(poly)
        if region.is_empty or region.area == 0:
            # Only for a point on a boundary: keep to the member polygons at least.
            region = hexagon
            for i in inside:
                region = region.intersection(self._polygons[i])
        if region.is_empty:
            lat, lng = h3i.cell_to_latlng(cell)
            return (round(lat, 6), round(lng, 6))
        p = region.point_on_surface()
        return (round(p.y, 6), round(p.x, 6))


#: Not yet decided (a cell not in ``AnchorIndex._whole``).
_UNKNOWN: Any = object()
