"""The sharing vocabulary as data: grantees, scopes and agreements (issue #3).

Plain frozen data classes with no I/O; :mod:`crossbeat.sharing.agreements` stores
and validates them, :mod:`crossbeat.sharing.policy` decides with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from crossbeat.model import Sensitivity
from crossbeat.sharing.public import PublicPolicy, Row
from crossbeat.sharing.scope import (
    PERSONAL_FIELDS,
    Precision,
    Purpose,
    TimeResolution,
    format_delay,
    parse_precision,
)


class GranteeKind(StrEnum):
    """Who an agreement shares with."""

    AGENCY = "agency"
    GROUP = "group"
    PUBLIC = "public"


@dataclass(frozen=True)
class Grantee:
    """The receiving side of an agreement: ``rivertonpd``, ``group:taskforce`` or ``public``."""

    kind: GranteeKind
    id: str

    @classmethod
    def parse(cls, text: str | Grantee) -> Grantee:
        """Read ``public``, ``group:ID``, ``agency:ID`` or a bare agency id."""
        if isinstance(text, Grantee):
            return text
        value = str(text).strip()
        if value.lower() == "public":
            return cls(GranteeKind.PUBLIC, "public")
        kind, sep, rest = value.partition(":")
        if sep and kind.lower() in ("group", "agency"):
            return cls(GranteeKind(kind.lower()), rest.strip())
        return cls(GranteeKind.AGENCY, value)

    def __str__(self) -> str:
        """Return the grantee as written on the command line."""
        if self.kind is GranteeKind.AGENCY:
            return self.id
        return "public" if self.kind is GranteeKind.PUBLIC else f"group:{self.id}"


@dataclass(frozen=True)
class Scope:
    """What an agreement shares, and how precisely."""

    offences: frozenset[str] | None
    fields: frozenset[str]
    precision: Precision
    time_resolution: TimeResolution
    delay: timedelta
    purposes: frozenset[Purpose]
    include_sensitive: frozenset[Sensitivity] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """Return the scope as JSON-ready data."""
        return {
            "offences": None if self.offences is None else sorted(self.offences),
            "fields": sorted(self.fields),
            "precision": self.precision.name,
            "time_resolution": self.time_resolution.value,
            "delay": format_delay(self.delay),
            "purposes": sorted(p.value for p in self.purposes),
            "include_sensitive": sorted(s.value for s in self.include_sensitive),
        }

    def as_public_policy(self) -> PublicPolicy:
        """Return the knobs of this scope that the public release policy also has."""
        return PublicPolicy(
            precision=self.precision,
            time_resolution=self.time_resolution,
            delay=self.delay,
            threshold=1,
            fields=self.fields,
        )


@dataclass(frozen=True)
class Approval:
    """An admin of the owner agency who approved an agreement (a user, never text)."""

    user_id: str
    username: str
    agency_id: str
    approved_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """Return the approval as JSON-ready data."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "agency_id": self.agency_id,
            "approved_at": self.approved_at.isoformat(),
        }


@dataclass(frozen=True)
class Agreement:
    """A stored sharing agreement (never deleted; revoking stamps ``revoked_at``).

    ``reference`` is the free-text reference of the decision (MoU, minute);
    ``approvals`` are the owner's admins who approved it (users, not text). The
    agreement is in force only with :attr:`required_approvals` of them.
    """

    id: str
    owner: str
    grantee: Grantee
    scope: Scope
    valid_from: datetime
    valid_to: datetime | None
    reference: str
    purpose_note: str = ""
    created_at: datetime | None = None
    created_by: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    version: int = 1
    approvals: tuple[Approval, ...] = ()

    @property
    def required_approvals(self) -> int:
        """Distinct owner admins needed: two when personal data fields are shared."""
        return 2 if self.scope.fields & set(PERSONAL_FIELDS) else 1

    def status(self, now: datetime) -> str:
        """Return ``active``, ``awaiting_approval``, ``pending`` (not yet valid), ``expired``
        or ``revoked``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if len({a.user_id for a in self.approvals}) < self.required_approvals:
            return "awaiting_approval"
        if self.valid_from > now:
            return "pending"
        if self.valid_to is not None and self.valid_to <= now:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """Return the agreement as JSON-ready data (times as ISO strings)."""
        return {
            "id": self.id,
            "owner": self.owner,
            "grantee": str(self.grantee),
            "grantee_kind": self.grantee.kind.value,
            **self.scope.to_dict(),
            "purpose_note": self.purpose_note,
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
            "reference": self.reference,
            "approved_by": [a.username for a in self.approvals],
            "approvals": [a.to_dict() for a in self.approvals],
            "required_approvals": self.required_approvals,
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
            "version": self.version,
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


# -- agreements ------------------------------------------------------------------------------
def agreement_from_row(row: Row, approvals: tuple[Approval, ...] = ()) -> Agreement:
    """Rebuild an :class:`Agreement` from its stored row and its approval rows."""
    scope = Scope(
        offences=None if row["offences"] is None else frozenset(row["offences"]),
        fields=frozenset(row["fields"]),
        precision=parse_precision(row["precision"]),
        time_resolution=TimeResolution(row["time_resolution"]),
        delay=timedelta(seconds=row["delay_seconds"]),
        purposes=frozenset(Purpose(p) for p in row["purposes"]),
        include_sensitive=frozenset(Sensitivity(s) for s in row["include_sensitive"]),
    )
    return Agreement(
        id=row["id"],
        owner=row["owner_id"],
        grantee=Grantee(GranteeKind(row["grantee_kind"]), row["grantee_id"]),
        scope=scope,
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        reference=row["approved_by"],
        purpose_note=row["purpose_note"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
        revoke_reason=row["revoke_reason"],
        version=row["version"],
        approvals=approvals,
    )


def approval_from_row(row: Row) -> Approval:
    """Rebuild an :class:`Approval` from its ``sharing_agreement_approvals`` row."""
    return Approval(row["user_id"], row["username"], row["agency_id"], row["approved_at"])


def agreement_row(a: Agreement) -> dict[str, Any]:
    """Return the ``sharing_agreements`` row that stores a new agreement."""
    s = a.scope.to_dict()
    return {
        "id": a.id,
        "owner_id": a.owner,
        "grantee_kind": a.grantee.kind.value,
        "grantee_id": a.grantee.id,
        "offences": s["offences"],
        "fields": s["fields"],
        "precision": s["precision"],
        "time_resolution": s["time_resolution"],
        "delay_seconds": int(a.scope.delay.total_seconds()),
        "purposes": s["purposes"],
        "include_sensitive": s["include_sensitive"],
        "purpose_note": a.purpose_note,
        "valid_from": a.valid_from,
        "valid_to": a.valid_to,
        "approved_by": a.reference,
        "created_at": a.created_at,
        "created_by": a.created_by,
        "revoked_at": None,
        "revoked_by": None,
        "revoke_reason": None,
        "version": a.version,
    }
