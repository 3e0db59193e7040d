"""Mapbox Vector Tile encoding: ``ST_AsMVT`` on PostGIS, mapbox-vector-tile on SQLite (issue #8).

:mod:`crossbeat.sharing.tiles` decides which features a viewer may see and with which
properties; this module only turns them into MVT bytes. Geometries are given in WGS84
(lon/lat) and projected to Web Mercator (EPSG:3857), the tiling scheme of ``z/x/y``
(``ST_TileEnvelope``). Both encoders use an extent of 4096 and clip to the tile
with a buffer of 64 units; a property whose value is None is left out of the feature
(as ``ST_AsMVT`` leaves out NULLs).

On SQLite, point layers (the thousands of incidents of a z14 tile) are encoded by
:func:`_point_layer` from numpy arrays: the projection, rounding and the protobuf wire
format of every feature (``MoveTo`` and zig-zag, as the MVT specification 2.1 and
mapbox-vector-tile write them) are computed column by column, several times faster
than mapbox-vector-tile, which builds a shapely geometry and Python objects per feature
(issue #12; figures in docs/benchmarks.md). Polygon layers (the hexagons, convex rings)
are encoded by :func:`_polygon_layer`, one ring at a time without shapely.
``tests/test_sharing_mvt.py`` decodes them with mapbox-vector-tile and requires the
features mapbox-vector-tile's own encoder writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mapbox_vector_tile
import numpy as np
from shapely import box
from shapely.geometry import Point, Polygon
from shapely.geometry.polygon import orient
from sqlalchemy import Connection, text

EXTENT = 4096
BUFFER = 64
#: Half the width of the Web Mercator square, in metres.
_HALF = math.pi * 6378137.0


@dataclass
class Layer:
    """One layer's features, as columns: a geometry and named properties per feature.

    ``kind`` is ``point`` (``coords`` holds one ``(lon, lat)`` per feature) or
    ``polygon`` (one closed ring of ``(lon, lat)`` per feature). ``columns`` names
    each property and its SQL type (``text`` or ``int``).
    """

    name: str
    kind: str
    columns: Mapping[str, str]
    coords: list[Any] = field(default_factory=list)
    values: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, geometry: Any, properties: Mapping[str, Any]) -> None:
        """Append a feature; properties not listed in ``columns`` are refused."""
        unknown = set(properties) - set(self.columns)
        if unknown:
            raise ValueError(f"layer {self.name} has no property {sorted(unknown)}")
        self.coords.append(geometry)
        for name in self.columns:
            self.values.setdefault(name, []).append(properties.get(name))

    def extend(self, coords: Any, columns: Mapping[str, Sequence[Any]]) -> None:
        """Append many features: their geometries and a list of values per property."""
        unknown = set(columns) - set(self.columns)
        if unknown:
            raise ValueError(f"layer {self.name} has no property {sorted(unknown)}")
        count = len(coords)
        if any(len(v) != count for v in columns.values()):
            raise ValueError(f"layer {self.name}: every property needs {count} values")
        self.coords.extend(coords.tolist() if isinstance(coords, np.ndarray) else coords)
        for name in self.columns:
            self.values.setdefault(name, []).extend(columns.get(name) or [None] * count)

    def __len__(self) -> int:
        return len(self.coords)


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """Return Web Mercator metres of a WGS84 point (latitude clamped to ±85.0511°)."""
    lat = max(min(lat, 85.05112878), -85.05112878)
    x = math.radians(lon) * 6378137.0
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * 6378137.0
    return x, y


def tile_envelope(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Return ``(min_x, min_y, max_x, max_y)`` of a tile in Web Mercator metres."""
    size = 2 * _HALF / (1 << z)
    return (-_HALF + x * size, _HALF - (y + 1) * size, -_HALF + (x + 1) * size, _HALF - y * size)


