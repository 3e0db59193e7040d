"""Mapbox Vector Tile encoding: ``ST_AsMVT`` on PostGIS, mapbox-vector-tile on SQLite (issue #8).

:mod:`crossbeat.sharing.tiles` decides which features a viewer may see and with which
properties; this module only turns them into MVT bytes. Geometries are given in WGS84
(lon/lat) and projected to Web Mercator (EPSG:3857), the tiling scheme of ``z/x/y``
(``ST_TileEnvelope``). Both encoders use an extent of 4096 and clip to the tile
with a buffer of 64 units; a property whose value is None is left out of the feature
(as ``ST_AsMVT`` leaves out NULLs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mapbox_vector_tile
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
    return _python(z, x, y, layers)


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
