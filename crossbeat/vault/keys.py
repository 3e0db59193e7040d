"""Data keys (DEKs) of agencies and of the platform, wrapped by the KEK, and the Vault.

Each agency has random 256-bit data keys, created on first use and versioned 1, 2,
...; exactly one is ``active`` (used for new writes). A rotation marks the old key
``rotating`` (still used to read rows not yet re-encrypted) and, once no row uses
it, ``retired``: its wrapped key material is then erased. A data key is stored only
wrapped with AES-256-GCM under the KEK, the wrapping bound to the owner, key id and
version, so a wrapped key copied to another agency does not unwrap.

Keys owned by no agency live in ``platform_keys`` under a scope instead of an agency
id: :data:`~crossbeat.vault.tables.PLATFORM` (a data key for quarantined rows of an
unknown agency and for TOTP seeds) and :data:`~crossbeat.vault.tables.FINGERPRINT`
(the HMAC key of record hashes, :mod:`crossbeat.vault.fingerprint`). Agency ids
cannot start with ``@``, so an owner names its table unambiguously.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, Connection, Table, func, select

from crossbeat.vault.errors import DecryptionError, KeyConfigError, VaultError
from crossbeat.vault.kek import KEK_FILE_SETTING, KEK_SETTING, Kek
from crossbeat.vault.tables import PLATFORM_SCOPES, agency_keys, platform_keys

if TYPE_CHECKING:
    from crossbeat.store.base import Store

DEK_BYTES = 32
WRAP_ALG = "aesgcm-wrap-v1"
_NONCE = 12


@dataclass(frozen=True, slots=True)
class DataKey:
    """An unwrapped data key of one owner (an agency id or a platform scope)."""

    key_id: str
    owner: str
    version: int
    secret: bytes = field(repr=False)


def key_table(owner: str) -> tuple[Table, Column[str]]:
    """Return the table holding an owner's keys and its owner column.

    Raises
    ------
    VaultError
        For an owner starting with ``@`` that is not a platform scope.
    """
    if owner in PLATFORM_SCOPES:
        return platform_keys, platform_keys.c.scope
    if owner.startswith("@"):
        raise VaultError(f"unknown key scope {owner!r}: use one of {', '.join(PLATFORM_SCOPES)}")
    return agency_keys, agency_keys.c.agency_id


def key_owner(row: Any) -> str:
    """Return the agency id or platform scope of an ``agency_keys``/``platform_keys`` row."""
    values = row._mapping
    return str(values["agency_id"] if "agency_id" in values else values["scope"])


def describe_owner(owner: str) -> str:
    """Return ``agency X`` or ``platform scope @...`` for messages."""
    return f"platform scope {owner}" if owner.startswith("@") else f"agency {owner}"


def _wrap_aad(owner: str, key_id: str, version: int) -> bytes:
    parts = ["crossbeat dek", WRAP_ALG, owner, key_id, version]
    return json.dumps(parts, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def wrap_key(kek: Kek, key: DataKey) -> bytes:
    """Return ``nonce || AES-256-GCM(KEK, key) || tag``, bound to owner, id and version."""
    nonce = secrets.token_bytes(_NONCE)
    aad = _wrap_aad(key.owner, key.key_id, key.version)
    return nonce + AESGCM(kek.secret).encrypt(nonce, key.secret, aad)


def unwrap_key(kek: Kek, row: Any) -> DataKey:
    """Unwrap an ``agency_keys`` or ``platform_keys`` row with the KEK that wrapped it.

    Raises
    ------
    DecryptionError
        When the key was retired (its material erased) or the wrapped bytes, owner,
        id or version were altered.
    """
    owner = key_owner(row)
    if row.wrapped_key is None:
        raise DecryptionError(
            f"data key {row.key_id} of {describe_owner(owner)} is retired and its key "
            "material erased; rows sealed under it cannot be read: restore them from a "
            "backup taken before the rotation, with that backup's key tables"
        )
    blob = bytes(row.wrapped_key)
    aad = _wrap_aad(owner, row.key_id, row.version)
    try:
        secret = AESGCM(kek.secret).decrypt(blob[:_NONCE], blob[_NONCE:], aad)
    except InvalidTag:
        raise DecryptionError(
            f"data key {row.key_id} of {describe_owner(owner)} failed to unwrap under KEK "
            f"{kek.id}: the key row was altered or copied; restore it from a backup"
        ) from None
    return DataKey(row.key_id, owner, row.version, secret)


class Vault:
    """The configured KEK plus the data keys it has unwrapped in this process.

    Parameters
    ----------
    kek
        The key-encryption key of the configuration; new data keys are wrapped by it.
    old_keks
        Previous KEKs, accepted for unwrapping only, while ``crossbeat keys rewrap``
        moves the data keys to the new KEK.
    """

    def __init__(self, kek: Kek, *, old_keks: Iterable[Kek] = ()) -> None:
        self.kek = kek
        self._keks = {k.id: k for k in (*old_keks, kek)}
        self._cache: dict[str, DataKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Vault(kek_id={self.kek.id!r})"

    def kek_for(self, kek_id: str, *, key_id: str, owner: str) -> Kek:
        """Return the known KEK with this id, or explain which KEK the data needs."""
        kek = self._keks.get(kek_id)
        if kek is None:
            raise KeyConfigError(
                f"data key {key_id} of {describe_owner(owner)} is wrapped by KEK {kek_id}, but "
                f"the configured KEK is {self.kek.id}: set {KEK_SETTING} (or "
                f"{KEK_FILE_SETTING}) to the KEK this database was written with; after "
                "changing the KEK on purpose, run `crossbeat keys rewrap` with the old one"
            )
        return kek

    def data_key(self, conn: Connection, key_id: str) -> DataKey:
        """Return a data key (active or rotating) for decryption, unwrapping it once."""
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        row = None
        for table in (agency_keys, platform_keys):
            row = conn.execute(select(table).where(table.c.key_id == key_id)).first()
            if row is not None:
                break
        if row is None:
            raise DecryptionError(
                f"data key {key_id} is not in this database's agency_keys or platform_keys: "
                "restore those tables from the backup the sealed data came from"
            )
        owner = key_owner(row)
        key = unwrap_key(self.kek_for(row.kek_id, key_id=key_id, owner=owner), row)
        with self._lock:
            self._cache[key_id] = key
        return key

    def active_key(self, store: Store, conn: Connection, owner: str) -> DataKey:
        """Return the owner's active data key, creating the first one on first use.

        Parameters
        ----------
        owner
            An agency id, or a platform scope (``@platform``, ``@fingerprint``).

        The key row is locked for share until the caller's transaction ends, so a
        rotation cannot retire the key while rows sealed under it are uncommitted.
        """
        table, owner_col = key_table(owner)
        for _ in range(3):
            row = conn.execute(
                select(table)
                .where((owner_col == owner) & (table.c.status == "active"))
                .with_for_update(read=True)
            ).first()
            if row is not None:
                return self._remember(row)
            self.create_key(store, conn, owner)
        raise KeyConfigError(f"could not create a data key for {describe_owner(owner)}: retry")

    def create_key(self, store: Store, conn: Connection, owner: str) -> DataKey | None:
        """Add the owner's next data key version as its active key, wrapped by the KEK.

        The caller has demoted any previous active key in the same transaction.
        Returns None when a concurrent transaction added that version or an active
        key first (the caller reads the active key again).
        """
        table, owner_col = key_table(owner)
        version = 1 + (
            conn.execute(select(func.max(table.c.version)).where(owner_col == owner)).scalar() or 0
        )
        key = DataKey(str(uuid.uuid4()), owner, version, secrets.token_bytes(DEK_BYTES))
        store.insert_ignore(
            conn,
            table,
            [
                {
                    "key_id": key.key_id,
                    owner_col.name: owner,
                    "version": version,
                    "status": "active",
                    "wrapped_key": wrap_key(self.kek, key),
                    "wrap_alg": WRAP_ALG,
                    "kek_id": self.kek.id,
                    "created_at": store.now(),
                    "retired_at": None,
                }
            ],
        )
        stored = conn.execute(select(table.c.key_id).where(table.c.key_id == key.key_id)).first()
        if stored is None:  # version or active slot taken by a concurrent writer
            return None
        with self._lock:
            self._cache[key.key_id] = key
        return key

    def forget(self, key_id: str) -> None:
        """Drop a data key from the in-process cache (after it is retired)."""
        with self._lock:
            self._cache.pop(key_id, None)

    def _remember(self, row: Any) -> DataKey:
        with self._lock:
            cached = self._cache.get(row.key_id)
        if cached is not None:
            return cached
        owner = key_owner(row)
        key = unwrap_key(self.kek_for(row.kek_id, key_id=row.key_id, owner=owner), row)
        with self._lock:
            self._cache[row.key_id] = key
        return key


def require_vault(store: Store, what: str = "personal data") -> Vault:
    """Return the store's vault, or explain how to configure the KEK.

    Parameters
    ----------
    store
        The store.
    what
        What needs the vault, for the message (e.g. ``TOTP seeds``).

    Raises
    ------
    KeyConfigError
        When the store was opened without a KEK.
    """
    vault: Vault | None = getattr(store, "vault", None)
    if vault is None:
        raise KeyConfigError(
            f"the store at {store.safe_url} was opened without a key-encryption key, so "
            f"{what} can be neither written nor read: set {KEK_SETTING} (base64 of "
            f"32 random bytes, from `crossbeat keys new-kek`) or {KEK_FILE_SETTING}, or in "
            "Python pass open_store(url, kek=...)"
        )
    return vault
