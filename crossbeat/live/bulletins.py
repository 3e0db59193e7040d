"""Interagency bulletins: be-on-the-lookout, series warning, officer-safety notice (issue #10).

A bulletin is sent by a user of one agency to partner agencies (or groups of them,
expanded to their members when it is sent), anchored to a point, an area or incidents.
Each referenced incident is checked through the sender's sharing policy (a sender can
only point at what it may see), and each recipient sees the references through its own
(:func:`get_bulletin` reads them with :func:`crossbeat.sharing.reads.read_incidents`,
audited). Recipients acknowledge; until they do the bulletin stays flagged
``unacknowledged`` for them. Sending and acknowledging are audited (``change``) and
appear on the live stream (``bulletin.created``, ``bulletin.acknowledged``) of the
sender and the recipients only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry import shape
from sqlalchemy import ColumnElement, Connection, insert, or_, select, update

from crossbeat.audit.changes import Principal, record_change
from crossbeat.audit.events import Action
from crossbeat.live.tables import bulletin_recipients, bulletins
from crossbeat.sharing.groups import get_group
from crossbeat.sharing.live import Delivery
from crossbeat.sharing.references import read_references, resolve_references
from crossbeat.sharing.request import Viewer, ViewerKind
from crossbeat.store import Store
from crossbeat.store.events import LiveEvent, NewEvent, append_events
from crossbeat.store.schema import agencies

#: Kinds of bulletin and what they are.
KINDS: dict[str, str] = {
    "bolo": "be on the lookout (a person, vehicle or property)",
    "series": "series warning (linked incidents)",
    "officer_safety": "officer-safety notice",
}
#: How many incidents one bulletin may reference.
MAX_INCIDENTS = 200


class BulletinError(ValueError):
    """The bulletin is not valid; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class UnknownBulletin(LookupError):
    """No bulletin with this id is addressed to or sent by the agency."""


@dataclass(frozen=True)
class Recipient:
    """An addressed agency and its acknowledgement."""

    agency_id: str
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None


@dataclass(frozen=True)
class Bulletin:
    """A bulletin as an agency sees it."""

    id: str
    agency_id: str
    kind: str
    title: str
    body: str
    anchor: dict[str, Any]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    recipients: tuple[Recipient, ...]
    incident_count: int
    #: True for a recipient agency that has not acknowledged it.
    unacknowledged: bool = False
    #: The referenced incidents as the reader may see them (only :func:`get_bulletin`).
    records: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "id": self.id,
            "agency_id": self.agency_id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "anchor": self.anchor,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "recipients": [
                {
                    "agency_id": r.agency_id,
                    "acknowledged_at": r.acknowledged_at.isoformat() if r.acknowledged_at else None,
                    "acknowledged_by": r.acknowledged_by,
                }
                for r in self.recipients
            ],
            "incident_count": self.incident_count,
            "unacknowledged": self.unacknowledged,
            "incidents": self.records,
        }


def _anchor(anchor: Mapping[str, Any], refs: Sequence[str], problems: list[str]) -> dict[str, Any]:
    kind = anchor.get("type")
    if kind == "point":
        lat, lon = anchor.get("lat"), anchor.get("lon")
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
        if not ok or not (-90 <= lat <= 90 and -180 <= lon <= 180):  # type: ignore[operator]
            problems.append("anchor: a point needs lat (-90..90) and lon (-180..180)")
            return {}
        return {"type": "point", "lat": float(lat), "lon": float(lon)}  # type: ignore[arg-type]
    if kind == "area":
        try:
            geom = shape(anchor.get("geometry") or {})
        except Exception:
            geom = None
        if geom is None or geom.geom_type not in ("Polygon", "MultiPolygon") or not geom.is_valid:
            problems.append(
                "anchor: an area needs a valid GeoJSON Polygon or MultiPolygon geometry"
            )
            return {}
        return {"type": "area", "geometry": dict(anchor["geometry"])}
    if kind == "incidents":
        if not refs:
            problems.append("anchor: an incidents anchor needs incident_ids")
        return {"type": "incidents"}
    problems.append("anchor: type must be point, area or incidents")
    return {}


