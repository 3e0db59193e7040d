"""Named groups of agencies (task forces) that an agreement can name as its grantee.

Membership is by agency: every officer, analyst or supervisor of a member agency reads
what agreements with the group allow. Membership is read at every request, so adding
or removing a member takes effect at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from crossbeat.auth.roles import Actor
from crossbeat.clock import Clock
from crossbeat.sharing._manage import AgreementError, actor_name, audit_change
from crossbeat.sharing.permissions import check_permission
from crossbeat.sharing.tables import sharing_group_members, sharing_groups
from crossbeat.store import Store
from crossbeat.store.schema import agencies

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Group:
    """A named group of agencies that agreements can name as grantee."""

    id: str
    name: str
    description: str | None = None
    members: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return the group as JSON-ready data."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "members": list(self.members),
        }


def get_group(conn: Connection, group_id: str) -> Group | None:
    """Return a group with its members, or None."""
    row = conn.execute(select(sharing_groups).where(sharing_groups.c.id == group_id)).first()
    if row is None:
        return None
    members = conn.execute(
        select(sharing_group_members.c.agency_id)
        .where(sharing_group_members.c.group_id == group_id)
        .order_by(sharing_group_members.c.agency_id)
    ).scalars()
    return Group(row.id, row.name, row.description, tuple(members))


def groups_of(conn: Connection, agency_id: str | None) -> frozenset[str]:
    """Return the ids of the groups an agency belongs to."""
    if agency_id is None:
        return frozenset()
    rows = conn.execute(
        select(sharing_group_members.c.group_id).where(
            sharing_group_members.c.agency_id == agency_id
        )
    ).scalars()
    return frozenset(rows)


def list_groups(store: Store) -> list[Group]:
    """Return every group with its members, by id."""
    with store.connect() as conn:
        ids = conn.execute(select(sharing_groups.c.id).order_by(sharing_groups.c.id)).scalars()
        return [g for g in (get_group(conn, i) for i in list(ids)) if g is not None]


def _unknown_agencies(conn: Connection, ids: Iterable[str]) -> list[str]:
    known = set(conn.execute(select(agencies.c.id)).scalars())
    return [
        f"unknown agency {a!r} (register it with crossbeat agency add)"
        for a in ids
        if a not in known
    ]


def create_group(
    store: Store,
    group_id: str,
    name: str,
    *,
    members: Iterable[str] = (),
    description: str | None = None,
    by: Actor | None = None,
    clock: Clock | None = None,
) -> Group:
    """Create a named group of agencies.

    Parameters
    ----------
    group_id
        1-64 lower-case letters, digits, ``-`` or ``_``.
    name
        A human-readable name such as "Riverton Auto Theft Task Force".
    members
        Agency ids.
    by
        A platform_admin, or None for the local operator.

    Raises
    ------
    AgreementError
        Listing every problem (bad or taken id, no name, unknown agencies).
    """
    check_permission(store, by, None, "create sharing groups")
    now = (clock or store.clock).now()
    members = sorted({m.strip() for m in members if m.strip()})
    with store.begin() as conn:
        problems = []
        if not _ID.match(group_id or ""):
            problems.append(
                f"group id {group_id!r}: use 1-64 lower-case letters, digits, '-' or '_'"
            )
        elif get_group(conn, group_id) is not None:
            problems.append(f"group {group_id!r} exists already (add members with group members)")
        if not (name or "").strip():
            problems.append("name: give the group a name")
        problems += _unknown_agencies(conn, members)
        if problems:
            raise AgreementError(problems)
        by_name = actor_name(by)
        conn.execute(
            insert(sharing_groups).values(
                id=group_id,
                name=name.strip(),
                description=description,
                created_at=now,
                created_by=by_name,
            )
        )
        if members:
            conn.execute(
                insert(sharing_group_members),
                [
                    {"group_id": group_id, "agency_id": m, "added_at": now, "added_by": by_name}
                    for m in members
                ],
            )
        group = Group(group_id, name.strip(), description, tuple(members))
        audit_change(store, conn, by, "group", members, {"change": "created", **group.to_dict()})
    return group


def set_members(
    store: Store,
    group_id: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    by: Actor | None = None,
    clock: Clock | None = None,
) -> Group:
    """Add and remove member agencies of a group (effective for the next read).

    Raises
    ------
    AgreementError
        For an unknown group, unknown agencies, removing a non-member or adding a member.
    """
    check_permission(store, by, None, "change sharing groups")
    now = (clock or store.clock).now()
    add = sorted({a.strip() for a in add if a.strip()})
    remove = sorted({r.strip() for r in remove if r.strip()})
    with store.begin() as conn:
        group = get_group(conn, group_id)
        if group is None:
            raise AgreementError([f"unknown group {group_id!r} (create it with group add)"])
        problems = _unknown_agencies(conn, [*add, *remove])
        problems += [f"{a} is already a member of {group_id}" for a in add if a in group.members]
        problems += [f"{r} is not a member of {group_id}" for r in remove if r not in group.members]
        problems += [f"{a} is both added and removed" for a in set(add) & set(remove)]
        if not add and not remove:
            problems.append("name agencies to add or remove")
        if problems:
            raise AgreementError(problems)
        if add:
            conn.execute(
                insert(sharing_group_members),
                [
                    {
                        "group_id": group_id,
                        "agency_id": a,
                        "added_at": now,
                        "added_by": actor_name(by),
                    }
                    for a in add
                ],
            )
        if remove:
            conn.execute(
                delete(sharing_group_members).where(
                    (sharing_group_members.c.group_id == group_id)
                    & sharing_group_members.c.agency_id.in_(remove)
                )
            )
        updated = get_group(conn, group_id)
        assert updated is not None
        details = {"change": "members", "group": group_id, "added": add, "removed": remove}
        audit_change(store, conn, by, "group", [*add, *remove], details)
    return updated
