"""Where sealed values live: every table whose rows are encrypted under data keys.

Rotation (:mod:`crossbeat.vault.rotate`) re-seals the rows of all of them, and
``crossbeat keys status`` counts them per key, through this one list:

========================  ==============================  ===========================
table                     sealed columns                  owner of the key
========================  ==============================  ===========================
``incident_personal``     full address, narrative,        the incident's agency
                          persons
``quarantine``            the raw source row              the row's agency, or the
                                                          platform when unknown
``users``                 the TOTP seed                   the platform
========================  ==============================  ===========================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, and_, false, or_, true

from crossbeat.auth.tables import users
from crossbeat.store.schema import incident_personal, quarantine
from crossbeat.vault.cipher import PLAIN_CODEC
from crossbeat.vault.keys import DataKey, Vault
from crossbeat.vault.personal import decode_personal, seal_fields
from crossbeat.vault.quarantine import open_raw, seal_raw
from crossbeat.vault.tables import PLATFORM
from crossbeat.vault.totp_seeds import open_seed, seal_seed_with

Reseal = Callable[[Vault, Connection, DataKey, Any], dict[str, Any]]


@dataclass(frozen=True)
class SealedTable:
    """A table whose rows hold values sealed under data keys."""

    table: Table
    key_column: Column[Any]
    codec_column: Column[Any]
    #: The agency column naming the owner of a row's key (NULL: the platform), or
    #: None when every row is the platform's.
    owner_column: Column[Any] | None
    #: A unique column, to re-seal rows in batches in a stable order.
    row_column: Column[Any]
    #: Decrypt a row and return its columns sealed under another key.
    reseal: Reseal

    def owned_by(self, owner: str) -> ColumnElement[bool]:
        """Return the condition selecting the rows sealed under ``owner``'s keys."""
        col = self.owner_column
        if owner == PLATFORM:
            return true() if col is None else col.is_(None)
        return false() if col is None else col == owner

    def pending(self, owner: str, old_key_ids: list[str]) -> ColumnElement[bool]:
        """Return the condition selecting ``owner``'s rows not yet under its active key."""
        key, codec = self.key_column, self.codec_column
        return and_(
            self.owned_by(owner),
            or_(key.is_(None), key.in_(old_key_ids), codec == PLAIN_CODEC),
        )


def _personal(vault: Vault, conn: Connection, key: DataKey, row: Any) -> dict[str, Any]:
    return seal_fields(key, row.incident_id, row.agency_id, decode_personal(vault, conn, row))


def _quarantined(vault: Vault, conn: Connection, key: DataKey, row: Any) -> dict[str, Any]:
    return seal_raw(key, row.file_hash, row.row_number, open_raw(vault, conn, row))


def _seed(vault: Vault, conn: Connection, key: DataKey, row: Any) -> dict[str, Any]:
    return seal_seed_with(key, row.id, open_seed(vault, conn, row))


#: Every sealed table, in the order rotation re-seals them.
SEALED: tuple[SealedTable, ...] = (
    SealedTable(
        incident_personal,
        incident_personal.c.key_id,
        incident_personal.c.codec,
        incident_personal.c.agency_id,
        incident_personal.c.incident_id,
        _personal,
    ),
    SealedTable(
        quarantine,
        quarantine.c.key_id,
        quarantine.c.codec,
        quarantine.c.agency_id,
        quarantine.c.id,
        _quarantined,
    ),
    SealedTable(users, users.c.totp_key_id, users.c.totp_codec, None, users.c.id, _seed),
)
