"""Random bearer secrets and how they are stored (SHA-256 only)."""

from __future__ import annotations

import hashlib
import secrets


def new_secret(prefix: str) -> str:
    """Return ``prefix`` followed by 256 random bits, URL-safe base64."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """Return the SHA-256 (hex) under which a secret is stored and looked up.

    A fast hash is right here, unlike for passwords: the secret has 256 random bits,
    so no amount of guessing speed makes it findable from the hash, and a fast
    hash lets every request find its row by index without an argon2 computation.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def plausible(secret: object, prefix: str) -> bool:
    """Return whether ``secret`` has the shape of one of our secrets (cheap pre-check)."""
    return isinstance(secret, str) and secret.startswith(prefix) and len(secret) <= 128
