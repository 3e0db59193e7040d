"""Which agencies' jurisdictions contain a point: an STRtree over boundary polygons."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from crossbeat.geo.areas import AreaIndex


@dataclass(frozen=True, slots=True)
class JurisdictionPolygon:
    """One jurisdiction polygon of an agency."""

    agency_id: str
    name: str
    geometry: BaseGeometry


class JurisdictionIndex:
    """Spatial index answering "whose jurisdiction is this point in?" in bulk.

    A transit-police incident inside a city lies in both the transit police's and the
    city police's polygons; both agencies are returned.

    Examples
    --------
    >>> square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    >>> idx = JurisdictionIndex.from_geojson([("city", "City", square)])
    >>> idx.agencies_at([0.5, 2.0], [0.5, 2.0])
    [('city',), ()]
    """

    def __init__(
        self, polygons: Sequence[JurisdictionPolygon], areas: AreaIndex | None = None
    ) -> None:
        self.polygons = list(polygons)
        #: The area layers' polygons (precincts, beats ...), tagged at ingest alongside.
        self.areas = areas if areas is not None else AreaIndex()
        geoms = [p.geometry for p in self.polygons]
        for g in geoms:
            shapely.prepare(g)
        self._tree = shapely.STRtree(geoms) if geoms else None
        self._agency = np.array([p.agency_id for p in self.polygons], dtype=object)

    @classmethod
    def from_geojson(
        cls, rows: Iterable[tuple[str, str, dict]], areas: AreaIndex | None = None
    ) -> JurisdictionIndex:
        """Build an index from ``(agency_id, name, geojson_geometry)`` rows (and areas)."""
        return cls([JurisdictionPolygon(a, n, shape(g)) for a, n, g in rows], areas)

    def __len__(self) -> int:
        return len(self.polygons)

    def extent(self, agency_id: str) -> tuple[float, float, float, float] | None:
        """Return ``(min_lon, min_lat, max_lon, max_lat)`` of an agency's polygons."""
        geoms = [p.geometry for p in self.polygons if p.agency_id == agency_id]
        if not geoms:
            return None
        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        return (float(minx), float(miny), float(maxx), float(maxy))

    def agencies_at(
        self, lats: Sequence[float | None], lons: Sequence[float | None]
    ) -> list[tuple[str, ...]]:
        """Return, for each point, the sorted ids of agencies whose polygons contain it.

        Points on a shared border belong to both sides (``intersects``), so an incident
        on a boundary street is visible to both neighbouring agencies.
        """
        n = len(lats)
        result: list[set[str]] = [set() for _ in range(n)]
        if self._tree is None or n == 0:
            return [() for _ in range(n)]
        located = [i for i in range(n) if lats[i] is not None and lons[i] is not None]
        if located:
            xs = np.array([lons[i] for i in located], dtype=float)
            ys = np.array([lats[i] for i in located], dtype=float)
            points = shapely.points(xs, ys)
            point_idx, poly_idx = self._tree.query(points, predicate="intersects")
            for p, g in zip(point_idx.tolist(), poly_idx.tolist(), strict=True):
                result[located[p]].add(self._agency[g])
        return [tuple(sorted(s)) for s in result]
