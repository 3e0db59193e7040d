"""Errors of the personal-data vault; each message names the next step."""

from __future__ import annotations

from crossbeat.store.base import StoreError


class VaultError(StoreError):
    """Personal data cannot be encrypted or decrypted."""


class KeyConfigError(VaultError):
    """The key-encryption key is missing, malformed or not the one the data needs."""


class DecryptionError(VaultError):
    """A ciphertext or wrapped key failed authentication (tampered, moved or wrong key)."""


class PurposeRequiredError(ValueError):
    """Personal data was requested without stating a purpose."""


class PersonalDataNotFoundError(LookupError):
    """No live incident has the requested id (unknown, withdrawn or expunged)."""
