"""OGC API - Features Part 1 (Core, GeoJSON) over the sharing policy (issue #10).

Desktop GIS (QGIS, ArcGIS Pro) opens CrossBeat as a layer through OGC API - Features.
This module holds what does not depend on HTTP: which collections a caller has, how the
standard's query parameters (``bbox``, ``datetime``, ``limit``, ``offset``, property
filters) become a :class:`~crossbeat.sharing.request.ReadRequest`, and the items of a
page. The routes (:mod:`crossbeat.api.routes.ogc`) add the links and render JSON.

Collections: ``incidents`` (every incident the caller may see, read through
:func:`crossbeat.sharing.reads.read_incidents` and audited like any read, so each
user's redaction applies), and one ``areas-AGENCY-LAYER`` collection per area layer of
the agencies that share with the caller (:func:`crossbeat.sharing.reads.sharing_owners`;
the area polygons are administrative boundaries, not incident data). Coordinates are
WGS84 longitude/latitude (CRS84), the only CRS offered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import shapely.geometry

from crossbeat.areas import layer_shapes, list_layers
from crossbeat.sharing.reads import count_incidents, read_detail, read_incidents, sharing_owners
from crossbeat.sharing.request import ReadRequest, RequestError, Viewer, ViewerKind
from crossbeat.store import Store

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
)
INCIDENTS = "incidents"
DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
MAX_OFFSET = 10_000
#: The standard's parameters, which are not property filters.
STANDARD_PARAMS = frozenset({"bbox", "datetime", "limit", "offset", "after", "f"})
#: Incident properties that can filter items (``?status=open``), and the request field
#: each fills.
QUERYABLES: Mapping[str, str] = {
    "agency_id": "agencies",
    "nibrs_code": "offences",
    "crime_against": "offences",
    "status": "statuses",
    "offence_local_code": "codes",
    "jurisdictions": "jurisdictions",
}


class OgcError(ValueError):
    """A bad OGC API request (400); the message names the parameter."""


@dataclass(frozen=True)
class Collection:
    """One collection offered to a caller."""

    id: str
    title: str
    description: str
    #: ``(agency, layer)`` for an area layer's collection, None for incidents.
    layer: tuple[str, str] | None = None

    @property
    def temporal(self) -> bool:
        """Return whether the items have a time (the ``datetime`` filter applies)."""
        return self.layer is None


@dataclass(frozen=True)
class Page:
    """One page of features."""

    features: list[dict[str, Any]]
    number_matched: int | None
    next_after: str | None = None
    next_offset: int | None = None


def collections(store: Store, viewer: Viewer) -> list[Collection]:
    """Return the collections ``viewer`` has: incidents, then each visible area layer."""
    out = [
        Collection(
            INCIDENTS,
            "Incidents",
            "The incidents you may see, as the sharing agreements show them to you.",
        )
    ]
    owners = set(sharing_owners(store, viewer))
    if viewer.kind is not ViewerKind.PUBLIC and viewer.agency_id:
        owners.add(viewer.agency_id)
    for layer in list_layers(store):
        if layer.agency_id in owners:
            out.append(
                Collection(
                    f"areas-{layer.agency_id}-{layer.name}",
                    f"{layer.agency_id} {layer.kind} areas: {layer.name}",
                    f"The {len(layer.areas)} areas of {layer.agency_id}'s layer {layer.name}.",
                    (layer.agency_id, layer.name),
                )
            )
    return out


def find_collection(store: Store, viewer: Viewer, collection_id: str) -> Collection | None:
    """Return the caller's collection with this id, or None."""
    return next((c for c in collections(store, viewer) if c.id == collection_id), None)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """Read ``bbox=minx,miny,maxx,maxy`` (CRS84); six numbers drop the heights.

    Examples
    --------
    >>> parse_bbox("-0.2,51.4,0.1,51.6")
    (-0.2, 51.4, 0.1, 51.6)
    """
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise OgcError("bbox: give four numbers minx,miny,maxx,maxy (longitude/latitude)") from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(abs(v) < float("inf") for v in values):
        raise OgcError("bbox: give four numbers minx,miny,maxx,maxy (longitude/latitude)")
    min_x, min_y, max_x, max_y = values
    if not (-180 <= min_x <= 180 and -180 <= max_x <= 180 and -90 <= min_y <= max_y <= 90):
        raise OgcError("bbox: longitudes -180..180, latitudes -90..90 with miny <= maxy")
    if min_x > max_x:
        raise OgcError("bbox: boxes across the antimeridian are not supported; split it")
    return (min_x, min_y, max_x, max_y)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _instant(text: str, *, end: bool) -> datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if _DATE.match(text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return day + timedelta(days=1) if end else day
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise OgcError(
            f"datetime: {text!r} is not an RFC 3339 date-time (2026-03-01T00:00:00Z), a date, or .."
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when + timedelta(microseconds=1) if end else when


def parse_datetime(text: str) -> tuple[datetime | None, datetime | None]:
    """Read ``datetime=`` (an instant, ``start/end``, ``../end`` or ``start/..``).

    Returns ``[since, until)``; the standard's intervals are closed, so ``until`` is
    just after the given end.

    Examples
    --------
    >>> since, until = parse_datetime("2026-03-01/..")
    >>> since.isoformat(), until
    ('2026-03-01T00:00:00+00:00', None)
    """
    if "/" in text:
        start, _, stop = text.partition("/")
        since, until = _instant(start, end=False), _instant(stop, end=True)
        if since is None and until is None:
            raise OgcError("datetime: give at least one end of the interval")
        if since is not None and until is not None and until <= since:
            raise OgcError("datetime: the interval ends before it starts")
        return since, until
    since = _instant(text, end=False)
    if since is None:
        raise OgcError("datetime: give a date-time, a date or an interval")
    return since, _instant(text, end=True)


def incident_request(
    *,
    bbox: str | None,
    datetime_: str | None,
    properties: Mapping[str, Sequence[str]],
    limit: int,
    offset: int,
    after: str | None,
) -> ReadRequest:
    """Turn the standard's parameters and property filters into a read request.

    Raises
    ------
    OgcError
        A bad or unknown parameter (the standard asks for 400).
    """
    unknown = sorted(set(properties) - set(QUERYABLES))
    if unknown:
        raise OgcError(
            f"unknown parameter(s) {', '.join(unknown)}: use bbox, datetime, limit, offset "
            f"or a property filter ({', '.join(QUERYABLES)})"
        )
    fields: dict[str, set[str]] = {}
    for name, values in properties.items():
        fields.setdefault(QUERYABLES[name], set()).update(values)
    since = until = None
    if datetime_ is not None:
        since, until = parse_datetime(datetime_)
    try:
        return ReadRequest(
            bbox=parse_bbox(bbox) if bbox is not None else None,
            since=since,
            until=until,
            limit=limit + offset,
            after=after,
            **{k: frozenset(v) for k, v in fields.items()},  # type: ignore[arg-type]
        )
    except RequestError as exc:
        raise OgcError(str(exc)) from None


def incident_items(store: Store, viewer: Viewer, request: ReadRequest, *, offset: int = 0) -> Page:
    """Return a page of incident features, read through the sharing policy (audited).

    ``request.limit`` covers the ``offset`` skipped records (which are read, and so
    audited, too); ``number_matched`` is the count the caller may see, or None when the
    policy suppresses it.
    """
    result = read_incidents(store, viewer, request)
    records = result.records[offset:]
    matched = count_incidents(store, viewer, replace(request, limit=None, after=None))
    features = [incident_feature(r) for r in records]
    return Page(features, matched, next_after=result.next_after)


def incident_item(store: Store, viewer: Viewer, feature_id: str) -> dict[str, Any] | None:
    """Return one incident feature as the caller may see it (audited), or None."""
    found = read_detail(store, viewer, feature_id).record
    return incident_feature(found) if found is not None else None


def incident_feature(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return an incident record as a GeoJSON feature (CRS84; times as RFC 3339)."""
    props = {k: _json(v) for k, v in record.items() if k not in ("lat", "lon")}
    lat, lon = record.get("lat"), record.get("lon")
    geometry = (
        {"type": "Point", "coordinates": [lon, lat]}
        if lat is not None and lon is not None
        else None
    )
    return {"type": "Feature", "id": str(record["id"]), "geometry": geometry, "properties": props}


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def area_items(
    store: Store,
    collection: Collection,
    *,
    bbox: str | None,
    properties: Mapping[str, Sequence[str]],
    limit: int,
    offset: int,
) -> Page:
    """Return a page of an area layer's features (``name``, ``layer``, ``agency_id``)."""
    assert collection.layer is not None
    unknown = sorted(set(properties) - {"name"})
    if unknown:
        raise OgcError(f"unknown parameter(s) {', '.join(unknown)}: this layer filters by name")
    agency, layer = collection.layer
    box = shapely.geometry.box(*parse_bbox(bbox)) if bbox is not None else None
    names = set(properties.get("name", ()))
    features = []
    for name, geometry in layer_shapes(store, agency, layer):
        if names and name not in names:
            continue
        if box is not None and not box.intersects(shapely.geometry.shape(geometry)):
            continue
        features.append(
            {
                "type": "Feature",
                "id": name,
                "geometry": geometry,
                "properties": {"name": name, "layer": layer, "agency_id": agency},
            }
        )
    page = features[offset : offset + limit]
    more = offset + limit < len(features)
    return Page(page, len(features), next_offset=offset + limit if more else None)


def area_item(store: Store, collection: Collection, feature_id: str) -> dict[str, Any] | None:
    """Return one area of a layer's collection by name, or None."""
    page = area_items(
        store, collection, bbox=None, properties={"name": [feature_id]}, limit=1, offset=0
    )
    return page.features[0] if page.features else None
