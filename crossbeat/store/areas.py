"""Area tags of incidents: which areas of which layers contain each stored point.

The write side of :mod:`crossbeat.areas`: the ingest tags each stored incident with
every area containing it (:func:`area_tag_rows`, called by
:mod:`crossbeat.store.writes`), and a layer change re-tags every stored incident for
that layer (:func:`retag_layer`), in the transaction that changed the layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select

from crossbeat.geo.areas import AreaIndex
from crossbeat.model import Incident
from crossbeat.store.schema import areas, incident_areas, incidents


def load_area_index(conn: Connection, *, layer_id: int | None = None) -> AreaIndex:
    """Build the spatial index over every stored area (or one layer's areas)."""
    q = select(areas.c.id, areas.c.geojson).order_by(areas.c.id)
    if layer_id is not None:
        q = q.where(areas.c.layer_id == layer_id)
    return AreaIndex.from_geojson((a, json.loads(g)) for a, g in conn.execute(q))


def area_tag_rows(index: AreaIndex | None, stored: Iterable[Incident]) -> list[dict[str, Any]]:
    """Return the ``incident_areas`` rows of incidents about to be stored."""
    stored = list(stored)
    if index is None or not len(index) or not stored:
        return []
    lats = [i.location.lat for i in stored]
    lons = [i.location.lon for i in stored]
    return [
        {"incident_id": inc.id, "area_id": a}
        for inc, found in zip(stored, index.areas_at(lats, lons), strict=True)
        for a in found
    ]


def untag_layer(conn: Connection, layer_id: int) -> int:
    """Delete every incident's tags of a layer's areas; return how many incidents had one."""
    in_layer = select(areas.c.id).where(areas.c.layer_id == layer_id)
    tagged = conn.execute(
        select(func.count(func.distinct(incident_areas.c.incident_id))).where(
            incident_areas.c.area_id.in_(in_layer)
        )
    ).scalar_one()
    conn.execute(delete(incident_areas).where(incident_areas.c.area_id.in_(in_layer)))
    return int(tagged)


def retag_layer(conn: Connection, layer_id: int, *, chunk: int = 5000) -> int:
    """Tag every stored incident with the areas of one layer that contain it.

    Call it in the transaction that (re)wrote the layer's areas, after
    :func:`untag_layer`; withdrawn records are tagged too, as at ingest.

    Returns
    -------
    int
        How many incidents lie in at least one area of the layer.
    """
    index = load_area_index(conn, layer_id=layer_id)
    if not len(index):
        return 0
    tagged = 0
    last = ""
    while True:
        batch = conn.execute(
            select(incidents.c.id, incidents.c.lat, incidents.c.lon)
            .where((incidents.c.id > last) & incidents.c.lat.is_not(None))
            .order_by(incidents.c.id)
            .limit(chunk)
        ).all()
        if not batch:
            return tagged
        rows = _rows(batch, index.areas_at([r.lat for r in batch], [r.lon for r in batch]))
        if rows:
            conn.execute(incident_areas.insert(), rows)
            tagged += len({r["incident_id"] for r in rows})
        last = batch[-1].id


def _rows(batch: Sequence[Any], found: Sequence[tuple[int, ...]]) -> list[dict[str, Any]]:
    return [
        {"incident_id": r.id, "area_id": a}
        for r, ids in zip(batch, found, strict=True)
        for a in ids
    ]
