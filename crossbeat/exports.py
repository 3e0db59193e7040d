"""Exports of any incident query as CSV, GeoJSON or GeoPackage (issue #10).

An export is a read like any other: :func:`export_incidents` asks
:func:`crossbeat.sharing.reads.read_incidents` for the records, so the sharing policy
decides what is in the file and how precisely, and the read is audited as an
``export`` event per owner agency (its record ids and count) in the same transaction.

What the file holds is exactly what was granted: the columns are those of
:data:`~crossbeat.sharing.scope.RECORD_FIELDS` that at least one exported record
carries (a column no owner granted is absent, not empty), and the public's never go
beyond :data:`~crossbeat.sharing.scope.PUBLIC_FIELDS`. No hidden metadata is written:
no query, no user, no server, no database names; the GeoPackage has one layer
(``incidents``) and no metadata tables, the GeoJSON only ``type`` and ``features``.

Lists and mappings (``offences``, ``jurisdictions``, ``areas``, ``sensitivity``,
``attributes``) are written as JSON text in CSV and GeoPackage columns; times as ISO
8601 text in UTC. In GeoJSON and GeoPackage the point is the geometry (WGS84, CRS84
axis order) and ``lat``/``lon`` are not repeated as properties; a record shown
without a point has a null geometry.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from crossbeat.sharing.reads import read_incidents
from crossbeat.sharing.request import ReadRequest, Viewer, ViewerKind
from crossbeat.sharing.scope import PUBLIC_FIELDS, RECORD_FIELDS
from crossbeat.store import Store

#: The most records one export holds (a bigger query must be cut by its filters).
MAX_EXPORT = 1_000_000
#: Name of the one layer of a GeoPackage export.
LAYER = "incidents"
_POINT = ("lat", "lon")


class ExportFormat(StrEnum):
    """The file formats of an export."""

    CSV = "csv"
    GEOJSON = "geojson"
    GPKG = "gpkg"

    @property
    def media_type(self) -> str:
        """Return the HTTP media type of files of this format."""
        return {
            "csv": "text/csv; charset=utf-8",
            "geojson": "application/geo+json",
            "gpkg": "application/geopackage+sqlite3",
        }[self.value]


@dataclass(frozen=True)
class Export:
    """An export file and what it holds.

    Attributes
    ----------
    data
        The file's bytes.
    format
        Its format.
    columns
        The columns (properties) it holds, in order.
    counts
        Records per owner agency (as audited).
    next_after
        When the query matched more records than the limit: the cursor (``after=``)
        of the next part; else None.
    """

    data: bytes
    format: ExportFormat
    columns: tuple[str, ...]
    counts: Mapping[str, int]
    next_after: str | None = None

    @property
    def filename(self) -> str:
        """Return a file name for it (``incidents.csv``...)."""
        return f"{LAYER}.{self.format.value}"


def export_columns(records: Iterable[Mapping[str, Any]], viewer: Viewer) -> tuple[str, ...]:
    """Return the columns an export of ``records`` holds: only fields some record carries.

    Parameters
    ----------
    records
        Records as :func:`~crossbeat.sharing.reads.read_incidents` returned them.
    viewer
        Who exports: the public never gets a field beyond ``PUBLIC_FIELDS``.

    Returns
    -------
    tuple of str
        Field names in :data:`RECORD_FIELDS` order.

    Examples
    --------
    >>> export_columns([{"id": "a", "agency_id": "x", "lat": 1.0}], Viewer.public())
    ('id', 'agency_id', 'lat')
    """
    present: set[str] = set()
    for r in records:
        present.update(k for k, v in r.items() if v is not None or k in ("id", "agency_id"))
    allowed = PUBLIC_FIELDS if viewer.kind is ViewerKind.PUBLIC else frozenset(RECORD_FIELDS)
    return tuple(f for f in RECORD_FIELDS if f in present and f in allowed)


def export_incidents(
    store: Store, viewer: Viewer, request: ReadRequest, fmt: ExportFormat | str
) -> Export:
    """Export the incidents ``viewer`` may see that match ``request``, audited as an export.

    Parameters
    ----------
    store
        The store.
    viewer
        Who exports; the sharing policy applies as for any read.
    request
        The filters (its ``limit`` and ``after`` are honoured; without a limit at most
        :data:`MAX_EXPORT` records are exported, and ``next_after`` says where the
        rest begins).
    fmt
        ``csv``, ``geojson`` or ``gpkg``.

    Returns
    -------
    Export
        The file and what it holds.

    Raises
    ------
    ValueError
        An unknown format.
    """
    fmt = ExportFormat(fmt)
    if request.limit is None:
        request = replace(request, limit=MAX_EXPORT)
    result = read_incidents(store, viewer, request, export=True)
    records = result.records
    columns = export_columns(records, viewer)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["agency_id"]] = counts.get(r["agency_id"], 0) + 1
    if fmt is ExportFormat.CSV:
        data = to_csv(records, columns).encode("utf-8")
    elif fmt is ExportFormat.GEOJSON:
        data = json.dumps(to_geojson(records, columns), separators=(",", ":")).encode("utf-8")
    else:
        data = to_gpkg(records, columns)
    return Export(data, fmt, columns, counts, result.next_after)


def _text(value: Any) -> str | None:
    """Return a value as text for a CSV or GeoPackage cell (JSON for lists and mappings)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return json.dumps(_jsonable(value), sort_keys=True, ensure_ascii=False)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def to_csv(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Return records as CSV text with a header row of ``columns``.

    Examples
    --------
    >>> print(to_csv([{"id": "a", "jurisdictions": ["x", "y"]}], ["id", "jurisdictions"]), end="")
    id,jurisdictions
    a,"[""x"", ""y""]"
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        row = []
        for c in columns:
            value = r.get(c)
            row.append(_csv_cell(value))
        writer.writerow(row)
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    text = _text(value)
    if text is None:
        return ""
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection):
    # numbers keep their sign, other text gets a leading apostrophe.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _geometry(record: Mapping[str, Any]) -> dict[str, Any] | None:
    lat, lon = record.get("lat"), record.get("lon")
    if lat is None or lon is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