def encode(conn: Connection, z: int, x: int, y: int, layers: Sequence[Layer]) -> bytes:
    """Return the MVT bytes of ``layers`` for tile ``z/x/y`` (empty layers left out)."""
    layers = [layer for layer in layers if len(layer)]
    if not layers:
        return b""
    if conn.dialect.name == "postgresql":
        return b"".join(_postgis(conn, z, x, y, layer) for layer in layers)
    return b"".join(
        _point_layer(z, x, y, layer) if layer.kind == "point" else _polygon_layer(z, x, y, layer)
        for layer in layers
    )


def _point_layer(z: int, x: int, y: int, layer: Layer) -> bytes:
    """Return one ``Tile.layers`` entry (tag and bytes) of a point layer, from arrays.

    Every feature is a ``Feature`` message of packed ``tags``, ``type = POINT`` and a
    packed ``geometry`` of ``MoveTo(1)`` and the zig-zag coordinates: the feature
    messages of the whole layer are built as one matrix of varints, each feature's
    bytes a row, and flattened in row order. Values are numbered column by column, the
    columns with the fewest distinct values first (their indices then fit one byte).
    """
    n = len(layer)
    lonlat = np.asarray(layer.coords, dtype=np.float64).reshape(-1, 2)
    min_x, min_y, max_x, max_y = tile_envelope(z, x, y)
    scale = EXTENT / (max_x - min_x)
    mx, my = _mercator_many(lonlat[:, 0], lonlat[:, 1])
    # Rounded half to even as Python's round(), y flipped: as mapbox-vector-tile does.
    ux = np.round((mx - min_x) * scale).astype(np.int64)
    uy = EXTENT - np.round((my - min_y) * scale).astype(np.int64)
    columns = []
    for name, kind in layer.columns.items():
        column = layer.values.get(name) or [None] * n
        distinct = dict.fromkeys(v for v in column if v is not None)
        if distinct:
            columns.append((name, kind, column, distinct))
    numbered: dict[tuple[str, Any], int] = {}
    values = bytearray()
    for _name, kind, _column, distinct in sorted(columns, key=lambda c: len(c[3])):
        for value in distinct:
            if (kind, value) not in numbered:
                numbered[(kind, value)] = len(numbered)
                text_ = str(value).encode() if kind != "int" else b""
                if kind != "int" and len(text_) < 126:  # the usual case, inlined
                    values += b"\x22" + _SMALL[len(text_) + 2] + b"\x0a" + _SMALL[len(text_)]
                    values += text_
                else:
                    values += _field(4, _value(kind, value))
    tags: list[np.ndarray] = []
    present: list[np.ndarray] = []
    for key, (_name, kind, column, _distinct) in enumerate(columns):
        shown = np.array([v is not None for v in column], dtype=bool)
        index = np.array([numbered.get((kind, v), 0) for v in column], dtype=np.int64)
        tags += [np.full(n, key, dtype=np.int64), index]
        present += [shown, shown]
    geom = np.stack([np.full(n, 9, dtype=np.int64), _zigzag(ux), _zigzag(uy)], axis=1)
    tag_values = np.stack(tags, axis=1) if tags else np.zeros((n, 0), dtype=np.int64)
    tag_shown = np.stack(present, axis=1) if present else np.zeros((n, 0), dtype=bool)
    tag_len = (_varint_sizes(tag_values) * tag_shown).sum(axis=1)
    geom_len = _varint_sizes(geom).sum(axis=1)
    has_tags = tag_len > 0
    feature_len = (
        np.where(has_tags, 1 + _varint_sizes(tag_len) + tag_len, 0)
        + 2  # type = POINT
        + 1 + _varint_sizes(geom_len) + geom_len
    )  # fmt: skip
    ones = np.ones(n, dtype=bool)
    # Layer.features (2): Feature{tags (2), type (3) = POINT, geometry (4)}.
    cells = [(0x12, ones), (feature_len, ones), (0x12, has_tags), (tag_len, has_tags)]
    cells += [(tag_values[:, i], tag_shown[:, i]) for i in range(tag_values.shape[1])]
    cells += [(0x18, ones), (1, ones), (0x22, ones), (geom_len, ones)]
    cells += [(geom[:, i], ones) for i in range(3)]
    matrix = np.stack([np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v, _ in cells], 1)
    shown_cells = np.stack([s for _, s in cells], axis=1)
    body = bytearray(_field(1, layer.name.encode()))
    for _name, _kind, _column, _distinct in columns:
        body += _field(3, _name.encode())
    body += values
    body += b"\x28" + _varint(EXTENT) + b"\x78\x02"  # extent (5), version (15) = 2
    body += _varint_rows(matrix, shown_cells)
    return _field(3, bytes(body))  # Tile.layers (3)


