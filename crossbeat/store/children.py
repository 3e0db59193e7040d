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
:func:`crossbeat.store.tags.refresh_children` (bulk loads; migration 0026b's backfill
is the same statement). ``tests/test_store_children.py`` checks that every write path
keeps them equal to the child tables. This module holds only the values (no table is
read here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

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


def _written(value: str | None, column: str) -> str:
    if value is None:  # a write path that left it out: never read as "no offences"
        raise ValueError(
            f"incidents.{column} is NULL: a row was written without it "
            "(crossbeat.store.tags.refresh_children writes it from the child tables)"
        )
    return value


def parse_offences(value: str | None) -> list[dict[str, Any]]:
    """Return the offences of an ``offences_json`` value as dicts of :data:`OFFENCE_KEYS`.

    A NULL value (a row some write path stored without it) raises ``ValueError``.
    """
    value = _written(value, "offences_json")
    return [dict(zip(OFFENCE_KEYS, item, strict=True)) for item in json.loads(value)]


def parse_jurisdictions(value: str | None) -> list[str]:
    """Return the agency ids of a ``jurisdiction_ids`` value (NULL raises ``ValueError``)."""
    value = _written(value, "jurisdiction_ids")
    return value.split(",") if value else []
