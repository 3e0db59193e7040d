"""Signed tree heads of the audit log, their files, and Merkle proofs against them.

A tree head says "the first ``tree_size`` events of this log have Merkle root
``root_hash``", numbered ``id`` = 1, 2, 3 ..., time-stamped and signed with Ed25519.
Heads are stored in ``audit_tree_heads`` by :func:`crossbeat.audit.checkpoint` and can
be exported to a file and kept elsewhere (another agency, write-once storage), so that
deleting or rewriting events, even with the chain re-hashed, shows against them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import Connection, Row, select

from crossbeat.audit.events import canonical_json, format_time
from crossbeat.audit.keys import SigningKey, VerifyKey, key_id
from crossbeat.audit.log import AuditError, leaf_hashes
from crossbeat.audit.merkle import consistency_proof, inclusion_proof
from crossbeat.audit.tables import audit_tree_heads

if TYPE_CHECKING:
    from crossbeat.store import Store

ALGORITHM = "ed25519"
_LOG_NAME = "crossbeat-audit"


@dataclass(frozen=True)
class TreeHead:
    """A signed statement of the log's size and Merkle root at one moment.

    Attributes
    ----------
    id
        Checkpoint number (1, 2, 3, ...; gapless).
    tree_size
        Number of events covered.
    root_hash
        RFC 6962 root of their entry hashes (hex).
    signed_at
        When the head was signed (UTC).
    key_id
        SHA-256 of the signing public key (hex).
    signature
        Base64 Ed25519 signature over :meth:`message`.
    algorithm
        Always ``"ed25519"``.
    """

    id: int
    tree_size: int
    root_hash: str
    signed_at: datetime
    key_id: str
    signature: str
    algorithm: str = ALGORITHM

    def message(self) -> bytes:
        """Return the bytes that are signed (every field but the signature)."""
        return canonical_json(
            {
                "log": _LOG_NAME,
                "v": 1,
                "id": self.id,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash,
                "signed_at": format_time(self.signed_at),
                "key_id": self.key_id,
                "algorithm": self.algorithm,
            }
        )

    def signature_problem(self, keys: dict[str, VerifyKey]) -> str | None:
        """Return why the signature does not hold under ``keys`` (None when it does)."""
        if self.algorithm != ALGORITHM:
            return f"unknown signature algorithm {self.algorithm!r}"
        key = keys.get(self.key_id)
        if key is None:
            return f"signed by key {self.key_id[:16]}…, which is not one of the given keys"
        try:
            key.verify(base64.b64decode(self.signature, validate=True), self.message())
        except (InvalidSignature, binascii.Error, ValueError):
            return "the signature does not match the head"
        return None

    def to_dict(self) -> dict[str, Any]:
        """Return the head as JSON-ready data (the exported file format)."""
        return {
            "log": _LOG_NAME,
            "id": self.id,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "signed_at": format_time(self.signed_at),
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeHead:
        """Rebuild a head from :meth:`to_dict` output (``ValueError`` if malformed)."""
        if data.get("log") != _LOG_NAME:
            raise ValueError("not a CrossBeat audit tree head (missing log: crossbeat-audit)")
        try:
            return cls(
                id=int(data["id"]),
                tree_size=int(data["tree_size"]),
                root_hash=str(data["root_hash"]),
                signed_at=datetime.fromisoformat(str(data["signed_at"])),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
                algorithm=str(data["algorithm"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed tree head: {exc}") from exc


def sign_head(
    key: SigningKey, *, head_id: int, tree_size: int, root_hash: str, signed_at: datetime
) -> TreeHead:
    """Return a tree head with these values, signed with ``key``."""
    unsigned = TreeHead(head_id, tree_size, root_hash, signed_at, key_id(key), signature="")
    signature = base64.b64encode(key.sign(unsigned.message())).decode("ascii")
    return TreeHead(head_id, tree_size, root_hash, signed_at, unsigned.key_id, signature)


def head_from_row(row: Row[Any]) -> TreeHead:
    """Rebuild a tree head from its ``audit_tree_heads`` row (``ValueError`` if malformed)."""
    m = row._mapping
    for name in ("id", "tree_size"):
        if isinstance(m[name], bool) or not isinstance(m[name], int) or m[name] < 0:
            raise ValueError(f"{name} is {m[name]!r}, not a non-negative integer")
    for name in ("root_hash", "key_id", "signature", "algorithm"):
        if not isinstance(m[name], str):
            raise ValueError(f"{name} is {m[name]!r}, not text")
    if not isinstance(m["signed_at"], datetime) or m["signed_at"].tzinfo is None:
        raise ValueError(f"signed_at is {m['signed_at']!r}, not a time")
    return TreeHead(
        id=m["id"],
        tree_size=m["tree_size"],
        root_hash=m["root_hash"],
        signed_at=m["signed_at"],
        key_id=m["key_id"],
        signature=m["signature"],
        algorithm=m["algorithm"],
    )


def list_heads(store: Store) -> list[TreeHead]:
    """Return every stored tree head, oldest first."""
    with store.connect() as conn:
        return stored_heads(conn)


def stored_heads(conn: Connection) -> list[TreeHead]:
    """Return every stored tree head on an open connection, by id."""
    rows = conn.execute(select(audit_tree_heads).order_by(audit_tree_heads.c.id))
    return [head_from_row(row) for row in rows]


def latest_head(store: Store) -> TreeHead | None:
    """Return the newest stored tree head, or None before the first checkpoint."""
    with store.connect() as conn:
        row = conn.execute(
            select(audit_tree_heads).order_by(audit_tree_heads.c.id.desc()).limit(1)
        ).first()
    return None if row is None else head_from_row(row)


def write_head(head: TreeHead, path: Path) -> None:
    """Export a tree head to a JSON file (keep it where the database's admins cannot)."""
    Path(path).write_text(json.dumps(head.to_dict(), indent=2) + "\n", encoding="utf-8")


def read_head(path: Path) -> TreeHead:
    """Read an exported tree head (``ValueError`` naming the file if it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read tree head file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a tree head (expected a JSON object)")
    try:
        return TreeHead.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}; export one with `crossbeat audit checkpoint`") from exc


def prove_inclusion(store: Store, seq: int, tree_size: int) -> list[str]:
    """Return the Merkle audit path showing event ``seq`` is in the tree of ``tree_size``.

    Parameters
    ----------
    store
        The store holding the log.
    seq
        The event (1-based; it is leaf ``seq - 1``).
    tree_size
        The size of a tree head the verifier holds.

    Returns
    -------
    list of str
        Hex hashes for :func:`crossbeat.audit.merkle.verify_inclusion`.
    """
    with store.connect() as conn:
        leaves = leaf_hashes(conn, tree_size)
    if not 1 <= seq <= tree_size:
        raise AuditError(f"event {seq} is not in a tree of {tree_size} events")
    return [node.hex() for node in inclusion_proof(leaves, seq - 1)]


def prove_consistency(store: Store, old_size: int, new_size: int) -> list[str]:
    """Return the Merkle proof that the log at ``old_size`` is a prefix of it at ``new_size``.

    Parameters
    ----------
    store
        The store holding the log.
    old_size, new_size
        Sizes of two tree heads, ``old_size <= new_size``.

    Returns
    -------
    list of str
        Hex hashes for :func:`crossbeat.audit.merkle.verify_consistency`.
    """
    if not 0 <= old_size <= new_size:
        raise AuditError(f"cannot prove size {old_size} is a prefix of size {new_size}")
    with store.connect() as conn:
        leaves = leaf_hashes(conn, new_size)
    return [node.hex() for node in consistency_proof(leaves, old_size)]
