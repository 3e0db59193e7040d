"""Cross-agency duplicate links: found by splink, stored, audited, never deleted.

:func:`find` scores the viewer's incidents with
:func:`crossbeat.analysis.duplicates.find_duplicates`; :func:`link` stores the pairs at
or above the threshold in ``duplicate_links`` with their probability and reasons, and
appends one ``change`` audit event (``duplicate_link``) in the same transaction. The
incidents stay as they are; :func:`crossbeat.analytics.selection.select` then counts each
linked group once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import select as sql_select

from crossbeat.analysis.duplicates import DuplicatePairs, find_duplicates
from crossbeat.analytics.selection import select
from crossbeat.audit import Action, AuditEvent, append
from crossbeat.sharing.arrays import AnalysisArrays, stored_ids
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.store import Store
from crossbeat.store.schema import duplicate_links


@dataclass(frozen=True)
class Found:
    """Scored duplicate pairs, with the ids and owners the viewer may see."""

    pairs: DuplicatePairs
    arrays: AnalysisArrays

    def rows(self) -> list[dict[str, Any]]:
        """Return one JSON-ready row per pair."""
        a, p = self.arrays, self.pairs
        return [
            {
                "a": {"id": str(a.id[i]), "agency_id": str(a.owner[i])},
                "b": {"id": str(a.id[j]), "agency_id": str(a.owner[j])},
                "probability": round(float(p.probability[k]), 6),
                "minutes_apart": round(float(p.minutes[k]), 1),
                "metres_apart": round(float(p.metres[k]), 1),
                "same_offence": bool(p.same_offence[k]),
                "reason": p.reasons[k],
            }
            for k, (i, j) in enumerate(zip(p.left, p.right, strict=True))
        ]


@dataclass(frozen=True)
class LinkSummary:
    """What :func:`link` stored."""

    found: int
    linked: int
    already: int


def find(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    threshold: float = 0.9,
    seed: int = 0,
) -> Found:
    """Score the viewer's incidents for cross-agency duplicates (the read is audited)."""
    sel = select(store, viewer, request, once=False)
    a = sel.arrays
    pairs = find_duplicates(
        a.owner,
        a.lon,
        a.lat,
        a.occurred_from,
        a.occurred_to,
        a.nibrs_code,
        a.crime_against,
        threshold=threshold,
        seed=seed,
    )
    return Found(pairs, a)


def link(
    store: Store,
    viewer: Viewer,
    request: ReadRequest | None = None,
    *,
    threshold: float = 0.9,
    seed: int = 0,
) -> LinkSummary:
    """Find duplicates in the viewer's incidents and store them as links (audited).

    The ``change`` event names every owner agency searched, also when nothing was
    linked (a selection of one agency has no cross-agency pair: nothing to link).
    """
    sel = select(store, viewer, request, once=False)
    a = sel.arrays
    owners = tuple(sorted(sel.owners))
    pairs = None
    if len(owners) > 1:
        pairs = find_duplicates(
            a.owner,
            a.lon,
            a.lat,
            a.occurred_from,
            a.occurred_to,
            a.nibrs_code,
            a.crime_against,
            threshold=threshold,
            seed=seed,
        )
    now = store.clock.now()
    found = len(pairs) if pairs is not None else 0
    linked = already = 0
    params = {"threshold": threshold, "seed": seed} if pairs is None else asdict(pairs.params)
    with store.begin() as conn:
        if pairs is not None:
            linked, already = _store(conn, pairs, a, params, viewer.id, now)
        append(
            store,
            AuditEvent(
                action=Action.CHANGE,
                actor=viewer.id,
                actor_agency=viewer.agency_id,
                resource_type="duplicate_link",
                owner_agencies=owners,
                record_count=linked,
                details={
                    "found": found,
                    "linked": linked,
                    "already": already,
                    "params": {k: str(v) for k, v in params.items()},
                },
            ),
            conn=conn,
        )
    return LinkSummary(found=found, linked=linked, already=already)


def _store(
    conn: Any, p: DuplicatePairs, a: AnalysisArrays, params: dict[str, Any], by: str, now: Any
) -> tuple[int, int]:
    """Insert the pairs not linked yet; return (linked, already linked)."""
    shown = sorted({str(a.id[i]) for i in np.r_[p.left, p.right]})
    ids = stored_ids(conn, shown)
    t = duplicate_links.c
    have = {(r.id_a, r.id_b) for r in conn.execute(sql_select(t.id_a, t.id_b))}
    linked = already = 0
    for k, (i, j) in enumerate(zip(p.left, p.right, strict=True)):
        x, y = sorted((ids[str(a.id[i])], ids[str(a.id[j])]))
        if (x[0], y[0]) in have:
            already += 1
            continue
        have.add((x[0], y[0]))
        conn.execute(
            duplicate_links.insert().values(
                id_a=x[0],
                id_b=y[0],
                public_a=x[1],
                public_b=y[1],
                probability=float(p.probability[k]),
                reasons=[p.reasons[k]],
                params=params,
                linked_by=by,
                linked_at=now,
            )
        )
        linked += 1
    return linked, already
