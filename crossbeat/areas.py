"""Area layers below the agency: precincts, districts, beats, sectors, neighbourhoods, wards.

An agency registers named layers of named polygons from a GeoJSON, Shapefile or
GeoPackage file (:func:`add_layer`), choosing the property that names each polygon.
Every stored incident is tagged with every area, of every layer, whose polygon
contains its point: at ingest (:mod:`crossbeat.ingest.writes`) and again whenever a
layer is added, replaced or removed, in the same transaction as the change. Reads
filter and group by areas, and an agreement can generalise a grantee's view to one
layer (precision ``area:LAYER``, :mod:`crossbeat.sharing.scope`).

Every change is an audit event (``change`` on an ``area_layer``) with its counts,
visible to the owning agency's auditors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shapely.geometry import mapping
from sqlalchemy import delete, func, select, update

from crossbeat.audit import Action, AuditEvent, append
from crossbeat.geo.polygons import PolygonFileError, read_polygons
from crossbeat.sharing.scope import LAYER_NAME, ScopeError, parse_layer_ref
from crossbeat.store import Store
from crossbeat.store.areas import retag_layer, untag_layer
from crossbeat.store.schema import area_layers, areas

if TYPE_CHECKING:
    from crossbeat.auth.roles import Actor

#: The kinds of layer an agency can register (``other`` for anything else).
LAYER_KINDS: tuple[str, ...] = (
    "precinct",
    "district",
    "beat",
    "sector",
    "neighbourhood",
    "ward",
    "borough",
    "zone",
    "other",
)


class AreaError(ValueError):
    """An area layer operation was given bad input; nothing was changed."""


@dataclass(frozen=True)
class AreaLayer:
    """A registered area layer of an agency.

    Attributes
    ----------
    key
        ``AGENCY/LAYER``, how reads and agreements of other agencies name it.
    areas
        The names of its areas, sorted.
    """

    agency_id: str
    name: str
    kind: str
    name_field: str | None
    source_file: str
    created_at: datetime
    updated_at: datetime
    areas: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Return ``AGENCY/LAYER``."""
        return f"{self.agency_id}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "agency_id": self.agency_id,
            "name": self.name,
            "key": self.key,
            "kind": self.kind,
            "name_field": self.name_field,
            "source_file": self.source_file,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "areas": list(self.areas),
        }


