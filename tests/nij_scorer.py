"""An independent NIJ scorer: PAI and PEI from submission files and incident points.

Written without importing crossbeat (issue #13): it reads the flagged polygons
(GeoJSON), the grid (CSV with WKT polygons) and the incidents (CSV with lon, lat),
measures areas in the UTM zone of the grid's centre (its own projection choice), and
counts points in polygons with shapely. Usable from the command line::

    python tests/nij_scorer.py flagged.geojson grid.csv incidents.csv
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely import wkt
from shapely.geometry import shape


@dataclass(frozen=True)
class Scored:
    """The recomputed figures."""

    flagged_cells: int
    flagged_area_m2: float
    total_area_m2: float
    hits: int
    incidents: int
    pai: float
    pei: float


def _utm(lon: float, lat: float) -> Transformer:
    zone = int((lon + 180) // 6) + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


def score_files(flagged: Path, grid: Path, incidents: Path) -> Scored:
    """Return PAI and PEI of the flagged cells for the incident points."""
    feats = json.loads(flagged.read_text())["features"]
    hot = [shape(f["geometry"]) for f in feats]
    with grid.open() as f:
        cells = [wkt.loads(r["wkt"]) for r in csv.DictReader(f)]
    with incidents.open() as f:
        pts = [(float(r["lon"]), float(r["lat"])) for r in csv.DictReader(f)]
    c = shapely.union_all(cells).centroid
    t = _utm(c.x, c.y)

    def metric(g: shapely.Geometry) -> shapely.Geometry:
        return shapely.transform(g, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))

    total_area = sum(metric(g).area for g in cells)
    hot_area = sum(metric(g).area for g in hot)
    points = shapely.points(np.array(pts).reshape(-1, 2))
    tree = shapely.STRtree(cells)
    pairs = tree.query(points, predicate="within")
    per_cell = np.bincount(pairs[1], minlength=len(cells))
    inside = np.unique(pairs[0]).size
    hot_tree = shapely.STRtree(hot)
    hits = np.unique(hot_tree.query(points, predicate="within")[0]).size
    best = int(np.sort(per_cell)[::-1][: len(hot)].sum())
    pai = (hits / inside) / (hot_area / total_area) if inside and hot_area else float("nan")
    pei = hits / best if best else float("nan")
    return Scored(len(hot), hot_area, total_area, hits, inside, pai, pei)


if __name__ == "__main__":
    s = score_files(*(Path(a) for a in sys.argv[1:4]))
    print(json.dumps(s.__dict__))  # noqa: T201
