"""Tests for directory.transparency.merkle against the transparency-dev/merkle test vectors."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest

from directory.transparency.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "testdata" / "merkle"
INCLUSION_FILES = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY_FILES = sorted((VECTORS / "consistency").rglob("*.json"))

# The leaves of the RFC 6962 / transparency-dev reference tree the vectors were generated from.
TEST_LEAVES = [
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
TEST_LEAF_HASHES = [leaf_hash(x) for x in TEST_LEAVES]
TEST_ROOTS = [  # MTH of the first 1..8 TEST_LEAVES
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
MAX_SIZE = 64


def _id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def _load(path: Path) -> dict:
    data = json.loads(path.read_text())
    for key in ("root", "root1", "root2", "leafHash"):
        if key in data:
            data[key] = base64.b64decode(data[key])
    data["proof"] = [base64.b64decode(p) for p in data["proof"] or []]
    return data


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, written out recursively."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _random_hashes(n: int, seed: int = 9162) -> list[bytes]:
    rng = random.Random(seed)
    return [leaf_hash(rng.randbytes(rng.randrange(0, 40))) for _ in range(n)]


LEAVES = _random_hashes(MAX_SIZE)
ROOTS = [root_from_leaf_hashes(LEAVES[:n]) for n in range(MAX_SIZE + 1)]


# --- transparency-dev test vectors ------------------------------------------------------------


def test_vectors_present() -> None:
    assert len(INCLUSION_FILES) == 98 and len(CONSISTENCY_FILES) == 98
    assert (VECTORS / "LICENSE").is_file() and (VECTORS / "README.md").is_file()


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (v["leafHash"], v["leafIdx"], v["treeSize"], v["proof"], v["root"])
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=_id)
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (v["size1"], v["size2"], v["proof"], v["root1"], v["root2"])
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def _happy(files: list[Path]) -> list[Path]:
    return [p for p in files if not json.loads(p.read_text())["wantErr"]]


@pytest.mark.parametrize("path", _happy(INCLUSION_FILES), ids=_id)
def test_inclusion_vector_proof_is_generated(path: Path) -> None:
    v = _load(path)
    idx, size = v["leafIdx"], v["treeSize"]
    for leaves in (TEST_LEAF_HASHES, [v["leafHash"]]):
        rebuilt = size <= len(leaves) and leaves[idx] == v["leafHash"]
        if rebuilt and root_from_leaf_hashes(leaves[:size]) == v["root"]:
            assert inclusion_proof(leaves, idx, size) == v["proof"]
            return
    pytest.skip("cannot rebuild the tree of this vector")


@pytest.mark.parametrize("path", _happy(CONSISTENCY_FILES), ids=_id)
def test_consistency_vector_proof_is_generated(path: Path) -> None:
    v = _load(path)
    size1, size2 = v["size1"], v["size2"]
    if size1 == size2:  # the proof is empty whatever the leaves
        assert consistency_proof(LEAVES, size1, size2) == v["proof"] == []
        return
    assert size2 <= len(TEST_LEAF_HASHES)
    assert root_from_leaf_hashes(TEST_LEAF_HASHES[:size1]) == v["root1"]
    assert root_from_leaf_hashes(TEST_LEAF_HASHES[:size2]) == v["root2"]
    assert consistency_proof(TEST_LEAF_HASHES, size1, size2) == v["proof"]


# --- hashing -------------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == TEST_ROOTS[0]
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_known_roots() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    for n, want in enumerate(TEST_ROOTS, start=1):
        assert root_from_leaf_hashes(TEST_LEAF_HASHES[:n]).hex() == want
        assert _mth(TEST_LEAF_HASHES[:n]).hex() == want


def test_root_matches_recursive_definition() -> None:
    for n in range(MAX_SIZE + 1):
        assert ROOTS[n] == _mth(LEAVES[:n])
    assert root_from_leaf_hashes(tuple(LEAVES)) == ROOTS[MAX_SIZE]


# --- round trips ---------------------------------------------------------------------------------


def _checked(size: int, calls: list[tuple[int, int]]):
    """A subtree_hash that only accepts perfect, aligned ranges inside the tree."""

    def subtree_hash(start: int, end: int) -> bytes:
        n = end - start
        assert 0 <= start < end <= size and n & (n - 1) == 0 and start % n == 0, (start, end)
        calls.append((start, end))
        return root_from_leaf_hashes(LEAVES[start:end])

    return subtree_hash


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_inclusion_round_trip(size: int) -> None:
    root = ROOTS[size]
    for index in range(size):
        proof = inclusion_proof(LEAVES, index, size)
        calls: list[tuple[int, int]] = []
        assert inclusion_proof_from(_checked(size, calls), index, size) == proof
        assert bool(calls) == (size > 1)
        leaf = LEAVES[index]
        verify_inclusion(leaf, index, size, proof, root)
        assert root_from_inclusion_proof(leaf, index, size, proof) == root
        for i, h in enumerate(proof):
            bad = [*proof[:i], _flip(h, 37 * i + index), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, bad, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof, _flip(root, index))
        with pytest.raises(ProofError):
            verify_inclusion(_flip(leaf, index), index, size, proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [*proof, root], root)
        if proof:
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, proof[:-1], root)
            with pytest.raises(ProofError):
                verify_inclusion(
                    leaf, index ^ 1 if index ^ 1 < size else index - 1, size, proof, root
                )
    for index in (size, size + 1, -1):
        with pytest.raises(ProofError):
            verify_inclusion(LEAVES[0], index, size, [], root)
        with pytest.raises(ValueError):
            inclusion_proof(LEAVES, index, size)


@pytest.mark.parametrize("size2", range(1, MAX_SIZE + 1))
def test_consistency_round_trip(size2: int) -> None:
    root2 = ROOTS[size2]
    for size1 in range(1, size2 + 1):
        root1 = ROOTS[size1]
        proof = consistency_proof(LEAVES, size1, size2)
        calls: list[tuple[int, int]] = []
        assert consistency_proof_from(_checked(size2, calls), size1, size2) == proof
        assert bool(calls) == (size1 < size2)
        verify_consistency(size1, size2, proof, root1, root2)
        for i, h in enumerate(proof):
            bad = [*proof[:i], _flip(h, 41 * i + size1), *proof[i + 1 :]]
            with pytest.raises(ProofError):
                verify_consistency(size1, size2, bad, root1, root2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, _flip(root1, size1), root2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root1, _flip(root2, size2))
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, [*proof, root1], root1, root2)
        if proof:
            with pytest.raises(ProofError):
                verify_consistency(size1, size2, proof[:-1], root1, root2)
        if size1 < size2:
            with pytest.raises(ProofError):  # swapped sizes
                verify_consistency(size2, size1, proof, root2, root1)
    with pytest.raises(ProofError):
        verify_consistency(0, size2, [], EMPTY_ROOT, root2)
    with pytest.raises(ValueError):
        consistency_proof(LEAVES, 0, size2)
    with pytest.raises(ValueError):
        consistency_proof(LEAVES[: size2 - 1], 1, size2)


def test_consistency_proofs_chain_from_every_smaller_size() -> None:
    """The old tree's leaves reappear: an inclusion proof in the new tree verifies each of them."""
    size1, size2 = 13, 50
    verify_consistency(size1, size2, consistency_proof(LEAVES, size1, size2), ROOTS[13], ROOTS[50])
    for index in range(size1):
        verify_inclusion(
            LEAVES[index], index, size2, inclusion_proof(LEAVES, index, size2), ROOTS[50]
        )


def test_malformed_hashes_are_refused_with_a_clear_message() -> None:
    proof = inclusion_proof(LEAVES, 3, 10)
    with pytest.raises(ProofError, match="not 32 bytes"):
        verify_inclusion(LEAVES[3], 3, 10, [*proof[:-1], proof[-1][:31]], ROOTS[10])
    with pytest.raises(ProofError, match="leaf hash is 31 bytes"):
        verify_inclusion(LEAVES[3][:31], 3, 10, proof, ROOTS[10])
    with pytest.raises(ProofError, match="wrong proof length"):
        verify_consistency(3, 10, consistency_proof(LEAVES, 3, 10)[1:], ROOTS[3], ROOTS[10])
