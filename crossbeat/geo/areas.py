"""Which areas (precincts, beats, neighbourhoods ...) contain a point: an STRtree.

Examples
--------
>>> square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
>>> index = AreaIndex.from_geojson([(7, square)])
>>> index.areas_at([0.5, 2.0, None], [0.5, 2.0, None])
[(7,), (), ()]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry


class AreaIndex:
    """Spatial index over area polygons, answering "which areas contain these points?".

    Points on a shared border belong to the areas on both sides (``intersects``), as
    jurisdictions do (:class:`crossbeat.geo.jurisdictions.JurisdictionIndex`).

    Parameters
    ----------
    areas
        ``(area_id, geometry)`` pairs in WGS84 longitude/latitude.
    """

    def __init__(self, areas: Sequence[tuple[int, BaseGeometry]] = ()) -> None:
        self._ids = np.array([a for a, _ in areas], dtype=np.int64)
        geoms = [g for _, g in areas]
        for g in geoms:
            shapely.prepare(g)
        self._tree = shapely.STRtree(geoms) if geoms else None

    @classmethod
    def from_geojson(cls, rows: Iterable[tuple[int, dict]]) -> AreaIndex:
        """Build an index from ``(area_id, geojson_geometry)`` rows."""
        return cls([(int(a), shape(g)) for a, g in rows])

    def __len__(self) -> int:
        return len(self._ids)

    def areas_at(
        self, lats: Sequence[float | None], lons: Sequence[float | None]
    ) -> list[tuple[int, ...]]:
        """Return, for each point, the sorted ids of the areas containing it."""
        n = len(lats)
        result: list[set[int]] = [set() for _ in range(n)]
        located = [i for i in range(n) if lats[i] is not None and lons[i] is not None]
        if self._tree is not None and located:
            xs = np.array([lons[i] for i in located], dtype=float)
            ys = np.array([lats[i] for i in located], dtype=float)
            point_idx, poly_idx = self._tree.query(shapely.points(xs, ys), predicate="intersects")
            for p, g in zip(point_idx.tolist(), poly_idx.tolist(), strict=True):
                result[located[p]].add(int(self._ids[g]))
        return [tuple(sorted(s)) for s in result]
