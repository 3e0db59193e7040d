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

from crossbeat.geo.jurisdictions import JurisdictionIndex
from crossbeat.model import Agency
from crossbeat.store import Store
from crossbeat.store.records import jurisdiction_rows
from crossbeat.store.schema import agencies, incident_jurisdictions, incidents, jurisdictions

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


def register_agency(store: Store, agency: Agency) -> None:
    """Create an agency, or update its name, ORI and time zone if it exists.

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
    with store.begin() as conn:
        store.upsert(conn, agencies, [row], keys=["id"], update=["name", "ori", "timezone"])


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
    store: Store, agency_id: str, polygons: Sequence[tuple[str, Mapping[str, Any]]]
) -> None:
    """Set (or replace) several named polygons of an agency, then re-tag, atomically."""
    if not store.agency_exists(agency_id):
        raise AgencyError(f"unknown agency {agency_id!r}: register it first (crossbeat agency add)")
    checked = [(name, _check_geometry(geometry)) for name, geometry in polygons]
    with store.begin() as conn:
        for name, geom in checked:
            conn.execute(
                delete(jurisdictions).where(
                    (jurisdictions.c.agency_id == agency_id) & (jurisdictions.c.name == name)
                )
            )
            conn.execute(
                jurisdictions.insert().values(
                    agency_id=agency_id,
                    name=name,
                    geojson=json.dumps(mapping(geom)),
                    created_at=store.now(),
                )
            )
        retag_incidents(store, conn=conn)


def load_boundaries(
    store: Store,
    agency_id: str,
    path: str | Path,
    *,
    where: Mapping[str, str] | None = None,
    name_property: str = "name",
) -> int:
    """Load jurisdiction polygons for an agency from a GeoJSON file (WGS84).

    Parameters
    ----------
    where
        Keep only features whose properties equal these values, e.g.
        ``{"name": "City of London"}``.
    name_property
        Feature property used as the jurisdiction's name.

    Returns
    -------
    int
        Number of polygons loaded.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AgencyError(f"cannot read GeoJSON boundary file {path}: {exc}") from exc
    feats = doc.get("features") if isinstance(doc, dict) else None
    if feats is None:
        feats = [{"type": "Feature", "properties": {}, "geometry": doc}]
    chosen = [
        f
        for f in feats
        if all(str((f.get("properties") or {}).get(k)) == v for k, v in (where or {}).items())
    ]
    if not chosen:
        raise AgencyError(f"no feature in {path} matches {dict(where or {})}")
    polygons = [
        (
            str((f.get("properties") or {}).get(name_property) or f"{agency_id}-{i + 1}"),
            f.get("geometry") or {},
        )
        for i, f in enumerate(chosen)
    ]
    set_jurisdictions(store, agency_id, polygons)
    return len(polygons)


def jurisdiction_index(store: Store) -> JurisdictionIndex:
    """Build the spatial index over every stored jurisdiction polygon."""
    with store.connect() as conn:
        rows = conn.execute(
            select(jurisdictions.c.agency_id, jurisdictions.c.name, jurisdictions.c.geojson)
        ).all()
    return JurisdictionIndex.from_geojson((a, n, json.loads(g)) for a, n, g in rows)


def retag_incidents(store: Store, *, conn: Connection | None = None, chunk: int = 5000) -> int:
    """Recompute every incident's jurisdiction tags after a boundary changed.

    Parameters
    ----------
    conn
        Run inside this transaction (the one that changed the boundary); by default
        in a transaction of its own.

    Returns
    -------
    int
        The number of incidents re-tagged.
    """
    if conn is None:
        with store.begin() as own:
            return retag_incidents(store, conn=own, chunk=chunk)
    rows = conn.execute(
        select(jurisdictions.c.agency_id, jurisdictions.c.name, jurisdictions.c.geojson)
    ).all()
    index = JurisdictionIndex.from_geojson((a, n, json.loads(g)) for a, n, g in rows)
    done = 0
    last = ""
    while True:
        batch = conn.execute(
            select(incidents.c.id, incidents.c.agency_id, incidents.c.lat, incidents.c.lon)
            .where(incidents.c.id > last)
            .order_by(incidents.c.id)
            .limit(chunk)
        ).all()
        if not batch:
            return done
        ids = [r.id for r in batch]
        tags = index.agencies_at([r.lat for r in batch], [r.lon for r in batch])
        conn.execute(
            delete(incident_jurisdictions).where(incident_jurisdictions.c.incident_id.in_(ids))
        )
        conn.execute(
            incident_jurisdictions.insert(),
            [
                jr
                for r, t in zip(batch, tags, strict=True)
                for jr in jurisdiction_rows(r.id, r.agency_id, t)
            ],
        )
        last = ids[-1]
        done += len(batch)