def _polygon_layer(z: int, x: int, y: int, layer: Layer) -> bytes:
    """Return one ``Tile.layers`` entry of a layer of convex rings (H3 hexagons).

    Each ring is projected to tile units, clipped to the tile and its buffer
    (Sutherland-Hodgman: the rings are convex, so the clip is one ring or nothing),
    rounded (y flipped, half to even as mapbox-vector-tile rounds), cleared of repeated
    vertices and wound as the specification's exterior ring (a positive surveyor's area
    in y-down tile units, as ``ST_AsMVT`` writes it; :func:`_python` gave the reverse,
    which MapLibre also draws); a ring left with no area is dropped. The shapes and
    properties are those mapbox-vector-tile writes from the shapely intersection
    (``tests/test_sharing_mvt.py``), without a shapely geometry per feature: the hexagon
    tiles of an overview spent most of their encoding time there (issue #12).
    """
    min_x, min_y, max_x, max_y = tile_envelope(z, x, y)
    scale = EXTENT / (max_x - min_x)
    keys: dict[str, int] = {}
    numbered: dict[tuple[str, Any], int] = {}
    values = bytearray()
    features = bytearray()
    for i, ring in enumerate(layer.coords):
        lonlat = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        mx, my = _mercator_many(lonlat[:, 0], lonlat[:, 1])
        units = list(
            zip(((mx - min_x) * scale).tolist(), ((my - min_y) * scale).tolist(), strict=True)
        )
        if len(units) > 1 and units[0] == units[-1]:
            units.pop()
        clipped = _clip_convex(units, -BUFFER, EXTENT + BUFFER)
        points: list[tuple[int, int]] = []
        for ux, uy in clipped:
            point = (round(ux), EXTENT - round(uy))
            if not points or points[-1] != point:
                points.append(point)
        while len(points) > 1 and points[0] == points[-1]:
            points.pop()
        if len(points) < 3:
            continue
        area = sum(
            a[0] * b[1] - b[0] * a[1] for a, b in zip(points, points[1:] + points[:1], strict=True)
        )
        if area == 0:
            continue
        if area < 0:  # counter-clockwise in y-down units: an exterior ring is clockwise
            points.reverse()
        tags = bytearray()
        for name, kind in layer.columns.items():
            value = layer.values[name][i]
            if value is None:
                continue
            key = keys.setdefault(name, len(keys))
            index = numbered.get((kind, value))
            if index is None:
                index = numbered[(kind, value)] = len(numbered)
                values += _field(4, _value(kind, value))
            tags += _varint(key) + _varint(index)
        geometry = bytearray(_varint(1 | 1 << 3))  # MoveTo(1)
        geometry += _varint(_zigzag_int(points[0][0])) + _varint(_zigzag_int(points[0][1]))
        geometry += _varint(2 | (len(points) - 1) << 3)  # LineTo(n - 1)
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            geometry += _varint(_zigzag_int(x1 - x0)) + _varint(_zigzag_int(y1 - y0))
        geometry += _varint(7 | 1 << 3)  # ClosePath
        feature = (
            (_field(2, bytes(tags)) if tags else b"") + b"\x18\x03" + _field(4, bytes(geometry))
        )
        features += _field(2, feature)  # Layer.features (2); type (3) = POLYGON
    if not features:
        return b""
    body = bytearray(_field(1, layer.name.encode()))
    body += features
    for name in keys:
        body += _field(3, name.encode())
    body += values
    body += b"\x28" + _varint(EXTENT) + b"\x78\x02"  # extent (5), version (15) = 2
    return _field(3, bytes(body))  # Tile.layers (3)


