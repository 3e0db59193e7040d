"""What a server process computes once, done before its first read (issue #12).

A fresh process pays, on its first governed read, for what every later read takes from
per-process caches: the sensitivity rules in force (crosswalks, lexicon, narrative
model: :func:`crossbeat.sharing.flags.current_rules`), the plan inputs of the current
data generation (:func:`crossbeat.sharing.plan_inputs.plan_inputs`), the anchor index
over the jurisdiction polygons (:func:`crossbeat.sharing.reads.anchor_index`) and the
anchor of every H3 cell a point tile shows snapped records in. On the analyst map of a
1 M store that was most of the difference between the first view of a fresh server and
the next (docs/benchmarks.md, "Web").

:func:`warm` does that work ahead, when a server worker starts
(:mod:`crossbeat.api.lifespan`). It reads no incident on behalf of anyone: the anchors
are those of the cells that hold live records at the resolutions the stored agreements
and public policies snap points to, read from the cell index (cell ids, never a
record). It returns nothing a viewer could see and writes nothing, so it is not audited.
What it computes is exactly what the first reads would have computed (the same caches,
filled by the same functions), so no answer changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import h3.api.basic_int as h3i
from sqlalchemy import Connection, select

from crossbeat.sharing.flags import current_rules
from crossbeat.sharing.plan_inputs import PlanInputs, plan_inputs
from crossbeat.sharing.public import PublicPolicy
from crossbeat.sharing.reads import anchor_index
from crossbeat.store import Store
from crossbeat.store.schema import incidents

#: Seconds a warm-up spends on anchors at most (about 10,000 cells a second on an idle
#: core): a very large store warms its first cells and leaves the rest to first use.
ANCHOR_SECONDS = 30.0
#: Cells whose anchors are computed between two looks at the clock.
ANCHOR_BATCH = 2000
#: The stored cell columns: anchors are warmed at these resolutions only (a precision
#: at another resolution computes its anchors on first use, as before).
STORED_CELLS = {7: "h3_7", 9: "h3_9", 11: "h3_11"}


@dataclass
class Warmed:
    """What :func:`warm` did: seconds per step, and the anchors computed per resolution."""

    seconds: dict[str, float] = field(default_factory=dict)
    anchors: dict[int, int] = field(default_factory=dict)
    #: Cells not reached in the time allowed (anchored on first use).
    anchors_left: int = 0

    def summary(self) -> str:
        """Return one line for the server's log."""
        steps = ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        cells = ", ".join(f"{n:,} at resolution {r}" for r, n in sorted(self.anchors.items()))
        left = f" ({self.anchors_left:,} cells left to first use)" if self.anchors_left else ""
        return f"{steps}; anchors: {cells or 'none'}{left}"


def warm(store: Store, *, anchor_seconds: float = ANCHOR_SECONDS) -> Warmed:
    """Fill the per-process caches every governed read uses, before the first read.

    Parameters
    ----------
    store
        The store the process serves.
    anchor_seconds
        Time allowed for the anchors; the cells left when it runs out are anchored on
        first use, as without a warm-up (``Warmed.anchors_left`` counts them).

    Returns
    -------
    Warmed
        The time of each step and the anchors computed.
    """
    out = Warmed()
    with store.connect() as conn:
        t = time.perf_counter()
        current_rules(conn)
        out.seconds["sensitivity rules"] = time.perf_counter() - t
        t = time.perf_counter()
        inputs = plan_inputs(conn)
        out.seconds["plan inputs"] = time.perf_counter() - t
        t = time.perf_counter()
        anchors = anchor_index(conn, store.url)
        out.seconds["anchor index"] = time.perf_counter() - t
        t = time.perf_counter()
        deadline = t + anchor_seconds
        for resolution in sorted(anchored_resolutions(inputs)):
            cells = _cells_held(conn, resolution)
            out.anchors[resolution] = 0
            for start in range(0, len(cells), ANCHOR_BATCH):
                if time.perf_counter() > deadline:
                    out.anchors_left += len(cells) - start
                    break
                out.anchors[resolution] += anchors.warm(cells[start : start + ANCHOR_BATCH])
        out.seconds["anchors"] = time.perf_counter() - t
    return out


def anchored_resolutions(inputs: PlanInputs) -> set[int]:
    """Return the stored H3 resolutions that agreements and public policies snap points to."""
    precisions = [a.scope.precision for a in inputs.agreements if a.revoked_at is None]
    precisions += [p.precision for p in inputs.policies.values()]
    precisions.append(PublicPolicy().precision)  # every owner that did not tighten it
    return {p.resolution for p in precisions if p.resolution in STORED_CELLS}


def _cells_held(conn: Connection, resolution: int) -> list[int]:
    """Return the distinct cells of live records at a stored resolution, as integers."""
    column = incidents.c[STORED_CELLS[resolution]]
    query = select(column).where(incidents.c.withdrawn_at.is_(None), column.isnot(None)).distinct()
    out = []
    for cell in conn.execute(query).scalars():
        try:
            out.append(h3i.str_to_int(cell))
        except (ValueError, TypeError):  # not a cell (a placeholder): nothing to anchor
            continue
    return out


__all__ = ["ANCHOR_SECONDS", "STORED_CELLS", "Warmed", "anchored_resolutions", "warm"]
