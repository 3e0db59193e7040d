"""An incident's history and its linked duplicates, as the viewer may see them (issue #12).

The analyst's detail panel shows, below the record, the versions it went through (each
change of the source record kept in ``incident_versions``) and the incidents of other
agencies linked to it as the same event (``duplicate_links``, stored by the duplicates
analysis). Both pass through the same plan as every read: a version is published by
the rule that publishes the current record to this viewer (its fields, precision and
time resolution; a version that rule would not show — a sensitive offence then, a
delay — is listed by number only), and a linked incident is listed only when the
viewer may see it, under the id the viewer knows it by. Every call is audited like a
detail view (``detail_view``, resource ``incident_history``), a refused one as denied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from crossbeat.audit import Action, AuditEvent, Outcome, append_many
from crossbeat.clock import Clock
from crossbeat.sharing.flags import current_rules
from crossbeat.sharing.pages import area_tags
from crossbeat.sharing.policy import Decision, ReadPlan, ReadRequest, Viewer
from crossbeat.sharing.public import AnchorIndex
from crossbeat.sharing.reads import (
    _audit,
    _owner_of,
    anchor_index,
    prepare,
    published,
)
from crossbeat.sharing.request import CallsFilter
from crossbeat.sharing.rls import restricted
from crossbeat.sharing.rules import Rule
from crossbeat.store import Store
from crossbeat.store.schema import duplicate_links, incident_versions, incidents

#: Columns of ``incidents`` stored as datetimes (a version's snapshot holds ISO text).
_TIMES = frozenset(c.name for c in incidents.columns if c.type.python_type is datetime)


@dataclass(frozen=True)
class Version:
    """One earlier version of a record: what the viewer may see of it, or nothing.

    ``record`` is None when the rule that shows the current record would not have shown
    this version; ``changed`` names the shown fields that differ in the next version
    (the current record after the last one); ``superseded_at`` is given to the owner's
    own readers only (when an ingest replaced it).
    """

    version: int
    record: dict[str, Any] | None
    changed: tuple[str, ...] = ()
    superseded_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "version": self.version,
            "record": self.record,
            "changed": list(self.changed),
            "superseded_at": self.superseded_at.isoformat() if self.superseded_at else None,
        }


@dataclass(frozen=True)
class History:
    """The current record (None: unknown or not visible), its versions and linked duplicates."""

    record: dict[str, Any] | None
    versions: tuple[Version, ...] = ()
    duplicates: tuple[dict[str, Any], ...] = ()
    decisions: tuple[Decision, ...] = field(default_factory=tuple)


def read_history(
    store: Store, viewer: Viewer, incident_id: str, *, clock: Clock | None = None
) -> History:
    """Return an incident's versions and linked duplicates as ``viewer`` may see them.

    Parameters
    ----------
    store
        The store.
    viewer
        Who reads (a signed-in user; the public sees no history).
    incident_id
        The id the viewer knows the incident by: its public id, or the owner's id for
        the owner's own readers.
    clock
        Clock for "now" (default: the store's clock).

    Returns
    -------
    History
        ``record`` is None (and nothing else is given) when the incident is unknown or
        not visible: the two are not told apart. Versions are oldest first; linked
        duplicates carry ``id``, ``agency_id``, ``probability`` and ``reasons``.
    """
    request = ReadRequest(ids=frozenset({incident_id}), calls=CallsFilter.INCLUDE)
    now = (clock or store.clock).now()
    with store.begin() as conn:
        p = prepare(conn, viewer, request, now)
        anchors = anchor_index(conn, store.url)
        with restricted(conn, p.owners):
            first = next(published(conn, p, anchors), None)
            versions: tuple[Version, ...] = ()
            if first is not None:
                rule, record, stored = first
                versions = _versions(conn, p, rule, record, stored, anchors)
        owner = _owner_of(conn, viewer, incident_id)
        if first is None:
            append_many(store, [_denied(p, viewer, incident_id, owner)], conn=conn)
            return History(None, decisions=tuple(d for d in p.decisions if d.owner == owner))
        linked = _duplicates(conn, viewer, stored["id"], now, anchors)
        shown = [record, *({"id": d["id"], "agency_id": d["agency_id"]} for d in linked)]
        _audit(
            store,
            conn,
            p,
            Action.DETAIL_VIEW,
            "incident_history",
            shown,
            extra={"versions": len(versions), "duplicates": len(linked)},
        )
    decisions = tuple(d for d in p.decisions if d.owner == owner)
    return History(record, versions, tuple(linked), decisions)


def _versions(
    conn: Connection,
    p: ReadPlan,
    rule: Rule,
    current: dict[str, Any],
    stored: Mapping[str, Any],
    anchors: AnchorIndex,
) -> tuple[Version, ...]:
    """Publish each stored version with the current record's rule, oldest first."""
    v = incident_versions.c
    rows = conn.execute(
        select(v.version, v.snapshot, v.superseded_at)
        .where(v.incident_id == stored["id"])
        .order_by(v.version)
    ).all()
    if not rows:
        return ()
    sensitivity = current_rules(conn)
    tags = area_tags(conn, [stored["id"]]).get(stored["id"])
    jurisdictions = list(current.get("jurisdictions") or [])
    shown: list[dict[str, Any] | None] = []
    for r in rows:
        snap = r.snapshot or {}
        row = {**stored, **{k: _typed(k, val) for k, val in (snap.get("incident") or {}).items()}}
        offs = list(snap.get("offences") or [])
        flags = sensitivity.flags(row, offs)
        # Only when the rule that shows the current record would have shown this version
        # too, and only its fields: a version is never shown through another grant.
        if p.choose(row, offs, flags) == rule:
            full = rule.transform(row, offs, jurisdictions, anchors, areas=tags)
            shown.append({k: full.get(k) for k in current})
        else:
            shown.append(None)
    own = rule.via == "own"
    out = []
    for k, r in enumerate(rows):
        later = shown[k + 1] if k + 1 < len(shown) else current
        mine = shown[k]
        changed = (
            tuple(sorted(f for f in current if mine.get(f) != later.get(f)))
            if mine is not None and later is not None
            else ()
        )
        out.append(Version(r.version, mine, changed, r.superseded_at if own else None))
    return tuple(out)


def _typed(column: str, value: Any) -> Any:
    """Return a snapshot value as the stored row holds it (datetimes from ISO text)."""
    if column in _TIMES and isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _duplicates(
    conn: Connection, viewer: Viewer, stored_id: str, now: datetime, anchors: AnchorIndex
) -> list[dict[str, Any]]:
    """Return the linked incidents the viewer may see, by the id the viewer knows them."""
    t = duplicate_links.c
    links = conn.execute(
        select(t.id_a, t.public_a, t.id_b, t.public_b, t.probability, t.reasons).where(
            or_(t.id_a == stored_id, t.id_b == stored_id)
        )
    ).all()
    others = {}
    for link in links:
        public = link.public_b if link.id_a == stored_id else link.public_a
        others[public] = link
    if not others:
        return []
    p = prepare(conn, viewer, ReadRequest(ids=frozenset(others), calls=CallsFilter.INCLUDE), now)
    out = []
    with restricted(conn, p.owners):
        for _rule, record, row in published(conn, p, anchors):
            link = others[row["public_id"]]
            out.append(
                {
                    "id": record["id"],
                    "agency_id": record["agency_id"],
                    "probability": round(float(link.probability), 4),
                    "reasons": link.reasons,
                }
            )
    return sorted(out, key=lambda d: -d["probability"])


def _denied(p: ReadPlan, viewer: Viewer, incident_id: str, owner: str | None) -> AuditEvent:
    return AuditEvent(
        action=Action.DENIED,
        outcome=Outcome.DENIED,
        actor=viewer.id,
        actor_agency=viewer.agency_id,
        resource_type="incident_history",
        owner_agencies=(owner,) if owner else (),
        record_ids=(incident_id,),
        details={"decisions": [d.to_dict() for d in p.decisions if d.owner == owner]},
    )
