"""Sealing quarantined source rows, which hold names, addresses and narratives as read.

A quarantined row keeps the raw record so that a fixed profile can process it again.
The record is stored as UTF-8 JSON sealed with AES-256-GCM (:mod:`crossbeat.vault.cipher`)
under the owning agency's data key, or under the platform data key when the row's
agency is unknown (a multi-agency feed's row naming no known agency). The seal is
bound to the table, the row's ``(file_hash, row_number)``, the owner, the key and the
codec, so a ciphertext copied to another row or agency fails to open.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from crossbeat.vault.cipher import CODEC, field_aad, pad, seal, unseal
from crossbeat.vault.errors import VaultError
from crossbeat.vault.keys import DataKey, Vault, require_vault
from crossbeat.vault.tables import PLATFORM

if TYPE_CHECKING:
    from crossbeat.store.base import Store

TABLE = "quarantine"
FIELD = "raw"


class QuarantinedRow(Protocol):
    """What sealing needs to know of a rejected source row."""

    @property
    def agency_id(self) -> str | None: ...  # noqa: D102

    @property
    def file_hash(self) -> str: ...  # noqa: D102

    @property
    def row_number(self) -> int: ...  # noqa: D102

    @property
    def raw(self) -> Mapping[str, Any]: ...  # noqa: D102


def owner_of(agency_id: str | None) -> str:
    """Return the key owner of a quarantined row: its agency, else the platform."""
    return agency_id or PLATFORM


def _aad(file_hash: str, row_number: int, owner: str, key_id: str, codec: str) -> bytes:
    return field_aad(
        table=TABLE,
        row_id=f"{file_hash}/{row_number}",
        agency_id=owner,
        field=FIELD,
        key_id=key_id,
        codec=codec,
    )


def seal_raw(
    key: DataKey, file_hash: str, row_number: int, raw: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the ``raw``, ``codec`` and ``key_id`` columns of one quarantined row.

    Parameters
    ----------
    key
        The owner's active data key (its ``owner`` is the row's agency or the platform).
    file_hash, row_number
        The row's key in ``quarantine``, bound into the seal.
    raw
        The record as read (field name to value; JSON-ready).
    """
    text = json.dumps(dict(raw), ensure_ascii=False, separators=(",", ":"))
    aad = _aad(file_hash, row_number, key.owner, key.key_id, CODEC)
    return {
        "raw": seal(key.secret, pad(text.encode("utf-8")), aad),
        "codec": CODEC,
        "key_id": key.key_id,
    }


def seal_quarantined(
    store: Store, conn: Connection, rows: Sequence[QuarantinedRow]
) -> list[dict[str, Any]]:
    """Seal the raw records of rejected rows, in order, each under its owner's key.

    Each owner's active data key is fetched once (created on first use) and locked
    for share until the caller's transaction ends.

    Returns
    -------
    list of dict
        Per row, its ``raw``, ``codec`` and ``key_id`` columns.

    Raises
    ------
    KeyConfigError
        When the store was opened without a KEK (nothing is written).
    """
    if not rows:
        return []
    vault = require_vault(store, "quarantined rows")
    owners = sorted({owner_of(r.agency_id) for r in rows})
    keys = {o: vault.active_key(store, conn, o) for o in owners}
    return [seal_raw(keys[owner_of(r.agency_id)], r.file_hash, r.row_number, r.raw) for r in rows]


def open_raw(vault: Vault, conn: Connection, row: Any) -> dict[str, Any]:
    """Decrypt the raw record of a stored ``quarantine`` row.

    Parameters
    ----------
    vault
        The store's vault.
    conn
        Used to look up the row's data key.
    row
        The row as read (``id``, ``agency_id``, ``file_hash``, ``row_number``, ``raw``,
        ``codec``, ``key_id``; attribute access).

    Raises
    ------
    DecryptionError
        When the ciphertext was altered, moved from another row or agency, or its
        data key cannot be unwrapped.
    KeyConfigError
        When the data key is wrapped by a KEK other than the configured one.
    """
    if row.codec != CODEC:
        raise VaultError(
            f"quarantine entry #{row.id} is stored in unknown codec {row.codec!r}: "
            "upgrade CrossBeat to the version that wrote it"
        )
    key = vault.data_key(conn, row.key_id)
    owner = owner_of(row.agency_id)
    aad = _aad(row.file_hash, row.row_number, owner, row.key_id, row.codec)
    what = f"raw record of quarantine entry #{row.id}"
    value: dict[str, Any] = json.loads(unseal(key.secret, bytes(row.raw), aad, what=what))
    return value
