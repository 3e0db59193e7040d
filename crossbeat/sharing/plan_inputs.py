"""The stored inputs of every read plan, kept per data generation (issue #8).

Every governed read plans from what is stored *now*
(:func:`crossbeat.sharing.reads.prepare`): the agreements with their approvals, the
group memberships, the agencies' time zones and the tightened public policies. Loading
them is five queries per read, a fixed cost paid again by every viewport page, tile
and count. They change only through audited changes — ``agreement_change`` events for
agreements, approvals, groups and public policies, ``change`` events for agencies —
and every such event bumps the data generation (:mod:`crossbeat.store.generation`) in
the transaction that makes the change. So :func:`plan_inputs` keeps them per database
(engine) and generation: a read that sees a generation already loaded takes the kept
inputs (one small query), and the first read after any change loads them again.

Why a kept value is never older than what the read would load itself:

* the generation is read *before* the inputs, in the read's own transaction, so the
  inputs kept under a generation are at least as new as that generation;
* a transaction that has written anything (and may have bumped the generation without
  committing it) neither takes nor keeps inputs: it loads its own, so a change that is
  rolled back is never kept under a generation another change reaches later.

The plan itself is still computed by every read (:func:`crossbeat.sharing.policy.plan`
is pure and cheap; it depends on the time, so an agreement that expires or starts is
applied on time). Only the viewer's agency's memberships reach its plan.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, text

from crossbeat.sharing.agreements import load_agreements
from crossbeat.sharing.model import Agreement
from crossbeat.sharing.overrides import public_policies
from crossbeat.sharing.public import PublicPolicy
from crossbeat.sharing.stamp import ReadStamp
from crossbeat.sharing.tables import sharing_group_members
from crossbeat.store import generation
from crossbeat.store.schema import agencies

#: Generations kept per database (engine); only the newest is normally asked for.
KEPT = 4


@dataclass(frozen=True)
class PlanInputs:
    """What a read plan needs from the store besides the request."""

    #: Every registered agency and its IANA time zone.
    zones: Mapping[str, str]
    #: The effective public policy of every agency that tightened it.
    policies: Mapping[str, PublicPolicy]
    #: Every stored agreement with its approvals, by id.
    agreements: tuple[Agreement, ...]
    #: The groups each agency is a member of.
    memberships: Mapping[str, frozenset[str]]

    def groups_of(self, agency_id: str | None) -> frozenset[str]:
        """Return the groups an agency belongs to (none for None)."""
        if agency_id is None:
            return frozenset()
        return self.memberships.get(agency_id, frozenset())


#: Per engine (so two in-memory databases never share), the inputs by generation.
_KEPT: weakref.WeakKeyDictionary[Engine, OrderedDict[int, PlanInputs]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def load_inputs(conn: Connection) -> PlanInputs:
    """Load the plan inputs from the store, in the caller's transaction (never kept)."""
    zones = {r.id: r.timezone for r in conn.execute(select(agencies.c.id, agencies.c.timezone))}
    m = sharing_group_members.c
    memberships: dict[str, set[str]] = {}
    for agency_id, group_id in conn.execute(select(m.agency_id, m.group_id)):
        memberships.setdefault(agency_id, set()).add(group_id)
    return PlanInputs(
        zones,
        public_policies(conn),
        tuple(load_agreements(conn)),
        {a: frozenset(g) for a, g in memberships.items()},
    )


def plan_inputs(conn: Connection, stamp: ReadStamp | None = None) -> PlanInputs:
    """Return the plan inputs as stored now, kept per database and data generation.

    Parameters
    ----------
    conn
        The read's connection (a transaction that has written loads its own inputs).
    stamp
        The read's :class:`~crossbeat.sharing.stamp.ReadStamp`, read in this
        transaction just before (default: the generation is read here).

    Returns
    -------
    PlanInputs
        The inputs, shared between reads: never modify them.
    """
    gen, wrote = (stamp.generation, stamp.wrote) if stamp is not None else _generation(conn)
    if wrote:
        return load_inputs(conn)
    engine = conn.engine
    with _LOCK:
        kept = _KEPT.get(engine)
        found = kept.get(gen) if kept is not None else None
        if kept is not None and found is not None:
            kept.move_to_end(gen)
            return found
    found = load_inputs(conn)
    with _LOCK:
        kept = _KEPT.setdefault(engine, OrderedDict())
        kept[gen] = found
        while len(kept) > KEPT:
            kept.popitem(last=False)
    return found


def _generation(conn: Connection) -> tuple[int, bool]:
    """Return the data generation and whether this transaction has written anything."""
    if conn.dialect.name == "postgresql":
        gen, wrote = conn.execute(
            text(
                "SELECT (SELECT generation FROM data_generation WHERE id = 1), "
                "txid_current_if_assigned() IS NOT NULL"
            )
        ).one()
        return int(gen or 0), bool(wrote)
    raw = conn.connection.driver_connection
    # pysqlite opens a transaction only before the first write (SQLAlchemy's default).
    wrote = bool(getattr(raw, "in_transaction", True))
    return generation.current(conn), wrote


def forget() -> None:
    """Forget every kept input (never needed for correctness: generations move on)."""
    with _LOCK:
        _KEPT.clear()
