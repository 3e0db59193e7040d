"""The audit event and its canonical encoding (issue #3).

An :class:`AuditEvent` says who did what to which agency's data, when, from where, for
what purpose and with what outcome. Its canonical encoding is deterministic JSON
(sorted keys, no whitespace, ASCII only, UTC times with microseconds, no floats), so
the entry hash recomputed from the stored fields is the same on SQLite and on
PostgreSQL. The entry hash is the RFC 6962 leaf hash of that encoding, and the encoding
includes ``seq`` and the previous entry's hash: the log is a hash chain and the leaves
of a Merkle tree at once.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from crossbeat.audit.merkle import leaf_hash

#: The ``prev_hash`` of the first event: 32 zero bytes, hex-encoded.
GENESIS_HASH = "0" * 64

#: Version of the canonical encoding; part of every hashed entry.
ENCODING_VERSION = 1


class Action(StrEnum):
    """What an actor did (one vocabulary, so that queries by action are reliable)."""

    READ = "read"
    DETAIL_VIEW = "detail_view"
    PERSONAL_DATA_VIEW = "personal_data_view"
    EXPORT = "export"
    CHANGE = "change"
    INGEST = "ingest"
    WITHDRAW = "withdraw"
    EXPUNGE = "expunge"
    SHARING_DECISION = "sharing_decision"
    AGREEMENT_CHANGE = "agreement_change"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    DENIED = "denied"
    ACCOUNT_CHANGE = "account_change"
    KEY_ROTATION = "key_rotation"
    AUDIT_VIEW = "audit_view"


class Outcome(StrEnum):
    """How the attempt ended."""

    ALLOWED = "allowed"
    DENIED = "denied"
    ERROR = "error"


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    """One audited action.

    Build it with what happened; :func:`crossbeat.audit.append` fills ``seq``,
    ``occurred_at``, ``prev_hash`` and ``entry_hash`` and returns the stored event.

    Parameters
    ----------
    action
        An :class:`Action` (or its string value).
    actor
        User id, API token id, ``"public"`` or ``"system"``.
    actor_agency
        The agency the actor works for, if any.
    source_ip
        The client address (IPv4 or IPv6), if known; stored in normalised form.
    outcome
        :class:`Outcome`; ``allowed`` by default.
    purpose
        The stated purpose or legal basis (case number, ...), if any.
    resource_type
        What kind of thing was touched (``"incident"``, ``"personal_data"``,
        ``"agreement"``, ``"account"``, ...).
    owner_agencies
        Every agency whose data the action touched: this is what lets an owner's
        auditors see every access to their data. Stored sorted and de-duplicated.
    record_ids
        The ids of the records touched (may be long; stored as one JSON list).
    record_count
        How many records were touched; defaults to ``len(record_ids)``. Give it alone
        for actions that touch many records without listing them.
    details
        Anything else, as JSON: strings, integers, booleans, null, lists and objects
        (floats are refused because their text form differs between databases).
    """

    action: Action
    actor: str
    actor_agency: str | None = None
    source_ip: str | None = None
    outcome: Outcome = Outcome.ALLOWED
    purpose: str | None = None
    resource_type: str | None = None
    owner_agencies: tuple[str, ...] = ()
    record_ids: tuple[str, ...] = ()
    record_count: int | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seq: int | None = None
    occurred_at: datetime | None = None
    prev_hash: str | None = None
    entry_hash: str | None = None

    def __post_init__(self) -> None:
        """Validate and normalise the fields (raise ``ValueError`` naming the field)."""
        set_ = object.__setattr__
        set_(self, "action", as_action(self.action))
        try:
            set_(self, "outcome", Outcome(self.outcome))
        except ValueError:
            raise ValueError(
                f"unknown audit outcome {self.outcome!r}; use allowed, denied or error"
            ) from None
        if not isinstance(self.actor, str) or not self.actor.strip():
            raise ValueError("an audit event needs an actor (user id, token id, public, system)")
        for name in ("actor", "actor_agency", "purpose", "resource_type"):
            _check_text(name, getattr(self, name))
        if self.source_ip is not None:
            set_(self, "source_ip", _normalise_ip(self.source_ip))
        set_(self, "owner_agencies", _text_tuple("owner_agencies", self.owner_agencies, True))
        set_(self, "record_ids", _text_tuple("record_ids", self.record_ids, False))
        count = len(self.record_ids) if self.record_count is None else self.record_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("record_count must be a non-negative integer")
        if self.record_ids and count != len(self.record_ids):
            raise ValueError(
                f"record_count {count} differs from the {len(self.record_ids)} record_ids given"
            )
        set_(self, "record_count", count)
        if not isinstance(self.details, Mapping):
            raise ValueError("details must be a JSON object (a mapping)")
        _check_json("details", self.details)
        set_(self, "details", dict(self.details))
        if self.occurred_at is not None:
            if self.occurred_at.tzinfo is None:
                raise ValueError("occurred_at must be timezone-aware")
            set_(self, "occurred_at", self.occurred_at.astimezone(UTC))

    def canonical(self) -> bytes:
        """Return the canonical encoding that is hashed (needs ``seq`` and ``prev_hash``).

        Returns
        -------
        bytes
            Deterministic ASCII JSON of every field except ``entry_hash``.
        """
        if self.seq is None or self.occurred_at is None or self.prev_hash is None:
            raise ValueError("only an appended event (with seq, time, prev_hash) has an encoding")
        doc = {
            "v": ENCODING_VERSION,
            "seq": self.seq,
            "occurred_at": format_time(self.occurred_at),
            "actor": self.actor,
            "actor_agency": self.actor_agency,
            "source_ip": self.source_ip,
            "action": self.action.value,
            "outcome": self.outcome.value,
            "purpose": self.purpose,
            "resource_type": self.resource_type,
            "owner_agencies": list(self.owner_agencies),
            "record_ids": list(self.record_ids),
            "record_count": self.record_count,
            "details": self.details,
            "prev_hash": self.prev_hash,
        }
        return canonical_json(doc)

    def compute_hash(self) -> str:
        """Return the entry hash (RFC 6962 leaf hash of :meth:`canonical`, hex)."""
        return leaf_hash(self.canonical()).hex()

    def to_dict(self) -> dict[str, Any]:
        """Return the event as plain JSON-ready data (times as ISO strings)."""
        return {
            "seq": self.seq,
            "occurred_at": format_time(self.occurred_at) if self.occurred_at else None,
            "actor": self.actor,
            "actor_agency": self.actor_agency,
            "source_ip": self.source_ip,
            "action": self.action.value,
            "outcome": self.outcome.value,
            "purpose": self.purpose,
            "resource_type": self.resource_type,
            "owner_agencies": list(self.owner_agencies),
            "record_ids": list(self.record_ids),
            "record_count": self.record_count,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }


def as_action(value: Action | str) -> Action:
    """Return the :class:`Action` named by ``value`` (``ValueError`` listing the valid ones)."""
    try:
        return Action(value)
    except ValueError:
        raise ValueError(
            f"unknown audit action {value!r}; use one of: " + ", ".join(a.value for a in Action)
        ) from None


def canonical_json(doc: Any) -> bytes:
    """Encode JSON deterministically: sorted keys, no spaces, ASCII, no NaN."""
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def format_time(when: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with microseconds and ``Z``."""
    if when.tzinfo is None:
        raise ValueError("naive datetime in the audit log; it must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=4096)
def _normalise_ip(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"source_ip {value!r} is not an IP address") from None


def _check_text(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character, which PostgreSQL cannot store")


def _text_tuple(name: str, values: Sequence[str], sort: bool) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a list of strings, not one string")
    items = tuple(values)
    # The usual case checked in C (a read's event carries up to 2,000 record ids, issue
    # #8): every item a non-empty string and no NUL in any (a NUL cannot span two items
    # of the join). Otherwise the loop below finds the item to name.
    if not (set(map(type, items)) == {str} and all(items) and "\x00" not in "".join(items)):
        for item in items:
            if not isinstance(item, str) or not item:
                raise ValueError(f"{name} must hold non-empty strings, found {item!r}")
            _check_text(name, item)
    return tuple(sorted(set(items))) if sort else items


def _check_json(path: str, value: Any) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        _check_text(path, value)
    elif isinstance(value, float):
        raise ValueError(
            f"{path} holds a float ({value!r}); store it as a string or an integer so "
            "that the entry hash is the same on every database"
        )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has a non-string key {key!r}")
            _check_text(path, key)
            _check_json(f"{path}.{key}", item)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(f"{path}[{i}]", item)
    else:
        raise ValueError(f"{path} holds a {type(value).__name__}, which is not JSON")
