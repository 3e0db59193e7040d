"""Source rows on their way into the store, and what the ingest derives for them.

An :class:`Item` is one source row after normalising: the incident to store (or the
update to apply), or the reasons it was refused. :func:`derive` adds what the ingest
computes from the incident's point — its H3 cells and the jurisdictions containing it —
before :func:`crossbeat.ingest.writes.write_chunk` classifies and writes the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from crossbeat.geo.cells import h3_cells_many
from crossbeat.geo.jurisdictions import JurisdictionIndex
from crossbeat.ingest.unchanged import StoredRef
from crossbeat.model import Incident, RecordUpdate

#: ``unchanged``: a row whose source digest matches its stored record
#: (:mod:`crossbeat.ingest.unchanged`), counted without being normalised.
Action = Literal["upsert", "withdraw", "expunge", "update", "unchanged"]


@dataclass(frozen=True, slots=True)
class Item:
    """One source row on its way into the store: an incident or the reasons it failed."""

    row_number: int
    file_hash: str
    source_file: str
    raw: dict[str, Any]
    #: The owning agency; None only for a rejected row of a multi-agency feed whose
    #: agency could not be determined.
    agency_id: str | None
    incident: Incident | None = None
    action: Action = "upsert"
    reasons: tuple[str, ...] = ()
    #: For a row of an update feed (``action = "update"``): the dated change.
    update: RecordUpdate | None = None
    #: The unkeyed hash of the row and its context, stored keyed as the record's
    #: source digest (:func:`crossbeat.ingest.unchanged.source_key`); None: not kept.
    source_key: str | None = None
    #: For ``action = "unchanged"``: the stored record the row matches.
    stored: StoredRef | None = None


def derive(items: Sequence[Item], index: JurisdictionIndex) -> list[Item]:
    """Add H3 cells and containing jurisdictions to the incidents to be stored.

    The jurisdictions of all the items come from one spatial-index query, their H3
    cells from a few vectorised calls.

    Parameters
    ----------
    items
        Items of a chunk, in order.
    index
        Every agency's jurisdiction polygons (:func:`crossbeat.agencies.jurisdiction_index`).

    Returns
    -------
    list[Item]
        The items, those with an incident to store carrying its cells and jurisdictions.
    """
    out = list(items)
    found = [
        (i, it.incident)
        for i, it in enumerate(out)
        if it.incident is not None and it.action == "upsert"
    ]
    if not found:
        return out
    points = [inc.location for _, inc in found]
    lats, lons = [p.lat for p in points], [p.lon for p in points]
    tags = index.agencies_at(lats, lons)
    cells = h3_cells_many(lats, lons)
    for (i, inc), cell, here in zip(found, cells, tags, strict=True):
        out[i] = replace(out[i], incident=replace(inc, h3=cell, jurisdictions=here))
    return out