def _zigzag_int(value: int) -> int:
    """Return the zig-zag encoding of one signed integer."""
    return (value << 1) ^ (value >> 63)


def _clip_convex(
    ring: list[tuple[float, float]], lo: float, hi: float
) -> list[tuple[float, float]]:
    """Return a convex ring clipped to the square ``[lo, hi]²`` (Sutherland-Hodgman)."""
    out = ring
    for axis, bound, keep_below in ((0, lo, False), (0, hi, True), (1, lo, False), (1, hi, True)):
        if not out:
            break
        inside = (lambda p: p[axis] <= bound) if keep_below else (lambda p: p[axis] >= bound)  # noqa: E731,B023
        clipped: list[tuple[float, float]] = []
        for k, current in enumerate(out):
            previous = out[k - 1]
            if inside(current):
                if not inside(previous):
                    clipped.append(_crossing(previous, current, axis, bound))
                clipped.append(current)
            elif inside(previous):
                clipped.append(_crossing(previous, current, axis, bound))
        out = clipped
    return out


def _crossing(
    a: tuple[float, float], b: tuple[float, float], axis: int, bound: float
) -> tuple[float, float]:
    """Return where the segment ``a``-``b`` crosses the line ``axis = bound``."""
    t = (bound - a[axis]) / (b[axis] - a[axis])
    other = 1 - axis
    point = [0.0, 0.0]
    point[axis] = bound
    point[other] = a[other] + t * (b[other] - a[other])
    return (point[0], point[1])


def _field(number: int, payload: bytes) -> bytes:
    """Return a length-delimited protobuf field: tag, length, bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _value(kind: str, value: Any) -> bytes:
    """Return a ``Value`` message: ``int_value`` (4) or ``string_value`` (1)."""
    if kind == "int":
        return b"\x20" + _varint(int(value) & 0xFFFFFFFFFFFFFFFF)
    return _field(1, str(value).encode())


def _mercator_many(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return Web Mercator metres of WGS84 points, as :func:`mercator` point by point."""
    lat = np.clip(lat, -85.05112878, 85.05112878)
    return (
        np.radians(lon) * 6378137.0,
        np.log(np.tan(math.pi / 4 + np.radians(lat) / 2)) * 6378137.0,
    )


def _zigzag(values: np.ndarray) -> np.ndarray:
    """Return the zig-zag encoding of signed integers (MVT parameter integers)."""
    return (values << 1) ^ (values >> 63)


#: Most bytes of a varint here: every value (indices, tile units, lengths) is < 2^35.
_VARINT_BYTES = 5


def _varint_sizes(values: np.ndarray) -> np.ndarray:
    """Return how many bytes the protobuf varint of each non-negative value takes."""
    size = np.ones(values.shape, dtype=np.int64)
    for k in range(1, _VARINT_BYTES):
        size += values >= (1 << (7 * k))
    return size


def _varint_rows(values: np.ndarray, shown: np.ndarray) -> bytes:
    """Return the varints of a matrix of values, row by row, leaving out hidden cells.

    Each column takes as many byte columns as its largest value needs; a value's
    unused byte columns and hidden cells are masked out before the row-order flatten.
    """
    if values.size and (values.min() < 0 or values.max() >= 1 << (7 * _VARINT_BYTES)):
        raise ValueError("a value does not fit the point encoder's varints")
    parts: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for j in range(values.shape[1]):
        column = values[:, j]
        sizes = _varint_sizes(column)
        widest = int(sizes.max()) if column.size else 1
        if widest == 1:
            parts.append(column.astype(np.uint8)[:, None])
            masks.append(shown[:, j, None])
            continue
        at = np.arange(widest)
        groups = (column[:, None] >> (7 * at)) & 0x7F
        more = at < (sizes[:, None] - 1)
        parts.append((groups | (more << 7)).astype(np.uint8))
        masks.append(shown[:, j, None] & (at < sizes[:, None]))
    data = np.concatenate(parts, axis=1)
    return data[np.concatenate(masks, axis=1)].tobytes()