def _recipients(
    conn: Connection, names: Iterable[str], sender: str, problems: list[str]
) -> list[str]:
    known = set(conn.execute(select(agencies.c.id)).scalars())
    out: set[str] = set()
    for name in names:
        if name.startswith("group:"):
            group = get_group(conn, name.removeprefix("group:"))
            if group is None:
                problems.append(f"recipients: no group {name.removeprefix('group:')!r}")
                continue
            out |= set(group.members)
        elif name in known:
            out.add(name)
        else:
            problems.append(f"recipients: no agency {name!r}")
    out.discard(sender)
    if not out and not problems:
        problems.append("recipients: name at least one partner agency or group:NAME")
    return sorted(out)


def create_bulletin(
    store: Store,
    viewer: Viewer,
    by: Principal,
    *,
    kind: str,
    title: str,
    body: str,
    anchor: Mapping[str, Any],
    recipients: Sequence[str],
    incident_ids: Sequence[str] = (),
    expires_at: datetime | None = None,
) -> Bulletin:
    """Send a bulletin from the viewer's agency; return it.

    Parameters
    ----------
    viewer
        The sender as the sharing policy reads for (its incident references are
        checked as it may see them).
    by
        The sending user (recorded in the audit log).
    kind
        One of :data:`KINDS`.
    anchor
        ``{"type": "point", "lat":, "lon":}``, ``{"type": "area", "geometry": GeoJSON}``
        or ``{"type": "incidents"}``.
    recipients
        Agency ids and ``group:NAME`` (expanded to the group's members now).
    incident_ids
        Incidents as the sender sees them (its own ids, or public ids).

    Raises
    ------
    BulletinError
        Every problem: unknown kind, empty title, bad anchor, unknown recipients, an
        incident the sender may not see.
    """
    if viewer.kind is ViewerKind.PUBLIC or viewer.agency_id is None:
        raise BulletinError(["bulletins are sent by an agency's users"])
    sender = viewer.agency_id
    problems: list[str] = []
    if kind not in KINDS:
        problems.append(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not title.strip():
        problems.append("title: required")
    refs = list(dict.fromkeys(incident_ids))
    if len(refs) > MAX_INCIDENTS:
        problems.append(f"incident_ids: at most {MAX_INCIDENTS}")
    shaped = _anchor(anchor, refs, problems)
    stored: list[str] = []
    if refs and len(refs) <= MAX_INCIDENTS:
        found = resolve_references(store, viewer, refs)
        problems += [
            f"incident_ids: no incident {i!r} that you may see" for i in refs if i not in found
        ]
        stored = sorted(set(found.values()))
    now = store.now()
    bulletin_id = str(uuid.uuid4())
    with store.begin() as conn:
        to = _recipients(conn, recipients, sender, problems)
        if problems:
            raise BulletinError(problems)
        conn.execute(
            insert(bulletins).values(
                id=bulletin_id, agency_id=sender, kind=kind, title=title.strip(), body=body,
                anchor=shaped, incident_ids=sorted(stored), created_by=by.user_id,
                created_at=now, expires_at=expires_at,
            )
        )  # fmt: skip
        conn.execute(
            insert(bulletin_recipients), [{"bulletin_id": bulletin_id, "agency_id": a} for a in to]
        )
        append_events(conn, [NewEvent("bulletin.created", sender, bulletin_id)], now)
        record_change(
            store, conn, Action.CHANGE, by, resource_type="bulletin", owners=[sender, *to],
            record_ids=sorted(stored),
            details={"operation": "bulletin.create", "bulletin": bulletin_id, "kind": kind,
                     "recipients": to, "incidents": len(stored)},
        )  # fmt: skip
    return _load(store, bulletin_id, sender)


def _load(store: Store, bulletin_id: str, agency_id: str) -> Bulletin:
    with store.connect() as conn:
        row = conn.execute(select(bulletins).where(bulletins.c.id == bulletin_id)).first()
        recips = conn.execute(
            select(bulletin_recipients)
            .where(bulletin_recipients.c.bulletin_id == bulletin_id)
            .order_by(bulletin_recipients.c.agency_id)
        ).all()
    if row is None:
        raise UnknownBulletin(f"no bulletin {bulletin_id!r} for agency {agency_id!r}")
    to = tuple(Recipient(r.agency_id, r.acknowledged_at, r.acknowledged_by) for r in recips)
    mine = next((r for r in to if r.agency_id == agency_id), None)
    if row.agency_id != agency_id and mine is None:
        raise UnknownBulletin(f"no bulletin {bulletin_id!r} for agency {agency_id!r}")
    return Bulletin(
        row.id, row.agency_id, row.kind, row.title, row.body, dict(row.anchor), row.created_by,
        row.created_at, row.expires_at, to, len(row.incident_ids),
        unacknowledged=mine is not None and mine.acknowledged_at is None,
    )  # fmt: skip


def list_bulletins(store: Store, agency_id: str, *, unacknowledged: bool = False) -> list[Bulletin]:
    """Return the bulletins an agency sent or received, newest first.

    ``unacknowledged`` keeps only those addressed to the agency that it has not
    acknowledged.
    """
    r = bulletin_recipients.c
    with store.connect() as conn:
        to_me = select(r.bulletin_id).where(r.agency_id == agency_id)
        if unacknowledged:
            to_me = to_me.where(r.acknowledged_at.is_(None))
            cond: ColumnElement[bool] = bulletins.c.id.in_(to_me)
        else:
            cond = or_(bulletins.c.agency_id == agency_id, bulletins.c.id.in_(to_me))
        ids = (
            conn.execute(select(bulletins.c.id).where(cond).order_by(bulletins.c.created_at.desc()))
            .scalars()
            .all()
        )
    return [_load(store, i, agency_id) for i in ids]


def get_bulletin(store: Store, viewer: Viewer, bulletin_id: str) -> Bulletin:
    """Return a bulletin with its incidents as the viewer may see them (an audited read).

    Raises
    ------
    UnknownBulletin
        Not sent by nor addressed to the viewer's agency.
    """
    if viewer.agency_id is None:
        raise UnknownBulletin(f"no bulletin {bulletin_id!r}")
    found = _load(store, bulletin_id, viewer.agency_id)
    with store.connect() as conn:
        stored = conn.execute(
            select(bulletins.c.incident_ids).where(bulletins.c.id == bulletin_id)
        ).scalar_one()
    records = read_references(store, viewer, stored)
    return Bulletin(**{**found.__dict__, "records": records})


def acknowledge(store: Store, by: Principal, bulletin_id: str) -> Bulletin:
    """Acknowledge a bulletin addressed to the user's agency (again: no change).

    Raises
    ------
    UnknownBulletin
        Not addressed to the user's agency.
    """
    r = bulletin_recipients.c
    now = store.now()
    with store.begin() as conn:
        row = conn.execute(
            select(bulletin_recipients, bulletins.c.agency_id.label("sender"))
            .join(bulletins, bulletins.c.id == r.bulletin_id)
            .where((r.bulletin_id == bulletin_id) & (r.agency_id == by.agency_id))
        ).first()
        if row is None:
            raise UnknownBulletin(f"no bulletin {bulletin_id!r} addressed to {by.agency_id!r}")
        if row.acknowledged_at is None:
            conn.execute(
                update(bulletin_recipients)
                .where((r.bulletin_id == bulletin_id) & (r.agency_id == by.agency_id))
                .values(acknowledged_at=now, acknowledged_by=by.user_id)
            )
            append_events(conn, [NewEvent("bulletin.acknowledged", by.agency_id, bulletin_id)], now)
            record_change(
                store, conn, Action.CHANGE, by, resource_type="bulletin",
                owners=[row.sender, by.agency_id],
                details={"operation": "bulletin.acknowledge", "bulletin": bulletin_id},
            )  # fmt: skip
    return _load(store, bulletin_id, by.agency_id)


def bulletin_deliveries(
    store: Store, agency_id: str | None, events: Sequence[LiveEvent]
) -> list[Delivery]:
    """Return the bulletin events of ``events`` that concern an agency, for its stream.

    ``bulletin.created`` goes to the sender and the recipients (the bulletin without
    its incidents: read them with :func:`get_bulletin`); ``bulletin.acknowledged`` to
    the sender and the acknowledging agency. The public gets none.
    """
    wanted = [e for e in events if e.kind.startswith("bulletin.")]
    if agency_id is None or not wanted:
        return []
    out = []
    for e in wanted:
        try:
            b = _load(store, e.subject_id, agency_id)
        except UnknownBulletin:
            continue
        if e.kind == "bulletin.created":
            data = {k: v for k, v in b.to_dict().items() if k != "incidents"}
        elif agency_id in (b.agency_id, e.agency_id):
            data = {"id": b.id, "agency_id": e.agency_id, "title": b.title}
        else:
            continue
        out.append(Delivery(e.id, e.kind, data))
    return out
