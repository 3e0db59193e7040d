"""Ed25519 keys that sign the audit log's tree heads.

The signing (private) key lives with the service that writes checkpoints; auditors and
other agencies verify with the public key alone. Keys are PEM files: PKCS#8 for the
private key (written readable by its owner only), SubjectPublicKeyInfo for the public
key. CrossBeat never makes up a key on its own: create one with
``crossbeat audit keygen`` (or ``openssl genpkey -algorithm ed25519``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SigningKey = Ed25519PrivateKey
VerifyKey = Ed25519PublicKey
AnyKey = Ed25519PrivateKey | Ed25519PublicKey


class AuditKeyError(ValueError):
    """A key file is missing or is not an Ed25519 PEM key."""


def generate_signing_key() -> SigningKey:
    """Return a new random Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def key_id(key: AnyKey) -> str:
    """Return the key's id: SHA-256 (hex) of its raw 32-byte public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def write_signing_key(key: SigningKey, path: Path) -> Path:
    """Write the private key as PEM readable by its owner only, and the public key beside it.

    Parameters
    ----------
    key
        The signing key.
    path
        Where to write the private key; the public key goes to ``<path>.pub``.

    Returns
    -------
    Path
        The public key file.
    """
    if path.exists():
        raise AuditKeyError(f"{path} already exists; choose another file or remove it first")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path = path.with_name(path.name + ".pub")
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_path


def load_signing_key(path: Path) -> SigningKey:
    """Read an Ed25519 private key (PEM, unencrypted) for signing checkpoints."""
    key = _load(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(
            f"{path} holds a public key; checkpoints need the private (signing) key"
        )
    return key


def load_verify_key(path: Path) -> VerifyKey:
    """Read an Ed25519 public key, or the public half of a private key, from PEM."""
    key = _load(path)
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def public_keys(keys: AnyKey | Iterable[AnyKey] | None) -> dict[str, VerifyKey]:
    """Return the given key(s) as public keys by key id (empty for None)."""
    if keys is None:
        return {}
    if isinstance(keys, Ed25519PrivateKey | Ed25519PublicKey):
        keys = [keys]
    found: dict[str, VerifyKey] = {}
    for key in keys:
        public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
        if not isinstance(public, Ed25519PublicKey):
            raise TypeError(f"not an Ed25519 key: {type(key).__name__}")
        found[key_id(public)] = public
    return found


def _load(path: Path) -> AnyKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AuditKeyError(
            f"cannot read key file {path}: {exc.strerror}; create a key with "
            "`crossbeat audit keygen --out FILE`"
        ) from exc
    key: object
    try:
        if b"PUBLIC KEY" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AuditKeyError(
            f"{path} is not an unencrypted PEM Ed25519 key ({exc}); create one with "
            "`crossbeat audit keygen --out FILE`"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        raise AuditKeyError(f"{path} holds a {type(key).__name__}; the audit log needs Ed25519")
    return key
