"""Remove an agency registered by mistake, with everything it holds, as one audited step.

An agency id typed wrong at ``crossbeat agency add`` (``cityp`` for ``citypd``) is an
agency of its own: its incidents, their versions, offences, jurisdiction tags and
personal data, its quarantine, ingest batches, jurisdictions, keys, users, tokens and
sharing agreements. :func:`remove_agency` deletes all of it in one transaction,
together with an audit event that counts what was deleted, table by table.

What the agency holds is found from the database's own foreign keys (inspected, so a
table added by a later migration is included without a change here): every row that
references the agency, and every row that references such a row, recursively. A
nullable reference without ``ON DELETE CASCADE`` from a row that is not itself removed
(a token of another agency created by one of this agency's users) is set to NULL
rather than followed. Agreements granted *to* the agency (the grantee has no foreign
key) are removed too. The audit log is append-only and is never touched: the events
about the agency stay, and so does the event of its removal.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    column,
    delete,
    inspect,
    or_,
    select,
    table,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from crossbeat.agencies import AgencyError, closest_ids, get_agency, list_agencies
from crossbeat.audit.changes import Principal, record_change
from crossbeat.audit.events import Action
from crossbeat.store import Store

#: Tables never touched: the audit log is append-only, the migration table is not data.
_KEEP = frozenset(
    {"audit_events", "audit_event_owners", "audit_head", "audit_tree_heads", "alembic_version"}
)


@dataclass(frozen=True)
class RemovalSummary:
    """What :func:`remove_agency` deleted: rows per table, and references set to NULL."""

    agency_id: str
    name: str
    deleted: dict[str, int] = field(default_factory=dict)
    detached: dict[str, int] = field(default_factory=dict)

    @property
    def incidents_deleted(self) -> int:
        """Incidents deleted."""
        return self.deleted.get("incidents", 0)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "agency": self.agency_id,
            "name": self.name,
            "deleted": dict(self.deleted),
            "detached": dict(self.detached),
        }


@dataclass
class _Edge:
    child: str
    columns: list[str]
    parent: str
    parent_columns: list[str]
    cascade: bool


def remove_agency(
    store: Store,
    agency_id: str,
    *,
    confirm: str,
    by: Principal | None = None,
) -> RemovalSummary:
    """Delete an agency and everything it holds, with an audit event counting it all.

    Parameters
    ----------
    store
        The open store.
    agency_id
        The agency to remove.
    confirm
        Must equal ``agency_id``: the caller's explicit confirmation (the CLI asks to
        type the id, or takes ``--yes``).
    by
        Who removes it: a signed-in user, or None for the local operator (the audit
        event's actor).

    Returns
    -------
    RemovalSummary
        Rows deleted per table (``agencies`` counts the agency itself).

    Raises
    ------
    AgencyError
        When the confirmation does not match or the agency is not registered; nothing
        is changed.
    """
    if confirm != agency_id:
        raise AgencyError(
            f"removing agency {agency_id!r} deletes everything it holds: confirm by giving "
            f"its id ({agency_id!r}), not {confirm!r}"
        )
    agency = get_agency(store, agency_id)
    if agency is None:
        known = closest_ids(agency_id, [a.id for a in list_agencies(store)])
        raise AgencyError(
            f"unknown agency {agency_id!r}: nothing removed"
            + (f" (registered, closest first: {', '.join(known)})" if known else "")
        )
    with store.begin() as conn:
        deleted, detached = _remove(conn, agency_id)
        summary = RemovalSummary(agency_id, agency.name, deleted, detached)
        record_change(
            store,
            conn,
            Action.CHANGE,
            by,
            resource_type="agency",
            owners=[agency_id],
            record_count=summary.incidents_deleted,
            details={"operation": "agency_remove", **summary.as_dict()},
        )
    return summary


def _remove(conn: Connection, agency_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Delete the agency's rows in every table, children first; return the counts."""
    insp = inspect(conn)
    with warnings.catch_warnings():  # PostGIS column types are unknown to the inspector
        warnings.simplefilter("ignore")
        names = [n for n in insp.get_table_names() if n not in _KEEP]
        nullable = {
            n: {c["name"]: bool(c.get("nullable", True)) for c in insp.get_columns(n)}
            for n in names
        }
    edges: list[_Edge] = []
    for name in names:
        for fk in insp.get_foreign_keys(name):
            if fk["referred_table"] not in names:
                continue
            ondelete = (fk.get("options") or {}).get("ondelete") or ""
            edges.append(
                _Edge(
                    name,
                    fk["constrained_columns"],
                    fk["referred_table"],
                    fk["referred_columns"],
                    ondelete.upper() == "CASCADE",
                )
            )
    tables = {n: table(n, *(column(c) for c in nullable[n])) for n in names}
    # Which rows each table loses: a list of conditions, OR-ed.
    removed: dict[str, list[ColumnElement[bool]]] = {
        "agencies": [tables["agencies"].c.id == agency_id]
    }
    if "sharing_agreements" in tables:  # the grantee is not a foreign key
        t = tables["sharing_agreements"]
        removed["sharing_agreements"] = [
            and_(t.c.grantee_kind == "agency", t.c.grantee_id == agency_id)
        ]
    if "live_events" in tables:  # the live stream's log names the owner without a key
        t = tables["live_events"]
        removed["live_events"] = [t.c.agency_id == agency_id]
    detach: list[tuple[_Edge, ColumnElement[bool]]] = []
    order = _parents_first(names, edges)
    for name in order:
        for edge in (e for e in edges if e.child == name and e.parent in removed):
            if edge.parent == name:
                continue  # a self-reference adds no rows beyond those already chosen
            child, parent = tables[edge.child], tables[edge.parent]
            link = _references(child, edge, parent, or_(*removed[edge.parent]))
            direct = edge.parent == "agencies"
            if direct or edge.cascade or not all(nullable[name][c] for c in edge.columns):
                removed.setdefault(name, []).append(link)
            else:
                detach.append((edge, link))
    detached: dict[str, int] = {}
    for edge, link in detach:
        child = tables[edge.child]
        keep = ~or_(*removed[edge.child]) if edge.child in removed else None
        where = link if keep is None else and_(link, keep)
        n = conn.execute(update(child).where(where).values(dict.fromkeys(edge.columns))).rowcount
        if n:
            detached[f"{edge.child}.{','.join(edge.columns)}"] = n
    deleted: dict[str, int] = {}
    for name in reversed(order):
        if name in removed:
            n = conn.execute(delete(tables[name]).where(or_(*removed[name]))).rowcount
            if n:
                deleted[name] = n
    return deleted, detached


def _references(child: Any, edge: _Edge, parent: Any, chosen: ColumnElement[bool]) -> Any:
    """Return the condition "this child row references one of the chosen parent rows"."""
    if len(edge.columns) == 1:
        picked = select(parent.c[edge.parent_columns[0]]).where(chosen)
        return child.c[edge.columns[0]].in_(picked)
    picked = select(*(parent.c[c] for c in edge.parent_columns)).where(chosen)
    return tuple_(*(child.c[c] for c in edge.columns)).in_(picked)


def _parents_first(names: list[str], edges: list[_Edge]) -> list[str]:
    """Order tables so that every table comes after the tables it references."""
    order: list[str] = []
    placed: set[str] = set()
    pending = sorted(names)
    while pending:
        ready = [
            n
            for n in pending
            if all(e.parent in placed or e.parent == n for e in edges if e.child == n)
        ]
        if not ready:  # a cycle: place the rest as they are
            ready = pending
        order += ready
        placed |= set(ready)
        pending = [n for n in pending if n not in placed]
    return order