_SMALL = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    """Return the protobuf varint of a non-negative integer."""
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _python(z: int, x: int, y: int, layers: Sequence[Layer]) -> bytes:
    min_x, min_y, max_x, max_y = tile_envelope(z, x, y)
    scale = EXTENT / (max_x - min_x)

    def units(lon: float, lat: float) -> tuple[float, float]:
        # Tile units, y up (the encoder flips y and rounds, as ST_AsMVTGeom does).
        mx, my = mercator(lon, lat)
        return ((mx - min_x) * scale, (my - min_y) * scale)

    clip = box(-BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    out = []
    for layer in layers:
        features = []
        for i, geom in enumerate(layer.coords):
            shape: Any
            if layer.kind == "point":
                shape = Point(units(*geom))
            else:
                shape = Polygon([units(lon, lat) for lon, lat in geom]).intersection(clip)
                if shape.is_empty or shape.geom_type != "Polygon":
                    continue
                # Counter-clockwise with y up: clockwise in MVT's y-down units, as the
                # specification wants an exterior ring (so the encoder need not check).
                shape = orient(shape, 1.0)
            props = {k: v[i] for k, v in layer.values.items() if v[i] is not None}
            features.append({"geometry": shape, "properties": props})
        out.append({"name": layer.name, "features": features})
    # Geometries are already in tile units: no quantize_bounds (its shapely.ops.transform
    # is deprecated in shapely 2.2).
    options = {"extents": EXTENT, "check_winding_order": False}
    data: bytes = mapbox_vector_tile.encode(out, default_options=options)
    return data


_SQL_TYPES = {"text": "text", "int": "bigint"}


def _postgis(conn: Connection, z: int, x: int, y: int, layer: Layer) -> bytes:
    """Encode one layer with ``ST_AsMVTGeom``/``ST_AsMVT`` from arrays of columns."""
    names = list(layer.columns)
    if layer.kind == "point":
        geom_params = {"lon": [c[0] for c in layer.coords], "lat": [c[1] for c in layer.coords]}
        geom_cols = "CAST(:lon AS float8[]), CAST(:lat AS float8[])"
        geom_names = "lon, lat"
        geom = "ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326)"
    else:
        rings = [", ".join(f"{lon!r} {lat!r}" for lon, lat in ring) for ring in layer.coords]
        geom_params = {"wkt": [f"POLYGON(({r}))" for r in rings]}
        geom_cols = "CAST(:wkt AS text[])"
        geom_names = "wkt"
        geom = "ST_GeomFromText(u.wkt, 4326)"
    arrays = ", ".join(
        f"CAST(:p{i} AS {_SQL_TYPES[layer.columns[n]]}[])" for i, n in enumerate(names)
    )
    props = ", ".join(f'u."p{i}" AS "{n}"' for i, n in enumerate(names))
    aliases = ", ".join(f'"p{i}"' for i in range(len(names)))
    sql = (
        f"SELECT ST_AsMVT(t, :name, {EXTENT}, 'geom') FROM ("
        f"SELECT ST_AsMVTGeom(ST_Transform({geom}, 3857), ST_TileEnvelope(:z, :x, :y), "
        f"{EXTENT}, {BUFFER}, true) AS geom, {props} "
        f"FROM unnest({geom_cols}, {arrays}) AS u({geom_names}, {aliases})) AS t "
        "WHERE t.geom IS NOT NULL"
    )
    params: dict[str, Any] = {"name": layer.name, "z": z, "x": x, "y": y, **geom_params}
    params.update({f"p{i}": layer.values[n] for i, n in enumerate(names)})
    found = conn.execute(text(sql), params).scalar()
    return bytes(found) if found else b""
