"""Where a server's audit signing key and its copy of the tree heads live (issue #7, finding 4).

A server that serves agency data signs tree heads: without them, a database writer who
re-hashes the chain can rewrite, hide or empty the whole log and verification still
says "intact". So the signing key is never optional for the server: for a SQLite file
it is created on first start beside the database (``<db>.audit-key``, mode 0600), as
the development KEK is; any other database needs ``audit_key_file`` configured.

Heads stored only in the database can be deleted together with the events they cover.
Every signed head is therefore also appended to a *heads file* outside the database
(``audit_heads_file``; for SQLite by default ``<db>.audit-heads.jsonl`` beside it), one
JSON object per line, opened append-only and synced. ``crossbeat audit verify`` reads
it by default and treats each head in it as a trusted head: deleting heads and events
together then shows as ``trusted_head_beyond_log`` / ``trusted_head_missing``.

Known limit: whoever can change the file system of the server can also truncate the
heads file. Keep it where the database administrators cannot write (another host,
write-once storage, a file with the append-only attribute, ``chattr +a``) or copy it
off the host regularly; a copy held elsewhere catches any later rewrite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crossbeat.audit.heads import TreeHead, list_heads
from crossbeat.audit.keys import (
    AuditKeyError,
    SigningKey,
    generate_signing_key,
    load_signing_key,
    write_signing_key,
)

if TYPE_CHECKING:
    from crossbeat.store import Store

#: Setting (environment variable) naming the heads file.
HEADS_FILE_SETTING = "CROSSBEAT_AUDIT_HEADS_FILE"
#: Setting (environment variable) naming the signing key file.
KEY_FILE_SETTING = "CROSSBEAT_AUDIT_KEY_FILE"


def _sqlite_file(db_url: str) -> Path | None:
    from crossbeat.store.base import normalise_url

    try:
        url = make_url(normalise_url(db_url))
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().resolve()


def default_key_path(db_url: str) -> Path | None:
    """Return ``<db>.audit-key`` for a SQLite file URL, None for any other database."""
    db = _sqlite_file(db_url)
    return None if db is None else db.with_name(db.name + ".audit-key")


def default_heads_path(db_url: str) -> Path | None:
    """Return ``<db>.audit-heads.jsonl`` for a SQLite file URL, None otherwise."""
    db = _sqlite_file(db_url)
    return None if db is None else db.with_name(db.name + ".audit-heads.jsonl")


def server_signing_key(db_url: str, key_file: str | None) -> tuple[SigningKey, Path]:
    """Return the key a server signs tree heads with, creating it for a SQLite file.

    Parameters
    ----------
    db_url
        The database served.
    key_file
        The configured ``audit_key_file`` (empty or None: the default beside a SQLite
        database, created on first use with mode 0600).

    Raises
    ------
    AuditKeyError
        No key is configured for a database other than a SQLite file, or the file is
        not an Ed25519 private key.
    """
    if key_file:
        given = Path(key_file).expanduser()
        return load_signing_key(given), given
    path = default_key_path(db_url)
    if path is None:
        raise AuditKeyError(
            "a server that serves agency data signs audit tree heads: set audit_key_file "
            f"({KEY_FILE_SETTING}) to a key from `crossbeat audit keygen --out FILE`"
        )
    if not path.exists():
        write_signing_key(generate_signing_key(), path)
    return load_signing_key(path), path


def heads_path(db_url: str, heads_file: str | None) -> Path | None:
    """Return the heads file: the configured one, else the SQLite default, else None."""
    if heads_file:
        return Path(heads_file).expanduser()
    return default_heads_path(db_url)


def server_heads_path(db_url: str, heads_file: str | None) -> Path:
    """Return the heads file a server appends to (required outside SQLite).

    Raises
    ------
    AuditKeyError
        When none is configured for a database other than a SQLite file.
    """
    path = heads_path(db_url, heads_file)
    if path is None:
        raise AuditKeyError(
            "a server that serves agency data keeps its audit tree heads outside the "
            f"database too: set audit_heads_file ({HEADS_FILE_SETTING}) to a file on "
            "storage the database administrators cannot change"
        )
    return path


def append_head(path: Path, head: TreeHead) -> None:
    """Append one head to the heads file (created 0600; append-only; synced to disk)."""
    line = json.dumps(head.to_dict(), sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_heads_file(path: Path) -> list[TreeHead]:
    """Return every head in a heads file, in file order.

    Raises
    ------
    ValueError
        Naming the file and line of anything that is not a tree head.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read audit heads file {path}: {exc.strerror}") from exc
    heads = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            heads.append(TreeHead.from_dict(data))
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: {exc}") from exc
    return heads


def export_new_heads(store: Store, path: Path) -> int:
    """Append to the heads file every stored head newer than its last one.

    Idempotent; a server calls it at start and after every checkpoint, so a head
    signed before the file existed is exported too.

    Returns
    -------
    int
        How many heads were appended.
    """
    last = 0
    if path.exists():
        written = read_heads_file(path)
        last = max((h.id for h in written), default=0)
    added = 0
    for head in list_heads(store):
        if head.id > last:
            append_head(path, head)
            added += 1
    return added
