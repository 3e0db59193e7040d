"""Named polygons from GeoJSON, Shapefile or GeoPackage files (read with pyogrio).

Agencies hold their boundaries, precincts, districts, beats and neighbourhoods in GIS
files in their own coordinate systems. :func:`read_polygons` reads any vector format
GDAL reads (GeoJSON, Shapefile, GeoPackage ...), keeps only polygons, reprojects them
to WGS84 longitude/latitude, repairs invalid rings and names each polygon from a
property of its feature. Features that share a name are merged into one polygon, so a
district drawn as several features is one district.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

#: Property names tried first, in order, when no name field is given.
NAME_FIELD_HINTS: tuple[str, ...] = ("name", "label", "title")


class PolygonFileError(ValueError):
    """A polygon file cannot be read as asked; the message says what to change."""


@dataclass(frozen=True)
class NamedPolygon:
    """One named (Multi)Polygon in WGS84 longitude/latitude."""

    name: str
    geometry: BaseGeometry
    features: int = 1


@dataclass(frozen=True)
class PolygonFile:
    """What was read from a polygon file.

    Attributes
    ----------
    polygons
        One polygon per distinct name, in the order names first appear.
    name_field
        The property the names came from (None when the file has no usable one and
        the names were made from ``fallback_name``).
    fields
        Every property of the file's features.
    features
        How many features were read after the ``where`` filter.
    crs
        The file's coordinate reference system (as read), or None when it has none.
    """

    polygons: tuple[NamedPolygon, ...]
    name_field: str | None
    fields: tuple[str, ...]
    features: int
    crs: str | None


def read_polygons(
    path: str | Path,
    *,
    name_field: str | None = None,
    where: Mapping[str, str] | None = None,
    fallback_name: str | None = None,
    layer: str | int | None = None,
) -> PolygonFile:
    """Read the named polygons of a GeoJSON, Shapefile or GeoPackage file.

    Parameters
    ----------
    path
        The file (a Shapefile's ``.shp``; its sidecar files must sit beside it).
    name_field
        The property that names each polygon. None: the first property whose name
        contains ``name``, ``label`` or ``title`` (in that order) and that has a value
        in every feature; then any text property with a distinct value in every
        feature.
    where
        Keep only features whose properties equal these values (compared as text),
        e.g. ``{"police_force": "Metropolitan Police Service"}``.
    fallback_name
        When given and the file has no usable name property (and no ``name_field``
        was asked for), the polygons are named ``fallback_name`` (one feature) or
        ``fallback_name-1`` ... instead of refusing the file.
    layer
        The layer of a multi-layer file (GeoPackage), by name or index.

    Raises
    ------
    PolygonFileError
        When the file cannot be read, has no (matching) polygon features, the name
        field is missing or blank in a feature, or the CRS cannot be converted.
    """
    from pyogrio import raw
    from pyogrio.errors import DataLayerError, DataSourceError

    path = Path(path)
    if not path.is_file():
        raise PolygonFileError(f"polygon file not found: {path}")
    try:
        meta, _fids, wkb, columns = raw.read(str(path), layer=layer)
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        why = str(exc).split(";")[0].strip()
        raise PolygonFileError(
            f"cannot read {path} as GeoJSON, Shapefile or GeoPackage: {why}"
        ) from exc
    if wkb is None or not len(wkb):
        raise PolygonFileError(
            f"{path.name} has no features with a geometry: give a GeoJSON, Shapefile or "
            "GeoPackage of polygons"
        )
    fields = tuple(str(f) for f in meta.get("fields", ()))
    records = [
        {f: _text(col[i]) for f, col in zip(fields, columns, strict=True)}
        for i in range(len(wkb) if wkb is not None else 0)
    ]
    wanted = dict(where or {})
    unknown = sorted(set(wanted) - set(fields))
    if unknown:
        raise PolygonFileError(
            f"--where names {', '.join(unknown)}, not a property of {path.name}; "
            f"its properties are: {', '.join(fields) or 'none'}"
        )
    chosen = [i for i, rec in enumerate(records) if all(rec.get(k) == v for k, v in wanted.items())]
    if not chosen:
        raise PolygonFileError(f"no feature in {path.name} matches {wanted}")
    geoms = [shapely.from_wkb(wkb[i]) if wkb[i] is not None else None for i in chosen]
    kept = [
        (i, g)
        for i, g in zip(chosen, geoms, strict=True)
        if g is not None and not g.is_empty and g.geom_type in ("Polygon", "MultiPolygon")
    ]
    if not kept:
        types = sorted({g.geom_type for g in geoms if g is not None} or {"none"})
        raise PolygonFileError(
            f"{path.name} has no Polygon or MultiPolygon features (found {', '.join(types)})"
        )
    crs = meta.get("crs")
    to_wgs84 = _transformer(crs, path)
    field = _name_field(name_field, fields, [records[i] for i, _ in kept], path, fallback_name)
    merged: dict[str, list[BaseGeometry]] = {}
    for n, (i, geom) in enumerate(kept):
        if field is None:
            name = fallback_name if len(kept) == 1 else f"{fallback_name}-{n + 1}"
        else:
            name = records[i].get(field) or ""
        if to_wgs84 is not None:
            geom = shapely.transform(geom, to_wgs84, interleaved=False)
        merged.setdefault(str(name), []).append(_checked(geom, path, str(name)))
    polygons = tuple(
        NamedPolygon(name, parts[0] if len(parts) == 1 else shapely.unary_union(parts), len(parts))
        for name, parts in merged.items()
    )
    return PolygonFile(polygons, field, fields, len(kept), crs)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _name_field(
    asked: str | None,
    fields: Sequence[str],
    records: Sequence[Mapping[str, str | None]],
    path: Path,
    fallback: str | None,
) -> str | None:
    listed = ", ".join(fields) or "none"
    if asked is not None:
        if asked not in fields:
            raise PolygonFileError(
                f"{path.name} has no property {asked!r} to name the polygons; "
                f"its properties are: {listed}"
            )
        blank = sum(1 for r in records if not r.get(asked))
        if blank:
            raise PolygonFileError(
                f"{blank} feature(s) of {path.name} have no value in {asked!r}: "
                "every polygon needs a name (choose another --name-field or --where)"
            )
        return asked
    complete = [f for f in fields if all(r.get(f) for r in records)]
    for hint in NAME_FIELD_HINTS:
        for f in complete:
            if hint in f.lower():
                return f
    for f in complete:
        values = [r.get(f) for r in records]
        if len(set(values)) == len(values) and not all(_numeric(v) for v in values):
            return f
    if fallback is not None:
        return None
    raise PolygonFileError(
        f"cannot tell which property of {path.name} names the polygons: "
        f"give --name-field (properties: {listed})"
    )


def _numeric(value: str | None) -> bool:
    try:
        float(value or "")
    except ValueError:
        return False
    return True


def _transformer(crs: str | None, path: Path) -> Any:
    """Return a (x, y) -> (lon, lat) function, or None when the file is already WGS84."""
    if crs is None:
        return None  # GeoJSON without a "crs" member is WGS84 by definition (RFC 7946)
    try:
        source = CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError, a plain exception class
        raise PolygonFileError(f"{path.name}: unknown coordinate system {crs!r}: {exc}") from exc
    target = CRS.from_epsg(4326)
    if source == target or (source.is_geographic and source.to_epsg() == 4326):
        return None
    transformer = Transformer.from_crs(source, target, always_xy=True)
    return transformer.transform


def _checked(geom: BaseGeometry, path: Path, name: str) -> BaseGeometry:
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise PolygonFileError(
            f"{path.name}: polygon {name!r} is outside WGS84 longitude/latitude ranges; "
            "the file declares no coordinate system, or the wrong one"
        )
    if not geom.is_valid:
        # Repairing a self-intersecting ring can yield slivers (lines, points); keep
        # only the polygonal parts.
        fixed = shapely.make_valid(geom)
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
        geom = shapely.unary_union(parts)
    if geom.is_empty:
        raise PolygonFileError(f"{path.name}: polygon {name!r} is empty")
    return geom
