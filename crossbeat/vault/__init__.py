"""Encryption at rest of personal data (issue #3).

Every personal field of an incident (full address, narrative, persons) is sealed with
AES-256-GCM under a per-agency data key; each ciphertext is bound to its table, row,
agency, field, key and codec version, so a ciphertext moved anywhere else fails to
open. Data keys are random, one active per agency, and stored only wrapped by the
key-encryption key (KEK) from the configuration.

Modules: :mod:`~crossbeat.vault.kek` (the KEK: parsing, key files, resolution),
:mod:`~crossbeat.vault.keys` (per-agency data keys and the :class:`~crossbeat.vault.keys.Vault`),
:mod:`~crossbeat.vault.cipher` (the per-field codec), :mod:`~crossbeat.vault.personal`
(encoding and purpose-bound reading of personal data), :mod:`~crossbeat.vault.rotate`
(resumable key rotation and status), :mod:`~crossbeat.vault.errors` and
:mod:`~crossbeat.vault.tables`.

The vault depends on the store, never the reverse. Importing this package registers
:class:`~crossbeat.vault.keys.Vault` with the store
(:func:`crossbeat.store.base.register_keyring`), so that
``open_store(url, kek=...)`` gives a store whose personal data it seals: a
:class:`~crossbeat.vault.kek.Kek` cannot be made without importing this package.
"""

from crossbeat.store.base import register_keyring
from crossbeat.vault.keys import Vault

register_keyring(Vault)