@dataclass(frozen=True)
class LayerChange:
    """What a layer change did: its areas, features and incident tags before and after."""

    agency_id: str
    layer: str
    change: str
    areas: int = 0
    features: int = 0
    tagged: int = 0
    previous_areas: int = 0
    previous_tagged: int = 0
    name_field: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data (also the audit event's details)."""
        return {
            "agency_id": self.agency_id,
            "layer": self.layer,
            "change": self.change,
            "areas": self.areas,
            "features": self.features,
            "incidents_tagged": self.tagged,
            "previous_areas": self.previous_areas,
            "previous_incidents_tagged": self.previous_tagged,
            "name_field": self.name_field,
        }


def validate_layer_name(name: str) -> str:
    """Return a layer name if valid (1-40 of ``a-z 0-9 - _``), else raise :class:`AreaError`."""
    try:
        ref = parse_layer_ref(name)
    except ScopeError:
        ref = ""
    if not ref or "/" in ref or ref != name:
        raise AreaError(
            f"invalid layer name {name!r}: use 1-40 lower-case letters, digits, '-' or '_' "
            f"(pattern {LAYER_NAME})"
        )
    return name


def add_layer(
    store: Store,
    agency_id: str,
    name: str,
    path: str | Path,
    *,
    name_field: str | None = None,
    where: Mapping[str, str] | None = None,
    kind: str = "other",
    replace: bool = False,
    by: Actor | None = None,
) -> LayerChange:
    """Register (or with ``replace`` replace) an area layer and tag every stored incident.

    The layer, its areas, the re-tagging of every stored incident and the audit event
    are one transaction: an interrupted call leaves the old layer and tags in place.

    Parameters
    ----------
    agency_id
        The agency the layer belongs to (registered).
    name
        The layer's name, unique within the agency (``precincts``, ``beats`` ...).
    path
        A GeoJSON, Shapefile or GeoPackage file of polygons, in any coordinate system
        the file declares (GeoJSON without one is WGS84).
    name_field
        The feature property that names each area (default: guessed, see
        :func:`crossbeat.geo.polygons.read_polygons`). Features with the same name
        are merged into one area.
    where
        Keep only features whose properties equal these values.
    kind
        One of :data:`LAYER_KINDS`.
    replace
        Replace an existing layer of that name (refused otherwise).
    by
        The signed-in user making the change, or None for the local operator.

    Raises
    ------
    AreaError
        For an unknown agency, a bad name or kind, an existing layer without
        ``replace``, or a file that cannot be read as asked.
    """
    validate_layer_name(name)
    if kind not in LAYER_KINDS:
        raise AreaError(f"unknown layer kind {kind!r}: use one of {', '.join(LAYER_KINDS)}")
    if not store.agency_exists(agency_id):
        raise AreaError(f"unknown agency {agency_id!r}: register it first (crossbeat agency add)")
    try:
        read = read_polygons(path, name_field=name_field, where=where)
    except PolygonFileError as exc:
        raise AreaError(str(exc)) from exc
    now = store.now()
    with store.begin() as conn:
        old = conn.execute(
            select(area_layers.c.id).where(
                (area_layers.c.agency_id == agency_id) & (area_layers.c.name == name)
            )
        ).scalar()
        previous_areas = previous_tagged = 0
        values = {
            "kind": kind,
            "name_field": read.name_field,
            "source_file": Path(path).name,
            "updated_at": now,
        }
        if old is not None:
            if not replace:
                raise AreaError(
                    f"agency {agency_id} already has an area layer {name!r}: "
                    "give --replace to replace it"
                )
            previous_areas = _count_areas(conn, old)
            previous_tagged = untag_layer(conn, old)
            conn.execute(delete(areas).where(areas.c.layer_id == old))
            conn.execute(update(area_layers).where(area_layers.c.id == old).values(**values))
            layer_id = old
        else:
            inserted = conn.execute(
                area_layers.insert().values(
                    agency_id=agency_id, name=name, created_at=now, **values
                )
            ).inserted_primary_key
            assert inserted is not None
            layer_id = inserted[0]
        conn.execute(
            areas.insert(),
            [
                {"layer_id": layer_id, "name": p.name, "geojson": json.dumps(mapping(p.geometry))}
                for p in read.polygons
            ],
        )
        tagged = retag_layer(conn, layer_id)
        change = LayerChange(
            agency_id,
            name,
            "replaced" if old is not None else "added",
            areas=len(read.polygons),
            features=read.features,
            tagged=tagged,
            previous_areas=previous_areas,
            previous_tagged=previous_tagged,
            name_field=read.name_field,
        )
        _audit(store, conn, change, kind=kind, source=Path(path).name, by=by)
    return change


def remove_layer(
    store: Store, agency_id: str, name: str, *, by: Actor | None = None
) -> LayerChange:
    """Remove an area layer, its areas and every incident's tags of it (audited).

    An agreement whose precision is this layer then shows no areas (only the
    jurisdictions), never more.

    Raises
    ------
    AreaError
        When the agency has no such layer.
    """
    with store.begin() as conn:
        layer_id = conn.execute(
            select(area_layers.c.id).where(
                (area_layers.c.agency_id == agency_id) & (area_layers.c.name == name)
            )
        ).scalar()
        if layer_id is None:
            raise AreaError(_unknown(conn, agency_id, name))
        previous_areas = _count_areas(conn, layer_id)
        previous_tagged = untag_layer(conn, layer_id)
        conn.execute(delete(areas).where(areas.c.layer_id == layer_id))
        conn.execute(delete(area_layers).where(area_layers.c.id == layer_id))
        change = LayerChange(
            agency_id,
            name,
            "removed",
            previous_areas=previous_areas,
            previous_tagged=previous_tagged,
        )
        _audit(store, conn, change, by=by)
    return change


def list_layers(store: Store, agency_id: str | None = None) -> list[AreaLayer]:
    """Return the registered area layers (of one agency), by agency and name."""
    q = select(area_layers).order_by(area_layers.c.agency_id, area_layers.c.name)
    if agency_id is not None:
        q = q.where(area_layers.c.agency_id == agency_id)
    with store.connect() as conn:
        rows = conn.execute(q).mappings().all()
        names: dict[int, list[str]] = {}
        for layer_id, area in conn.execute(select(areas.c.layer_id, areas.c.name)):
            names.setdefault(layer_id, []).append(area)
    return [_layer(r, names.get(r["id"], [])) for r in rows]


def get_layer(store: Store, agency_id: str, name: str) -> AreaLayer:
    """Return one area layer with its area names.

    Raises
    ------
    AreaError
        When the agency has no such layer (naming the ones it has).
    """
    with store.connect() as conn:
        row = (
            conn.execute(
                select(area_layers).where(
                    (area_layers.c.agency_id == agency_id) & (area_layers.c.name == name)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise AreaError(_unknown(conn, agency_id, name))
        names = conn.execute(select(areas.c.name).where(areas.c.layer_id == row["id"])).scalars()
        return _layer(row, list(names))


def layer_polygons(store: Store, agency_id: str, name: str) -> list[tuple[str, Any]]:
    """Return the areas of one layer as ``(name, shapely geometry)`` pairs, by name.

    Raises
    ------
    AreaError
        When the agency has no such layer (naming the ones it has).
    """
    from shapely.geometry import shape

    get_layer(store, agency_id, name)  # the error names the layers the agency has
    q = (
        select(areas.c.name, areas.c.geojson)
        .join(area_layers, area_layers.c.id == areas.c.layer_id)
        .where((area_layers.c.agency_id == agency_id) & (area_layers.c.name == name))
        .order_by(areas.c.name)
    )
    with store.connect() as conn:
        rows = conn.execute(q).all()
    return [(n, shape(json.loads(g))) for n, g in rows]


def _layer(row: Mapping[Any, Any], names: list[str]) -> AreaLayer:
    return AreaLayer(
        agency_id=row["agency_id"],
        name=row["name"],
        kind=row["kind"],
        name_field=row["name_field"],
        source_file=row["source_file"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        areas=tuple(sorted(names)),
    )


def _count_areas(conn: Any, layer_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(areas).where(areas.c.layer_id == layer_id)
        ).scalar_one()
    )


def _unknown(conn: Any, agency_id: str, name: str) -> str:
    have = conn.execute(
        select(area_layers.c.name)
        .where(area_layers.c.agency_id == agency_id)
        .order_by(area_layers.c.name)
    ).scalars()
    listed = ", ".join(have)
    return f"agency {agency_id!r} has no area layer {name!r}" + (
        f" (it has: {listed})" if listed else " (it has none: crossbeat area add)"
    )


def _audit(
    store: Store,
    conn: Any,
    change: LayerChange,
    *,
    by: Actor | None,
    kind: str | None = None,
    source: str | None = None,
) -> None:
    details = change.to_dict()
    if kind is not None:
        details["kind"] = kind
    if source is not None:
        details["source_file"] = source
    append(
        store,
        AuditEvent(
            action=Action.CHANGE,
            actor=by.user_id if by else "system",
            actor_agency=by.agency_id if by else None,
            resource_type="area_layer",
            owner_agencies=(change.agency_id,),
            record_count=change.tagged if change.change != "removed" else change.previous_tagged,
            details=details,
        ),
        conn=conn,
    )


def layer_shapes(store: Store, agency_id: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Return the areas of one layer as ``(name, GeoJSON geometry)`` pairs, by name.

    Raises
    ------
    AreaError
        When the agency has no such layer.
    """
    layer = get_layer(store, agency_id, name)
    q = (
        select(areas.c.name, areas.c.geojson)
        .select_from(areas.join(area_layers, area_layers.c.id == areas.c.layer_id))
        .where((area_layers.c.agency_id == layer.agency_id) & (area_layers.c.name == layer.name))
        .order_by(areas.c.name)
    )
    with store.connect() as conn:
        return [(n, json.loads(g)) for n, g in conn.execute(q)]
