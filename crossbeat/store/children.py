"""An incident's child rows kept on its own row: offences and jurisdictions (issue #8).

A page of records (:mod:`crossbeat.sharing.pages`) publishes each record's offences
and jurisdictions. Read from ``incident_offences`` and ``incident_jurisdictions`` they
cost two index seeks per record, and on PostgreSQL a row-level-security probe of
``incidents`` per child row (the child tables' policy follows their incident). So
every write path also writes them onto the incident row, in two text columns:

* ``offences_json``: a JSON array of ``[local_code, nibrs_code, crime_against,
  ucr_part1, call_category]``, one per offence in ``seq`` order;
* ``jurisdiction_ids``: the agency ids of its jurisdiction tags, sorted, comma-joined.

The child tables stay the record of truth (filters, the reference path, history and
coverage read them). The columns are written from the same rows as the child tables:
by the ingest (:func:`crossbeat.ingest.writes.write_chunk`, which field reports, fixes
and retried quarantine rows also go through) from :func:`child_columns`, by re-tagging
(:func:`crossbeat.store.tags.retag_jurisdictions`), and from the tables themselves by
:func:`refresh_children` (migration 0026b's backfill, bulk loads).
``tests/test_store_children.py`` checks that every write path keeps them equal to the
child tables; :func:`stale_children` is that check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text

#: The ``incident_offences`` columns kept, in this order, per offence.
OFFENCE_KEYS = ("local_code", "nibrs_code", "crime_against", "ucr_part1", "call_category")


def offences_value(rows: Iterable[Mapping[str, Any]]) -> str:
    """Return ``offences_json`` for an incident's ``incident_offences`` rows (in ``seq`` order).

    Examples
    --------
    >>> offences_value([{"local_code": "X", "nibrs_code": "13B", "crime_against": "person",
    ...                  "ucr_part1": None, "call_category": None}])
    '[["X","13B","person",null,null]]'
    """
    return json.dumps(
        [[r[k] for k in OFFENCE_KEYS] for r in rows], separators=(",", ":"), ensure_ascii=False
    )


def jurisdictions_value(agency_ids: Iterable[str]) -> str:
    """Return ``jurisdiction_ids`` for an incident's jurisdiction tags.

    Examples
    --------
    >>> jurisdictions_value(["metro", "east"])
    'east,metro'
    """
    return ",".join(sorted(agency_ids))


def child_columns(
    offences: Iterable[Mapping[str, Any]], jurisdictions: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Return both columns for an incident's offence rows and jurisdiction rows."""
    return {
        "offences_json": offences_value(offences),
        "jurisdiction_ids": jurisdictions_value(r["agency_id"] for r in jurisdictions),
    }


def parse_offences(value: str) -> list[dict[str, Any]]:
    """Return the offences of an ``offences_json`` value as dicts of :data:`OFFENCE_KEYS`."""
    return [dict(zip(OFFENCE_KEYS, item, strict=True)) for item in json.loads(value)]


def parse_jurisdictions(value: str) -> list[str]:
    """Return the agency ids of a ``jurisdiction_ids`` value."""
    return value.split(",") if value else []


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


def stale_children(conn: Connection) -> list[str]:
    """Return the ids of incidents whose two columns differ from their child tables.

    Compared as values (the JSON's spacing differs between backends), in Python.
    """
    rows = conn.execute(text("SELECT id, offences_json, jurisdiction_ids FROM incidents"))
    kept = {r[0]: (r[1], r[2]) for r in rows}
    offences: dict[str, list[list[Any]]] = {}
    cols = ", ".join(OFFENCE_KEYS)
    for r in conn.execute(
        text(f"SELECT incident_id, {cols} FROM incident_offences ORDER BY incident_id, seq")
    ):
        offences.setdefault(r[0], []).append(list(r[1:]))
    places: dict[str, list[str]] = {}
    for r in conn.execute(text("SELECT incident_id, agency_id FROM incident_jurisdictions")):
        places.setdefault(r[0], []).append(r[1])
    out = []
    for iid, (offs, juris) in kept.items():
        if offs is None or juris is None:
            out.append(iid)
            continue
        if json.loads(offs) != offences.get(iid, []):
            out.append(iid)
        elif parse_jurisdictions(juris) != sorted(places.get(iid, [])):
            out.append(iid)
    return sorted(out)
