"""Agencies and their jurisdiction polygons."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely
from rapidfuzz import fuzz, process
from shapely.geometry import mapping, shape
from sqlalchemy import Connection, delete, select

from crossbeat.audit.changes import Principal, record_change
from crossbeat.audit.events import Action
from crossbeat.geo.jurisdictions import JurisdictionIndex
from crossbeat.geo.polygons import PolygonFileError, read_polygons
from crossbeat.model import Agency
from crossbeat.store import Store
from crossbeat.store.areas import load_area_index
from crossbeat.store.schema import agencies, jurisdictions
from crossbeat.store.spatial import rederive_local_times
from crossbeat.store.tags import retag_jurisdictions

_AGENCY_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class AgencyError(ValueError):
    """An agency or boundary operation was given bad input; nothing was changed."""


def validate_agency_id(agency_id: str) -> str:
    """Return the id if it is a valid agency id, else raise :class:`AgencyError`."""
    import re

    if not re.match(_AGENCY_ID, agency_id or ""):
        raise AgencyError(
            f"invalid agency id {agency_id!r}: use 1-64 lower-case letters, digits, '-' or '_'"
        )
    return agency_id


def register_agency(store: Store, agency: Agency, *, by: Principal | None = None) -> None:
    """Create an agency, or update its name, ORI and time zone if it exists.

    The change is written to the audit log in the same transaction: a ``change``
    event (resource ``agency``) owned by the agency, with what it was and what it is
    now. ``by`` is the signed-in user, or None for the local operator.

    Raises
    ------
    AgencyError
        For an invalid id or an unknown time zone.
    """
    validate_agency_id(agency.id)
    try:
        ZoneInfo(agency.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AgencyError(f"unknown time zone {agency.timezone!r} (use an IANA name)") from exc
    if not agency.name.strip():
        raise AgencyError("an agency needs a name")
    row = {
        "id": agency.id,
        "name": agency.name,
        "ori": agency.ori,
        "timezone": agency.timezone,
        "created_at": store.now(),
    }
    fields = ("name", "ori", "timezone")
    with store.begin() as conn:
        old = conn.execute(select(agencies).where(agencies.c.id == agency.id)).mappings().first()
        store.upsert(conn, agencies, [row], keys=["id"], update=list(fields))
        before = {f: old[f] for f in fields} if old is not None else None
        after = {f: row[f] for f in fields}
        if before is not None and before["timezone"] != after["timezone"]:
            # Local times (``occurred_local``) are derived with the flags: derive them
            # again, in the new zone, before the next read serves any (issue #8).
            rederive_local_times(conn, agency.id)
        if before != after:
            record_change(
                store,
                conn,
                Action.CHANGE,
                by,
                resource_type="agency",
                owners=[agency.id],
                details={
                    "operation": "agency_register" if old is None else "agency_update",
                    "agency": agency.id,
                    "before": before,
                    "after": after,
                },
            )


def get_agency(store: Store, agency_id: str) -> Agency | None:
    """Return a registered agency, or None."""
    with store.connect() as conn:
        row = conn.execute(select(agencies).where(agencies.c.id == agency_id)).mappings().first()
    if row is None:
        return None
    return Agency(id=row["id"], name=row["name"], ori=row["ori"], timezone=row["timezone"])


def list_agencies(store: Store) -> list[Agency]:
    """Return every registered agency, by id."""
    with store.connect() as conn:
        rows = conn.execute(select(agencies).order_by(agencies.c.id)).mappings().all()
    return [Agency(id=r["id"], name=r["name"], ori=r["ori"], timezone=r["timezone"]) for r in rows]


def closest_ids(wanted: str, known: Sequence[str], *, limit: int = 5) -> list[str]:
    """Return the known ids ordered by similarity to ``wanted``, closest first.

    Examples
    --------
    >>> closest_ids("cityp", ["countysd", "citypd", "transit"])
    ['citypd', 'countysd', 'transit']
    """
    scored = process.extract(wanted, list(known), scorer=fuzz.WRatio, limit=None)
    scored.sort(key=lambda m: (-m[1], m[0]))
    return [m[0] for m in scored[:limit]]


def _check_geometry(geometry: Mapping[str, Any]) -> shapely.Geometry:
    try:
        geom = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise AgencyError(f"not a GeoJSON geometry: {exc}") from exc
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise AgencyError(f"a jurisdiction must be a Polygon or MultiPolygon, not {geom.geom_type}")
    if geom.is_empty:
        raise AgencyError("the jurisdiction polygon is empty")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise AgencyError(
            "jurisdiction coordinates are outside WGS84 longitude/latitude ranges: "
            "reproject the boundary to EPSG:4326 first"
        )
    if not geom.is_valid:
        # Repairing a self-intersecting ring can yield a collection with slivers
        # (lines, points); keep only its polygonal parts.
        fixed = shapely.make_valid(geom)
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
        geom = shapely.unary_union(parts)
    return geom


def set_jurisdiction(store: Store, agency_id: str, name: str, geometry: Mapping[str, Any]) -> None:
    """Set (or replace) one named jurisdiction polygon of an agency and re-tag incidents.

    The polygon and the re-tagging of every stored incident are one transaction: an
    interrupted call leaves the old boundary and the old tags in place.

    Parameters
    ----------
    geometry
        A GeoJSON Polygon or MultiPolygon in WGS84 longitude/latitude.
    """
    set_jurisdictions(store, agency_id, [(name, geometry)])


def set_jurisdictions(
    store: Store,
    agency_id: str,
    polygons: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    by: Principal | None = None,
) -> None:
    """Set (or replace) several named polygons of an agency, then re-tag, atomically.

    The change is written to the audit log in the same transaction: a ``change``
    event (resource ``jurisdiction``) owned by the agency whose boundary changed,
    with the polygon names, those that replaced a polygon of the same name, and the
    number of incidents re-tagged. ``by`` is the signed-in user, or None for the
    local operator.
    """
    if not store.agency_exists(agency_id):
        raise AgencyError(f"unknown agency {agency_id!r}: register it first (crossbeat agency add)")
    checked = [(name, _check_geometry(geometry)) for name, geometry in polygons]
    with store.begin() as conn:
        replaced = []
        for name, geom in checked:
            gone = conn.execute(
                delete(jurisdictions).where(
                    (jurisdictions.c.agency_id == agency_id) & (jurisdictions.c.name == name)
                )
            )
            if gone.rowcount:
                replaced.append(name)
            conn.execute(
                jurisdictions.insert().values(
                    agency_id=agency_id,
                    name=name,
                    geojson=json.dumps(mapping(geom)),
                    created_at=store.now(),
                )
            )
        retagged = retag_incidents(store, conn=conn)
        record_change(
            store,
            conn,
            Action.CHANGE,
            by,
            resource_type="jurisdiction",
            owners=[agency_id],
            record_count=retagged,
            details={
                "operation": "boundary_set",
                "agency": agency_id,
                "polygons": [name for name, _ in checked],
                "replaced": replaced,
                "incidents_retagged": retagged,
            },
        )


def load_boundaries(
    store: Store,
    agency_id: str,
    path: str | Path,
    *,
    where: Mapping[str, str] | None = None,
    name_property: str | None = None,
    by: Principal | None = None,
) -> int:
    """Load jurisdiction polygons for an agency from a GeoJSON, Shapefile or GeoPackage.

    Each polygon keeps the name its file gives it: from ``name_property``, or else
    from the property that looks like a name
    (:func:`crossbeat.geo.polygons.read_polygons`). Only a file with no usable name
    property (a bare geometry) gets the agency's id as name (``ID-1``, ``ID-2`` ...
    for several polygons). Features sharing a name become one polygon. A file in
    another coordinate system that it declares is reprojected to WGS84.

    Parameters
    ----------
    where
        Keep only features whose properties equal these values, e.g.
        ``{"name": "City of London"}``.
    name_property
        Feature property used as the jurisdiction's name; a feature without a value
        in it is refused.

    Returns
    -------
    int
        Number of polygons loaded.
    """
    try:
        read = read_polygons(path, name_field=name_property, where=where, fallback_name=agency_id)
    except PolygonFileError as exc:
        raise AgencyError(f"boundary file: {exc}") from exc
    polygons = [(p.name, mapping(p.geometry)) for p in read.polygons]
    set_jurisdictions(store, agency_id, polygons, by=by)
    return len(polygons)


def jurisdiction_index(store: Store) -> JurisdictionIndex:
    """Build the spatial index over every stored jurisdiction polygon and area polygon."""
    with store.connect() as conn:
        rows = conn.execute(
            select(jurisdictions.c.agency_id, jurisdictions.c.name, jurisdictions.c.geojson)
        ).all()
        areas = load_area_index(conn)
    return JurisdictionIndex.from_geojson(((a, n, json.loads(g)) for a, n, g in rows), areas)


def boundary_features(store: Store) -> dict[str, Any]:
    """Return every agency's jurisdiction polygons as a GeoJSON FeatureCollection.

    Boundaries are public facts about an agency (its name and where it polices), not
    incident data, so any caller may read them; the web pages draw them under the
    data layers so the map keeps its bearings when no base map tiles can be fetched.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}``; each feature's properties
        are ``agency_id``, ``agency_name`` and ``name`` (of the jurisdiction), by agency
        and name.
    """
    names = {a.id: a.name for a in list_agencies(store)}
    with store.connect() as conn:
        rows = conn.execute(
            select(
                jurisdictions.c.agency_id, jurisdictions.c.name, jurisdictions.c.geojson
            ).order_by(jurisdictions.c.agency_id, jurisdictions.c.name)
        ).all()
    features = [
        {
            "type": "Feature",
            "geometry": json.loads(geojson),
            "properties": {
                "agency_id": agency,
                "agency_name": names.get(agency, agency),
                "name": name,
            },
        }
        for agency, name, geojson in rows
    ]
    return {"type": "FeatureCollection", "features": features}


def retag_incidents(
    store: Store,
    *,
    conn: Connection | None = None,
    chunk: int = 5000,
    by: Principal | None = None,
) -> int:
    """Recompute every incident's jurisdiction tags after a boundary changed.

    Parameters
    ----------
    conn
        Run inside this transaction (the one that changed the boundary, which audits
        the change); by default in a transaction of its own, which appends its own
        ``change`` event (resource ``jurisdiction``, operation ``retag``).
    by
        Who re-tags (only recorded in a transaction of its own): a signed-in user, or
        None for the local operator.

    Returns
    -------
    int
        The number of incidents re-tagged.
    """
    if conn is None:
        with store.begin() as own:
            done = retag_incidents(store, conn=own, chunk=chunk)
            record_change(
                store,
                own,
                Action.CHANGE,
                by,
                resource_type="jurisdiction",
                owners=own.execute(select(agencies.c.id)).scalars(),
                record_count=done,
                details={"operation": "retag", "incidents_retagged": done},
            )
            return done
    rows = conn.execute(
        select(jurisdictions.c.agency_id, jurisdictions.c.name, jurisdictions.c.geojson)
    ).all()
    index = JurisdictionIndex.from_geojson((a, n, json.loads(g)) for a, n, g in rows)
    return retag_jurisdictions(conn, index, chunk=chunk)
