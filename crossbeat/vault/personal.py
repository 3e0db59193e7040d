"""Encoding personal data into sealed rows, and decoding a sealed row.

Every field of an ``incident_personal`` row is sealed, including absent ones (as
JSON ``null``), so the stored row does not even reveal which fields an incident has.
There is no read function here: personal data is read only through the sharing
policy (:func:`crossbeat.sharing.reads.read_detail`), which checks the reader's role,
agreement and stated purpose and records the read in the audit log before it calls
:func:`decode_personal`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import date, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from crossbeat.model import Incident, Person, PersonalData, PersonRole
from crossbeat.vault.cipher import CODEC, PLAIN_CODEC, field_aad, pad, seal, unseal
from crossbeat.vault.errors import DecryptionError, VaultError
from crossbeat.vault.keys import DataKey, Vault, require_vault

if TYPE_CHECKING:
    from crossbeat.store.base import Store

TABLE = "incident_personal"
FIELDS = ("full_address", "narrative", "persons")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(str(v) for v in value)
    raise TypeError(f"cannot store a {type(value).__name__} in personal data")


def _values(personal: PersonalData) -> dict[str, Any]:
    return {
        "full_address": personal.full_address,
        "narrative": personal.narrative,
        "persons": [{**asdict(p), "role": str(p.role)} for p in personal.persons],
    }


def _json_bytes(value: Any) -> bytes:
    if value is None:
        return b"null"
    if value == []:
        return b"[]"
    if type(value) is str:
        text = encode_basestring(value)  # what json.dumps gives for a string, faster
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)
    return text.encode("utf-8")


def encode_personal(key: DataKey, incident: Incident, *, now: datetime) -> dict[str, Any] | None:
    """Return the sealed ``incident_personal`` row of an incident (None if it has none).

    Parameters
    ----------
    key
        The owning agency's active data key (:meth:`Vault.active_key`).
    incident
        The incident; its ``personal`` part is sealed field by field.
    now
        Time stamp of the write.

    Returns
    -------
    dict or None
        The row, with codec :data:`~crossbeat.vault.cipher.CODEC` and every field
        sealed and bound to (table, incident id, agency, field, key id, codec).
    """
    if incident.personal.is_empty():
        return None
    return {
        "incident_id": incident.id,
        "agency_id": incident.agency_id,
        **seal_fields(key, incident.id, incident.agency_id, incident.personal),
        "updated_at": now,
    }


def seal_fields(
    key: DataKey, incident_id: str, agency_id: str, personal: PersonalData
) -> dict[str, Any]:
    """Return ``codec``, ``key_id`` and every personal field sealed for one row."""
    if key.owner != agency_id:
        raise VaultError(
            f"data key {key.key_id} belongs to {key.owner}, not to agency "
            f"{agency_id}, owner of incident {incident_id}"
        )
    out: dict[str, Any] = {"codec": CODEC, "key_id": key.key_id}
    for name, value in _values(personal).items():
        aad = field_aad(
            table=TABLE, row_id=incident_id, agency_id=agency_id, field=name, key_id=key.key_id
        )
        out[name] = seal(key.secret, pad(_json_bytes(value)), aad)
    return out


def encode_personal_rows(
    store: Store, conn: Connection, incidents: Iterable[Incident], *, now: datetime
) -> list[dict[str, Any]]:
    """Return the sealed personal rows of those incidents that carry personal data.

    Each owning agency's active data key is fetched (created on first use) and locked
    for the rest of the caller's transaction.

    Raises
    ------
    KeyConfigError
        When the store was opened without a KEK and there is personal data to write.
    """
    with_data = [inc for inc in incidents if not inc.personal.is_empty()]
    if not with_data:
        return []
    vault = require_vault(store)
    keys = {a: vault.active_key(store, conn, a) for a in sorted({i.agency_id for i in with_data})}
    rows = [encode_personal(keys[inc.agency_id], inc, now=now) for inc in with_data]
    return [r for r in rows if r is not None]


def _person(data: Mapping[str, Any]) -> Person:
    return Person(
        role=PersonRole(data["role"]),
        name=data.get("name"),
        age=data.get("age"),
        sex=data.get("sex"),
        attributes=dict(data.get("attributes") or {}),
    )


def _personal(values: Mapping[str, Any]) -> PersonalData:
    return PersonalData(
        full_address=values.get("full_address"),
        narrative=values.get("narrative"),
        persons=tuple(_person(p) for p in values.get("persons") or ()),
    )


def decode_personal(vault: Vault, conn: Connection, row: Any) -> PersonalData:
    """Decrypt an ``incident_personal`` row.

    Parameters
    ----------
    vault
        The store's vault (its KEK unwraps the row's data key).
    conn
        Connection used to look up the data key.
    row
        The row as read (attribute access: ``row.incident_id``, ``row.codec``, ...).

    Returns
    -------
    PersonalData
        The personal data. Legacy rows of the ``plain`` codec are read as they are.

    Raises
    ------
    DecryptionError
        When a field was altered, moved from another row, agency or field, or is
        missing, or when the data key cannot be unwrapped.
    KeyConfigError
        When the data key is wrapped by a KEK other than the configured one.
    """
    if row.codec == PLAIN_CODEC:
        return _personal(
            {f: None if getattr(row, f) is None else json.loads(getattr(row, f)) for f in FIELDS}
        )
    if row.codec != CODEC:
        raise VaultError(
            f"incident {row.incident_id} has personal data in unknown codec {row.codec!r}: "
            "upgrade CrossBeat to the version that wrote it"
        )
    key = vault.data_key(conn, row.key_id)
    values: dict[str, Any] = {}
    for name in FIELDS:
        sealed = getattr(row, name)
        what = f"{name} of incident {row.incident_id}"
        if sealed is None:
            raise DecryptionError(f"the {what} is missing from its sealed row: restore the row")
        aad = field_aad(
            table=TABLE,
            row_id=row.incident_id,
            agency_id=row.agency_id,
            field=name,
            key_id=row.key_id,
            codec=row.codec,
        )
        values[name] = json.loads(unseal(key.secret, bytes(sealed), aad, what=what))
    return _personal(values)
