"""Sealing TOTP seeds, which the server must keep to check one-time codes.

A seed is stored in ``users.totp_secret`` sealed with AES-256-GCM under the platform
data key (scope ``@platform``), bound to the table, the user id, the key and the
codec, so a seed copied to another user's row fails to open. ``users.totp_codec``
and ``users.totp_key_id`` name how it was sealed; rotating the platform key
re-seals every seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from crossbeat.vault.cipher import CODEC, field_aad, pad, seal, unseal
from crossbeat.vault.errors import VaultError
from crossbeat.vault.keys import DataKey, Vault, require_vault
from crossbeat.vault.tables import PLATFORM

if TYPE_CHECKING:
    from crossbeat.store.base import Store

TABLE = "users"
FIELD = "totp_secret"
#: What the vault protects here, for the "no KEK" message.
WHAT = "TOTP seeds"


def _aad(user_id: str, key_id: str, codec: str) -> bytes:
    return field_aad(
        table=TABLE, row_id=user_id, agency_id=PLATFORM, field=FIELD, key_id=key_id, codec=codec
    )


def seal_seed_with(key: DataKey, user_id: str, secret: str) -> dict[str, Any]:
    """Return the ``totp_secret``, ``totp_codec`` and ``totp_key_id`` columns of a seed.

    Parameters
    ----------
    key
        The platform data key.
    user_id
        The user whose seed it is (bound into the seal).
    secret
        The base32 seed.
    """
    if key.owner != PLATFORM:
        raise VaultError(f"TOTP seeds are sealed under the {PLATFORM} key, not {key.owner}'s")
    return {
        FIELD: seal(key.secret, pad(secret.encode("ascii")), _aad(user_id, key.key_id, CODEC)),
        "totp_codec": CODEC,
        "totp_key_id": key.key_id,
    }


def seal_seed(store: Store, conn: Connection, user_id: str, secret: str) -> dict[str, Any]:
    """Seal a user's TOTP seed under the platform key, inside the caller's transaction.

    Parameters
    ----------
    store
        A store opened with a KEK.
    conn
        The transaction that writes the user row (the key stays share-locked in it).
    user_id
        The user whose seed it is.
    secret
        The base32 seed.

    Returns
    -------
    dict
        The ``totp_secret``, ``totp_codec`` and ``totp_key_id`` column values.

    Raises
    ------
    KeyConfigError
        When the store was opened without a KEK.
    """
    vault = require_vault(store, WHAT)
    return seal_seed_with(vault.active_key(store, conn, PLATFORM), user_id, secret)


def open_seed(vault: Vault, conn: Connection, row: Any) -> str:
    """Decrypt the TOTP seed of a stored ``users`` row.

    Parameters
    ----------
    vault
        The store's vault.
    conn
        Used to look up the data key.
    row
        The user row (mapping or attribute access: ``id``, ``totp_secret``,
        ``totp_codec``, ``totp_key_id``).

    Returns
    -------
    str
        The base32 seed.

    Raises
    ------
    DecryptionError
        When the sealed seed was altered or copied from another user, or its key
        cannot be unwrapped.
    """
    values = row._mapping if hasattr(row, "_mapping") else row
    codec = values["totp_codec"]
    if codec != CODEC:
        raise VaultError(
            f"the TOTP seed of user {values['id']} is stored in unknown codec {codec!r}: "
            "upgrade CrossBeat to the version that wrote it"
        )
    key = vault.data_key(conn, values["totp_key_id"])
    aad = _aad(values["id"], values["totp_key_id"], codec)
    what = f"TOTP seed of user {values['id']}"
    return unseal(key.secret, bytes(values[FIELD]), aad, what=what).decode("ascii").rstrip(" ")
