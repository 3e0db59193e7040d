"""The key-encryption key (KEK): parsing, key files and where it comes from.

The KEK is 32 random bytes (AES-256), written as base64. It comes from the
configuration only, read at the edge (CLI, application factory, demo) and passed in:
the setting ``CROSSBEAT_KEK`` holds it, or ``CROSSBEAT_KEK_FILE`` names a file that
does. For local development on a SQLite file, when neither is set, a key file is
created next to the database (``<db>.kek``, readable by its owner only). There is no
built-in key anywhere in the code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crossbeat.vault.errors import KeyConfigError

#: Setting (environment variable) that holds the base64 KEK.
KEK_SETTING = "CROSSBEAT_KEK"
#: Setting (environment variable) that names a file holding the base64 KEK.
KEK_FILE_SETTING = "CROSSBEAT_KEK_FILE"
KEK_BYTES = 32
_NEXT_STEP = (
    f"set {KEK_SETTING} to the base64 of 32 random bytes (make one with "
    f"`crossbeat keys new-kek`) or {KEK_FILE_SETTING} to a file holding it"
)


@dataclass(frozen=True, slots=True)
class Kek:
    """A key-encryption key: 32 secret bytes and a public id derived from them."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEK_BYTES:
            raise KeyConfigError(f"a KEK has {KEK_BYTES} bytes, not {len(self.secret)}")

    @property
    def id(self) -> str:
        """Return the key's id (16 hex digits): an HMAC of a label, safe to store and show.

        Stored next to every wrapped data key, so that a wrong KEK is reported as such
        instead of as a failed decryption.
        """
        digest = hmac.new(self.secret, b"crossbeat kek id v1", hashlib.sha256).hexdigest()
        return digest[:16]


@dataclass(frozen=True, slots=True)
class KekResolution:
    """Which KEK a database uses and where it came from."""

    kek: Kek | None
    #: Human-readable origin, e.g. ``CROSSBEAT_KEK`` or ``key file /srv/cb.kek``.
    source: str
    #: The development key file created just now, if one was.
    created: Path | None = None


def generate_kek() -> str:
    """Return a fresh random KEK as base64 text, ready for ``CROSSBEAT_KEK``."""
    return base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode("ascii")


def parse_kek(text: str, *, source: str = KEK_SETTING) -> Kek:
    """Parse a base64 KEK, refusing malformed values and obvious placeholders.

    Parameters
    ----------
    text
        Base64 (standard or URL-safe alphabet) of exactly 32 bytes.
    source
        Where the text came from, for the error message.

    Returns
    -------
    Kek
        The key.

    Raises
    ------
    KeyConfigError
        When the text is not base64 of 32 bytes, or the bytes are clearly not random.
    """
    value = text.strip()
    if not value:
        raise KeyConfigError(f"{source} is empty: {_NEXT_STEP}")
    try:
        alphabet = b"-_" if ("-" in value or "_" in value) else None
        raw = base64.b64decode(value, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{source} is not valid base64: {_NEXT_STEP}") from None
    if len(raw) != KEK_BYTES:
        raise KeyConfigError(
            f"{source} decodes to {len(raw)} bytes, an AES-256 KEK has {KEK_BYTES}: {_NEXT_STEP}"
        )
    # 32 random bytes have about 30 distinct values; fewer than 8 means a placeholder
    # such as all zeros or a repeated pattern (the chance for a random key is < 1e-20).
    if len(set(raw)) < 8:
        raise KeyConfigError(f"{source} looks like a placeholder, not a random key: {_NEXT_STEP}")
    return Kek(raw)


def read_kek_file(path: str | Path) -> Kek:
    """Read a KEK (base64 text) from a key file.

    Raises
    ------
    KeyConfigError
        When the file is missing, unreadable or does not hold a valid KEK.
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyConfigError(f"key file {p} does not exist: {_NEXT_STEP}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyConfigError(f"cannot read key file {p}: {exc}") from None
    return parse_kek(text, source=f"key file {p}")


def write_kek_file(path: Path) -> Kek:
    """Create a new key file holding a fresh KEK, readable by its owner only.

    Raises
    ------
    FileExistsError
        When the file already exists (it is never overwritten).
    """
    text = generate_kek()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")
    return parse_kek(text, source=f"key file {path}")


def development_key_path(db_url: str) -> Path | None:
    """Return ``<db>.kek`` for a SQLite file URL, None for any other database."""
    from crossbeat.store.base import normalise_url

    try:
        url = make_url(normalise_url(db_url))
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    db = Path(url.database).expanduser().resolve()
    return db.with_name(db.name + ".kek")


def resolve_kek(
    db_url: str,
    *,
    kek: str | None = None,
    kek_file: str | None = None,
    required: bool = True,
) -> KekResolution:
    """Find the KEK for a database from the configured values.

    Parameters
    ----------
    db_url
        The database the key is for.
    kek
        Value of ``CROSSBEAT_KEK`` (base64), if set.
    kek_file
        Value of ``CROSSBEAT_KEK_FILE``, if set.
    required
        Raise when no KEK can be found; with ``False`` return a resolution whose
        ``kek`` is None (personal data then cannot be written or read).

    Returns
    -------
    KekResolution
        The key, its origin, and the development key file if one was just created
        (SQLite file, nothing configured). An in-memory SQLite database gets a key
        that lives as long as the process, like its data.

    Raises
    ------
    KeyConfigError
        When both settings are given, a value is invalid, or (with ``required``) no
        KEK is configured for a database other than a SQLite file.
    """
    if kek and kek_file:
        raise KeyConfigError(f"both {KEK_SETTING} and {KEK_FILE_SETTING} are set: keep only one")
    if kek:
        return KekResolution(parse_kek(kek), KEK_SETTING)
    if kek_file:
        return KekResolution(read_kek_file(kek_file), f"key file {Path(kek_file).expanduser()}")
    path = development_key_path(db_url)
    if path is None and ":memory:" in db_url:
        return KekResolution(Kek(secrets.token_bytes(KEK_BYTES)), "in-memory key")
    if path is not None:
        if path.exists():
            return KekResolution(read_kek_file(path), f"development key file {path}")
        if not path.parent.is_dir():  # opening the store reports the missing folder
            return KekResolution(None, "not configured")
        try:
            return KekResolution(write_kek_file(path), f"development key file {path}", path)
        except FileExistsError:  # created by a concurrent process a moment ago
            return KekResolution(read_kek_file(path), f"development key file {path}")
    if required:
        raise KeyConfigError(
            f"no key-encryption key is configured for this database: {_NEXT_STEP} "
            "(personal data is never stored unencrypted)"
        )
    return KekResolution(None, "not configured")
