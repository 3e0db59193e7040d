"""Road networks from an agency's OpenStreetMap extract, for patrol routes (issue #13).

:func:`load_osm` reads an OpenStreetMap extract (``.osm`` XML with the standard library;
``.osm.pbf`` with the optional ``osmium`` package) and keeps the ways a patrol car can
drive (``highway`` in :data:`DRIVABLE`, not ``access=no/private``), with their
one-way rules (``oneway=yes/-1``, roundabouts). :class:`RoadNetwork` is the directed
graph in a metric frame, edge weights in metres; :meth:`RoadNetwork.travel_matrix`
returns driving distances between points (each snapped to its nearest road node, the
snap leg counted as a straight line) by Dijkstra on that graph. Pairs with no path
through the network fall back to the straight line and are counted, so a plan can say
so.
"""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from crossbeat.forecast.history import Frame

#: ``highway`` values a patrol car can drive on.
DRIVABLE = frozenset(
    {
        "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
        "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
        "residential", "living_street", "service", "road",
    }
)  # fmt: skip


class RoadNetworkError(ValueError):
    """An extract that cannot give a road network (unreadable, or no drivable road)."""


@dataclass(frozen=True)
class RoadNetwork:
    """A directed road graph: node positions (metres in ``frame``) and edge lengths."""

    frame: Frame
    x: np.ndarray
    y: np.ndarray
    graph: csr_matrix
    source: str

    @property
    def nodes(self) -> int:
        """Return the number of road nodes."""
        return int(self.x.shape[0])

    @property
    def edges(self) -> int:
        """Return the number of directed road segments."""
        return int(self.graph.nnz)

    def snap(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return each point's nearest road node and its straight-line distance (m)."""
        d, i = cKDTree(np.column_stack([self.x, self.y])).query(np.column_stack([x, y]))
        return np.asarray(i, np.int64), np.asarray(d, float)

    def travel_matrix(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
        """Return driving distances (m) between the points and the pairs with no road path.

        Entry ``[i, j]`` is: straight line from point ``i`` to its nearest road node,
        shortest path on the graph, straight line from the road node to point ``j``.
        A pair with no path (disconnected roads, one-way traps) gets the straight-line
        distance; the second value counts those pairs.
        """
        x, y = np.asarray(x, float), np.asarray(y, float)
        node, leg = self.snap(x, y)
        unique, back = np.unique(node, return_inverse=True)
        paths = dijkstra(self.graph, directed=True, indices=unique)[:, unique]
        road = paths[back][:, back] + leg[:, None] + leg[None, :]
        np.fill_diagonal(road, 0.0)
        straight = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        missing = ~np.isfinite(road)
        return np.where(missing, straight, road), int(missing.sum())


def _oneway(tags: dict[str, str]) -> int:
    """Return 1 (forward only), -1 (backward only) or 0 (both ways)."""
    v = tags.get("oneway", "").lower()
    if v in ("yes", "true", "1"):
        return 1
    if v == "-1" or v == "reverse":
        return -1
    if v in ("no", "false", "0"):
        return 0
    return 1 if tags.get("junction") in ("roundabout", "circular") else 0


def _drivable(tags: dict[str, str]) -> bool:
    return tags.get("highway") in DRIVABLE and tags.get("access") not in ("no", "private")


def _read_xml(path: Path) -> tuple[dict[int, tuple[float, float]], list[tuple[list[int], int]]]:
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[list[int], int]] = []
    try:
        for _, el in ET.iterparse(path, events=("end",)):
            if el.tag == "node":
                nodes[int(el.attrib["id"])] = (float(el.attrib["lon"]), float(el.attrib["lat"]))
                el.clear()
            elif el.tag == "way":
                tags = {t.attrib["k"]: t.attrib.get("v", "") for t in el.iter("tag")}
                if _drivable(tags):
                    ways.append(([int(n.attrib["ref"]) for n in el.iter("nd")], _oneway(tags)))
                el.clear()
    except (ET.ParseError, KeyError, ValueError) as e:
        raise RoadNetworkError(f"{path.name}: not a readable OpenStreetMap XML file ({e})") from e
    return nodes, ways


def _read_pbf(path: Path) -> tuple[dict[int, tuple[float, float]], list[tuple[list[int], int]]]:
    try:
        osmium: Any = importlib.import_module("osmium")
    except ImportError as e:  # pragma: no cover - depends on the optional package
        raise RoadNetworkError(
            f"{path.name}: reading .pbf extracts needs the 'osmium' package "
            "(pip install osmium), or give the extract as .osm XML"
        ) from e
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[list[int], int]] = []
    try:
        for obj in osmium.FileProcessor(str(path)).with_locations():
            if obj.is_way():
                tags = {t.k: t.v for t in obj.tags}
                if _drivable(tags):
                    refs = []
                    for n in obj.nodes:
                        if n.location.valid():
                            nodes[n.ref] = (n.location.lon, n.location.lat)
                            refs.append(n.ref)
                    ways.append((refs, _oneway(tags)))
    except RuntimeError as e:
        raise RoadNetworkError(f"{path.name}: not a readable OpenStreetMap PBF file ({e})") from e
    return nodes, ways


def load_osm(path: str | Path, frame: Frame | None = None) -> RoadNetwork:
    """Read an OpenStreetMap extract into a :class:`RoadNetwork` in ``frame``.

    Parameters
    ----------
    path
        ``.osm`` (XML) or ``.pbf`` (needs ``osmium``) extract provided by the agency.
    frame
        The metric frame of the forecast grid the patrol boxes come from (default: one
        centred on the extract's roads).

    Raises
    ------
    RoadNetworkError
        When the file cannot be read or holds no drivable road.
    """
    path = Path(path)
    if not path.is_file():
        raise RoadNetworkError(f"{path}: no such OpenStreetMap extract")
    nodes, ways = _read_pbf(path) if path.name.endswith(".pbf") else _read_xml(path)
    used = sorted({n for refs, _ in ways for n in refs if n in nodes})
    if not used:
        raise RoadNetworkError(f"{path.name}: no drivable road (highway=*) in the extract")
    index = {n: i for i, n in enumerate(used)}
    lonlat = np.array([nodes[n] for n in used])
    if frame is None:
        frame = Frame(float(lonlat[:, 0].mean()), float(lonlat[:, 1].mean()))
    x, y = frame.forward(lonlat[:, 0], lonlat[:, 1])
    x, y = np.asarray(x, float), np.asarray(y, float)
    src: list[int] = []
    dst: list[int] = []
    for refs, oneway in ways:
        seq = [index[n] for n in refs if n in index]
        for a, b in zip(seq, seq[1:], strict=False):
            if a == b:
                continue
            if oneway >= 0:
                src.append(a)
                dst.append(b)
            if oneway <= 0:
                src.append(b)
                dst.append(a)
    s, d = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    length = np.hypot(x[s] - x[d], y[s] - y[d])
    # Two ways over the same segment: keep the shorter (csr_matrix would add them).
    order = np.lexsort((length, d, s))
    s, d, length = s[order], d[order], length[order]
    first = np.ones(s.size, bool)
    first[1:] = (s[1:] != s[:-1]) | (d[1:] != d[:-1])
    s, d, length = s[first], d[first], np.maximum(length[first], 1e-3)
    graph = csr_matrix((length, (s, d)), shape=(len(used), len(used)))
    return RoadNetwork(frame, x, y, graph, path.name)
