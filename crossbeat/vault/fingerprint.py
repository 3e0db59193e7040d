"""Keyed fingerprints: HMAC-SHA256 under the deployment's fingerprint key.

Record hashes (``incidents.record_hash``) and raw-row hashes (``incidents.raw_hash``)
cover personal data, so an unkeyed hash in a database dump would let anyone test
guessed names and addresses against it. They are HMAC-SHA256 under one random
256-bit key per deployment, kept in ``platform_keys`` (scope ``@fingerprint``)
wrapped by the KEK like every data key: created on first use, re-wrapped by
``crossbeat keys rewrap``, and never rotated. Rotating it would change the hash of
every record, so the next ingest would store every record as a new version although
nothing changed.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from crossbeat.vault.keys import DataKey, require_vault
from crossbeat.vault.tables import FINGERPRINT

if TYPE_CHECKING:
    from crossbeat.store.base import Store


class Fingerprinter:
    """HMAC-SHA256 under one key, with the key schedule done once.

    Parameters
    ----------
    key
        The fingerprint key (:func:`fingerprinter` fetches it).

    Examples
    --------
    >>> fp = Fingerprinter(DataKey("k1", FINGERPRINT, 1, bytes(range(32))))
    >>> fp.hexdigest(b"abc") == fp.hexdigest(b"abc") != fp.hexdigest(b"abd")
    True
    >>> len(fp.hexdigest(b"abc"))
    64
    """

    __slots__ = ("_mac", "_subkeys", "key_id")

    def __init__(self, key: DataKey) -> None:
        self.key_id = key.key_id
        # The padded key is absorbed once here; each digest copies this state.
        self._mac = hmac.new(key.secret, digestmod="sha256")
        self._subkeys: dict[bytes, bytes] = {}

    def __repr__(self) -> str:
        return f"Fingerprinter(key_id={self.key_id!r})"

    def hexdigest(self, data: bytes) -> str:
        """Return the HMAC-SHA256 of ``data`` as 64 hex digits."""
        mac = self._mac.copy()
        mac.update(data)
        return mac.hexdigest()

    def subkey(self, label: bytes) -> bytes:
        """Return a 32-byte key derived for one purpose: the HMAC-SHA256 of ``label``.

        Kept per fingerprinter, so a loop keying many values under it (a keyed BLAKE2b,
        :func:`crossbeat.ingest.unchanged.keyed_digests`) derives it once.
        """
        key = self._subkeys.get(label)
        if key is None:
            mac = self._mac.copy()
            mac.update(label)
            key = self._subkeys[label] = mac.digest()
        return key


def fingerprinter(store: Store, conn: Connection) -> Fingerprinter:
    """Return the deployment's fingerprinter, creating its key on first use.

    Parameters
    ----------
    store
        A store opened with a KEK.
    conn
        The caller's transaction (the key is created in it on first use).

    Returns
    -------
    Fingerprinter
        Ready to hash many records; fetch it once per chunk, not per row.

    Raises
    ------
    KeyConfigError
        When the store was opened without a KEK.
    """
    vault = require_vault(store, "record fingerprints")
    return Fingerprinter(vault.active_key(store, conn, FINGERPRINT))
