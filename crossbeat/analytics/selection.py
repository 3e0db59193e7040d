"""The viewer's incidents for an analysis: one audited array read, duplicates once."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import select as sql_select

from crossbeat.analysis.budget import check_size, check_time
from crossbeat.analysis.duplicates import linked_groups
from crossbeat.analysis.errors import AnalysisError, Skipped
from crossbeat.clock import Clock
from crossbeat.sharing.arrays import AnalysisArrays, analysis_arrays
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.store import Store
from crossbeat.store.schema import duplicate_links


@dataclass(frozen=True)
class Selection:
    """Incidents an analysis runs on, and what was set aside before it.

    ``arrays`` are the viewer's incidents with every linked duplicate but one per group
    removed, each time a grant coarsened read as the range to the end of its period
    (``occurred_to``: :meth:`~crossbeat.sharing.arrays.AnalysisArrays.time_range`);
    ``skipped`` counts the duplicates removed (``linked duplicate``); ``owners`` is the
    count per owner agency before that.
    """

    arrays: AnalysisArrays
    skipped: Skipped
    owners: dict[str, int]


def _short(reason: str) -> str:
    """The part of a refusal that says why (after the agreement's description)."""
    return reason.rpartition(" — but not for this request: ")[2]


def _refusal(arrays: AnalysisArrays, own_agency: str | None = None) -> str:
    """Say why a selection is empty: no grant for it (and which), or filters matching nothing.

    The viewer's own agency's decision does not count as a grant from a partner: an
    agency with no incidents of its own that no partner shares with (for this request:
    an area, a polygon or an offence filter can need a finer grant) is told so.
    """
    denied = [d for d in arrays.decisions if not d.allow]
    partners = [d for d in arrays.decisions if d.owner != own_agency]
    if denied and all(not d.allow for d in partners):
        why = "; ".join(f"{d.owner}: {_short(d.reasons[0])}" for d in denied[:5] if d.reasons)
        return f"no agency shares incidents with you for this selection ({why})"
    return "empty selection: no incident you may see matches these filters"


def linked_positions(store: Store, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the position pairs of ``ids`` (internal or public ids) that are linked."""
    pos = {str(v): k for k, v in enumerate(ids)}
    left: list[int] = []
    right: list[int] = []
    t = duplicate_links.c
    with store.begin() as conn:
        rows = conn.execute(sql_select(t.id_a, t.public_a, t.id_b, t.public_b)).all()
    for id_a, pub_a, id_b, pub_b in rows:
        a = pos.get(id_a, pos.get(pub_a))
        b = pos.get(id_b, pos.get(pub_b))
        if a is not None and b is not None:
            left.append(a)
            right.append(b)
    return np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)


def select(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    once: bool = True,
    clock: Clock | None = None,
) -> Selection:
    """Read the viewer's incidents as arrays (audited) and count linked duplicates once.

    Parameters
    ----------
    store, viewer, request, clock
        As for :func:`crossbeat.sharing.arrays.analysis_arrays`.
    once
        Keep one incident of each linked duplicate group (the first in id order).

    Raises
    ------
    AnalysisError
        When the viewer sees no incident: the message says whether no agency shares
        with them or the filters match nothing.
    SelectionTooLarge
        When the selection exceeds the limit in force (:mod:`crossbeat.analysis.budget`).
    """
    arrays = analysis_arrays(store, viewer, request, clock=clock)
    # A time the grant coarsened ("that day") is a range to the end of its period.
    _start, end = arrays.time_range()
    arrays = replace(arrays, occurred_to=end, period_end=None)
    if len(arrays) == 0:
        raise AnalysisError(_refusal(arrays, viewer.agency_id))
    check_size(len(arrays))
    check_time()
    owners = arrays.owner_counts()
    skipped = Skipped()
    if once:
        left, right = linked_positions(store, arrays.id)
        if left.size:
            group = linked_groups(len(arrays), left, right)
            keep = group == np.arange(len(arrays))
            dropped = int((~keep).sum())
            cols = {
                name: getattr(arrays, name)[keep]
                for name in (
                    "id",
                    "owner",
                    "lon",
                    "lat",
                    "occurred_from",
                    "occurred_to",
                    "nibrs_code",
                    "crime_against",
                    "location_type",
                )
            }
            arrays = replace(arrays, **cols)
            skipped = Skipped({"linked duplicate (counted once)": dropped})
    return Selection(arrays, skipped, owners)
