"""Re-tagging stored incidents with the jurisdictions that contain them (a write path).

When a boundary changes, every incident's jurisdiction tags are recomputed from the new
polygons. This rewrites ``incident_jurisdictions`` (and the incident rows' copy of them,
``jurisdiction_ids``: :mod:`crossbeat.store.children`) and reads only what it needs to do
so (each incident's id, agency and point); it shows nothing to anyone, so it lives with
the store's other writers rather than behind the sharing policy. :func:`refresh_children`
writes the incident rows' copies of their offences and jurisdictions from the child
tables, for bulk loads. The caller
(:func:`crossbeat.agencies.set_jurisdictions`) audits the boundary change, with the
number of incidents re-tagged, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, delete, select, text, update

from crossbeat.geo.jurisdictions import JurisdictionIndex
from crossbeat.store.children import jurisdictions_value
from crossbeat.store.records import jurisdiction_rows
from crossbeat.store.schema import incident_jurisdictions, incidents


def retag_jurisdictions(conn: Connection, index: JurisdictionIndex, *, chunk: int = 5000) -> int:
    """Recompute every incident's jurisdiction tags from ``index`` in ``conn``'s transaction.

    Parameters
    ----------
    conn
        The open transaction (the one that changed the boundary).
    index
        Every agency's jurisdiction polygons, as they are after the change.
    chunk
        Incidents read and re-tagged per step (memory is bounded by it).

    Returns
    -------
    int
        The number of incidents re-tagged.
    """
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
        rows = [jurisdiction_rows(r.id, r.agency_id, t) for r, t in zip(batch, tags, strict=True)]
        conn.execute(
            delete(incident_jurisdictions).where(incident_jurisdictions.c.incident_id.in_(ids))
        )
        conn.execute(incident_jurisdictions.insert(), [jr for rs in rows for jr in rs])
        # The same tags on the incident row (crossbeat.store.children).
        conn.execute(
            update(incidents)
            .where(incidents.c.id == bindparam("b_id"))
            .values(jurisdiction_ids=bindparam("b_places")),
            [
                {"b_id": i, "b_places": jurisdictions_value(jr["agency_id"] for jr in rs)}
                for i, rs in zip(ids, rows, strict=True)
            ],
        )
        last = ids[-1]
        done += len(batch)


def _statements(dialect: str) -> tuple[str, str]:
    if dialect == "postgresql":
        offences = (
            "SELECT coalesce(json_agg(json_build_array(o.local_code, o.nibrs_code, "
            "o.crime_against, o.ucr_part1, o.call_category) ORDER BY o.seq)::text, '[]') "
            "FROM incident_offences o WHERE o.incident_id = incidents.id"
        )
        places = (
            "SELECT coalesce(string_agg(j.agency_id, ',' ORDER BY j.agency_id), '') "
            "FROM incident_jurisdictions j WHERE j.incident_id = incidents.id"
        )
    else:
        offences = (
            "SELECT json_group_array(json(x)) FROM (SELECT json_array(o.local_code, "
            "o.nibrs_code, o.crime_against, o.ucr_part1, o.call_category) AS x "
            "FROM incident_offences o WHERE o.incident_id = incidents.id ORDER BY o.seq)"
        )
        places = (
            "SELECT coalesce(group_concat(a, ','), '') FROM (SELECT j.agency_id AS a "
            "FROM incident_jurisdictions j WHERE j.incident_id = incidents.id ORDER BY a)"
        )
    return offences, places


def refresh_children(conn: Connection, ids: Sequence[str] | None = None) -> int:
    """Write both columns from the child tables, in one statement, for ``ids`` or every row.

    For the migration's backfill and for bulk loads that write the child tables
    directly; the ingest writes them from the rows it inserts instead.

    Returns
    -------
    int
        The number of incident rows written.
    """
    offences, places = _statements(conn.dialect.name)
    sql = f"UPDATE incidents SET offences_json = ({offences}), jurisdiction_ids = ({places})"
    if ids is None:
        return conn.execute(text(sql)).rowcount
    done = 0
    for start in range(0, len(ids), 500):
        part = list(ids[start : start + 500])
        marks = ", ".join(f":i{k}" for k in range(len(part)))
        done += conn.execute(
            text(f"{sql} WHERE id IN ({marks})"), {f"i{k}": v for k, v in enumerate(part)}
        ).rowcount
    return done