def to_geojson(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, Any]:
    """Return records as a GeoJSON FeatureCollection (RFC 7946; ``id`` is the feature id).

    Examples
    --------
    >>> fc = to_geojson([{"id": "a", "lat": 51.5, "lon": -0.1}], ["id", "lat", "lon"])
    >>> fc["features"][0]["geometry"], fc["features"][0]["properties"]
    ({'type': 'Point', 'coordinates': [-0.1, 51.5]}, {'id': 'a'})
    """
    props = [c for c in columns if c not in _POINT]
    features = [
        {
            "type": "Feature",
            "id": r["id"],
            "geometry": _geometry(r),
            "properties": {c: _jsonable(r.get(c)) for c in props},
        }
        for r in records
    ]
    return {"type": "FeatureCollection", "features": features}


def to_gpkg(records: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    """Return records as a GeoPackage file (one point layer ``incidents``, EPSG:4326).

    Every column is text (lists and mappings as JSON, times as ISO 8601), so that a
    column has one type whatever the owners granted.
    """
    import numpy as np
    import pyogrio.raw
    import shapely

    props = [c for c in columns if c not in _POINT]
    points = [
        shapely.Point(r["lon"], r["lat"])
        if r.get("lat") is not None and r.get("lon") is not None
        else None
        for r in records
    ]
    geometry = np.array(
        [shapely.to_wkb(p) if p is not None else None for p in points], dtype=object
    )
    field_data = [np.array([_text(r.get(c)) for r in records], dtype=object) for c in props]
    with tempfile.TemporaryDirectory(prefix="crossbeat-export-") as folder:
        path = Path(folder) / f"{LAYER}.gpkg"
        pyogrio.raw.write(
            str(path),
            geometry,
            field_data,
            props,
            layer=LAYER,
            driver="GPKG",
            geometry_type="Point",
            crs="EPSG:4326",
            # No metadata beyond what a GeoPackage must hold.
            metadata=None,
            layer_metadata=None,
        )
        return path.read_bytes()
