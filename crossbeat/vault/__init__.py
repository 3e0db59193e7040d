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

This package imports nothing at import time: :mod:`crossbeat.store.schema` imports
:mod:`crossbeat.vault.tables` to register the tables, and the other modules import
the store.
"""
