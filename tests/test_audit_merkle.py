"""RFC 6962 Merkle hashing and proofs agree with Certificate Transparency's vectors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbeat.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The reference leaves, roots and proofs used by Certificate Transparency's test suites
# (RFC 6962 implementations in C++, Go and others share them).
CT_DATA = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_CONSISTENCY = [
    (
        2,
        8,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_LEAVES = [leaf_hash(d) for d in CT_DATA]


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH written straight from its recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def test_empty_root_is_sha256_of_nothing():
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert root([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_roots_match_ct(size):
    assert root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_inclusion_matches_ct(index, size, proof):
    got = inclusion_proof(CT_LEAVES[:size], index)
    assert [p.hex() for p in got] == proof
    assert verify_inclusion(CT_LEAVES[index], index, size, got, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_matches_ct(old, new, proof):
    got = consistency_proof(CT_LEAVES[:new], old)
    assert [p.hex() for p in got] == proof
    assert verify_consistency(
        old, new, bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new]), got
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_frontier_root_equals_recursive_definition(data):
    leaves = [leaf_hash(d) for d in data]
    frontier = Frontier()
    for i, leaf in enumerate(leaves):
        frontier.append(leaf)
        assert frontier.size == i + 1
        assert len(frontier.nodes) == (i + 1).bit_count()
    assert frontier.root() == _reference_root(leaves)
    again = Frontier.from_hex(frontier.size, frontier.to_hex())
    assert again.root() == frontier.root()


def test_frontier_rejects_wrong_shape():
    with pytest.raises(ValueError, match="has 2 nodes"):
        Frontier(3, [EMPTY_ROOT])
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier().append(b"short")


LEAVES = [leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
ROOTS = [root(LEAVES[:n]) for n in range(41)]


def test_every_inclusion_proof_verifies_and_mangled_ones_fail():
    checked = 0
    for n in range(1, 41):
        for i in range(n):
            proof = inclusion_proof(LEAVES[:n], i)
            assert verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])
            assert not verify_inclusion(LEAVES[(i + 1) % 40], i, n, proof, ROOTS[n])
            assert not verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n - 1])
            assert not verify_inclusion(LEAVES[i], i, n, [*proof, EMPTY_ROOT], ROOTS[n])
            if proof:
                flipped = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
                assert not verify_inclusion(LEAVES[i], i, n, flipped, ROOTS[n])
                assert not verify_inclusion(LEAVES[i], i, n, proof[:-1], ROOTS[n])
            checked += 1
    assert checked == 820
    assert not verify_inclusion(LEAVES[0], 5, 5, [], ROOTS[5])


def test_every_consistency_proof_verifies_and_mangled_ones_fail():
    for new in range(41):
        for old in range(new + 1):
            proof = consistency_proof(LEAVES[:new], old)
            assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
            if 0 < old < new:
                assert proof
                other = ROOTS[old - 1]
                assert not verify_consistency(old, new, other, ROOTS[new], proof)
                assert not verify_consistency(old, new, ROOTS[old], ROOTS[new - 1], proof)
                assert not verify_consistency(old, new, ROOTS[old], ROOTS[new], proof[:-1])
                assert not verify_consistency(
                    old, new, ROOTS[old], ROOTS[new], [*proof, EMPTY_ROOT]
                )
    assert not verify_consistency(5, 3, ROOTS[5], ROOTS[3], [])
    assert not verify_consistency(4, 4, ROOTS[4], ROOTS[5], [])


def test_proof_requests_outside_the_tree_are_refused():
    with pytest.raises(ValueError):
        inclusion_proof(LEAVES[:4], 4)
    with pytest.raises(ValueError):
        consistency_proof(LEAVES[:4], 5)
