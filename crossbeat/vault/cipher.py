"""The per-field codec: AES-256-GCM with the ciphertext bound to where it belongs.

A sealed field is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``, with a fresh
random 96-bit nonce for every encryption. The additional authenticated data (AAD)
names the table, the row (incident id), the owning agency, the field, the data key
and the codec version, so a ciphertext copied to another row, agency or field, or
relabelled with another key, fails to open instead of decrypting in the wrong place.

Plaintexts are padded with trailing spaces (JSON ignores them) to a multiple of
:data:`PAD_TO` bytes, so ciphertext lengths reveal only a coarse bucket of the
length of a name or address.
"""

from __future__ import annotations

import json
import secrets
from json.encoder import encode_basestring_ascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crossbeat.vault.errors import DecryptionError

#: Codec name stored in ``incident_personal.codec`` for rows sealed by this module.
CODEC = "aesgcm-v1"
#: Codec of legacy rows written before encryption (UTF-8 JSON); read, never written.
PLAIN_CODEC = "plain"
NONCE_BYTES = 12
TAG_BYTES = 16
PAD_TO = 32


def field_aad(
    *,
    table: str,
    row_id: str,
    agency_id: str,
    field: str,
    key_id: str,
    codec: str = CODEC,
) -> bytes:
    """Return the AAD that binds a sealed field to its place.

    The parts are encoded as a JSON array, which is unambiguous whatever characters
    the ids contain.
    """
    parts = ["crossbeat", codec, table, row_id, agency_id, field, key_id]
    try:
        # What json.dumps(parts, ensure_ascii=True, separators=(",", ":")) returns for
        # strings, a few times faster (this runs for every sealed field).
        text = "[" + ",".join(map(encode_basestring_ascii, parts)) + "]"
    except TypeError:
        text = json.dumps(parts, ensure_ascii=True, separators=(",", ":"))
    return text.encode("ascii")


def pad(plaintext: bytes) -> bytes:
    """Pad JSON text with spaces to the next multiple of :data:`PAD_TO` bytes."""
    return plaintext + b" " * (-len(plaintext) % PAD_TO)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under a 256-bit key.

    Parameters
    ----------
    key
        The 32-byte data key.
    plaintext
        The bytes to protect.
    aad
        Context bound to the ciphertext (:func:`field_aad`), not stored with it.

    Returns
    -------
    bytes
        ``nonce || ciphertext || tag``.
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes, *, what: str) -> bytes:
    """Decrypt a value made by :func:`seal`, checking it belongs where it was found.

    Parameters
    ----------
    key
        The 32-byte data key named by the row.
    sealed
        ``nonce || ciphertext || tag`` as stored.
    aad
        The AAD rebuilt from where the value was found.
    what
        Description of the value for the error message, e.g. ``narrative of incident X``.

    Raises
    ------
    DecryptionError
        When the value was changed, moved from another row, agency or field, or
        sealed under another key.
    """
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"the {what} is truncated ({len(sealed)} bytes): restore it")
    nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise DecryptionError(
            f"the {what} failed authentication: it was altered, copied from another "
            "record, agency or field, or sealed under another key; restore the row "
            "from a backup"
        ) from None
