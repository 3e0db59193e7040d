"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.

Pure functions over leaf hashes (32-byte SHA-256 digests), no storage. The audit log's
entry hashes are the leaf hashes, so the same tree heads, inclusion proofs and
consistency proofs that Certificate Transparency uses work for it:

* leaf hash ``H(0x00 || data)``, interior node ``H(0x01 || left || right)``;
* the root of ``n`` leaves splits at the largest power of two below ``n``;
* :class:`Frontier` keeps the O(log n) perfect-subtree roots needed to extend the tree
  one leaf at a time and to compute its root, so long logs stream in bounded memory.

The algorithms follow RFC 9162 sections 2.1.1 to 2.1.4.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32

#: Root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two strictly below ``n`` (``n`` > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash of a list of leaf hashes.

    Parameters
    ----------
    leaves
        Leaf hashes in log order.

    Returns
    -------
    bytes
        The 32-byte root (:data:`EMPTY_ROOT` for no leaves).
    """
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


class Frontier:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves.

    Their heights are the set bits of ``size``, largest first. Appending a leaf merges
    equal-height subtrees like a binary counter; the root folds them right to left.

    Parameters
    ----------
    size
        Number of leaves the frontier summarises.
    nodes
        The subtree roots, largest subtree first (``popcount(size)`` of them).
    """

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(
                f"a frontier of {size} leaves has {size.bit_count()} nodes, not {len(nodes)}"
            )
        if any(len(node) != HASH_SIZE for node in nodes):
            raise ValueError("frontier nodes must be 32-byte hashes")
        self.size = size
        self.nodes = list(nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash to the right of the tree."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        n = self.size
        self.nodes.append(leaf)
        while n & 1:
            right = self.nodes.pop()
            left = self.nodes.pop()
            self.nodes.append(node_hash(left, right))
            n >>= 1
        self.size += 1

    def root(self) -> bytes:
        """Return the Merkle tree hash of the leaves appended so far."""
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            acc = node_hash(node, acc)
        return acc

    def copy(self) -> Frontier:
        """Return an independent copy."""
        return Frontier(self.size, self.nodes)

    def to_hex(self) -> list[str]:
        """Return the nodes as hex strings (for storage as JSON)."""
        return [node.hex() for node in self.nodes]

    @classmethod
    def from_hex(cls, size: int, nodes: Sequence[str]) -> Frontier:
        """Rebuild a frontier from :meth:`to_hex` output."""
        return cls(size, [bytes.fromhex(node) for node in nodes])


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path proving leaf ``index`` is in the tree of ``leaves``.

    Parameters
    ----------
    leaves
        All leaf hashes of the tree (its size is ``len(leaves)``).
    index
        Zero-based position of the leaf.

    Returns
    -------
    list of bytes
        RFC 9162 ``PATH(index, leaves)``, bottom-up.
    """
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    return _path(index, leaves)


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), root(leaves[k:])]
    return [*_path(m - k, leaves[k:]), root(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the proof that the tree of ``old_size`` leaves is a prefix of ``leaves``.

    Parameters
    ----------
    leaves
        All leaf hashes of the newer tree.
    old_size
        Size of the older tree (``0 <= old_size <= len(leaves)``).

    Returns
    -------
    list of bytes
        RFC 9162 ``PROOF(old_size, leaves)``; empty when ``old_size`` is 0 or the sizes
        are equal.
    """
    if not 0 <= old_size <= len(leaves):
        raise ValueError(f"no tree of {old_size} leaves inside a tree of {len(leaves)}")
    if old_size in (0, len(leaves)):
        return []
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """Return whether ``proof`` shows ``leaf`` at ``index`` in the tree with that root.

    Parameters
    ----------
    leaf
        The leaf hash.
    index
        Its zero-based position.
    size
        The tree size the root belongs to.
    proof
        The audit path from :func:`inclusion_proof`.
    expected_root
        The tree's root (from a signed tree head).

    Returns
    -------
    bool
        True only when the path recomputes exactly that root (RFC 9162 2.1.3.2).
    """
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, acc = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            acc = node_hash(p, acc)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            acc = node_hash(acc, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and acc == expected_root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether ``proof`` shows the old tree is a prefix of the new one.

    Parameters
    ----------
    old_size, new_size
        The two tree sizes (``old_size <= new_size``).
    old_root, new_root
        Their roots (from two signed tree heads).
    proof
        The proof from :func:`consistency_proof`.

    Returns
    -------
    bool
        True only when the proof recomputes both roots (RFC 9162 2.1.4.2).
    """
    if not 0 <= old_size <= new_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
