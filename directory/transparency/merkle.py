"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and their verification.

Pure Python (no Django). Hashes are raw 32-byte SHA-256 digests. Proof generation comes in two
forms: from a list of leaf hashes (reference) and from a ``subtree_hash(start, end)`` callable that
is only ever asked for perfect, aligned subtrees (power-of-two size, ``start`` a multiple of it),
so a log can serve proofs from stored subtree hashes. Verification follows RFC 9162 §2.1.3.2 and
§2.1.4.2, in the formulation of transparency-dev/merkle's ``proof`` package.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]
"""``subtree_hash(start, end)``: the Merkle tree hash of leaves ``[start, end)``."""


class ProofError(ValueError):
    """An inclusion or consistency proof (or its parameters) is invalid."""


def leaf_hash(data: bytes) -> bytes:
    """Hash of a leaf entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH (RFC 9162 §2.1.1) of the given leaf hashes, computed level by level."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        # Pairing from the left and promoting an odd last node gives the same tree as MTH's split.
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


Frontier = list[tuple[int, bytes]]
"""A tree's frontier: the (height, hash) of the perfect subtrees it decomposes into, largest
(leftmost) first; a tree of N leaves has one subtree of height h for each bit h set in N."""


def push_leaf(frontier: Frontier, leaf: bytes) -> Frontier:
    """Append the leaf hash ``leaf`` to ``frontier``, in place.

    Returns the perfect subtrees the leaf completes, as (height, hash), the leaf itself first: the
    subtree of height h is the one holding leaf ``i`` at index ``i >> h`` of its level.
    """
    node = (0, leaf)
    completed = [node]
    # Two neighbours of equal height are the two halves of a new perfect subtree.
    while frontier and frontier[-1][0] == node[0]:
        height, left = frontier.pop()
        node = (height + 1, node_hash(left, node[1]))
        completed.append(node)
    frontier.append(node)
    return completed


def root_from_frontier(hashes: Sequence[bytes]) -> bytes:
    """MTH of a tree from the hashes of its frontier's subtrees, largest (leftmost) first."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for digest in reversed(hashes[:-1]):
        root = node_hash(digest, root)
    return root


def _range_hash(subtree_hash: SubtreeHash, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)`` built from perfect aligned subtrees (``start`` aligned)."""
    n = end - start
    if n & (n - 1) == 0:
        return subtree_hash(start, end)
    mid = start + _split(n)
    return node_hash(subtree_hash(start, mid), _range_hash(subtree_hash, mid, end))


def inclusion_proof_from(subtree_hash: SubtreeHash, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf-side sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} out of range for tree size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            proof.append(_range_hash(subtree_hash, mid, end))
            end = mid
        else:
            proof.append(subtree_hash(start, mid))
            start = mid
    proof.reverse()
    return proof


def consistency_proof_from(subtree_hash: SubtreeHash, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1); requires ``0 < size1 <= size2``."""
    if not 0 < size1 <= size2:
        raise ValueError(f"need 0 < size1 <= size2, got size1={size1}, size2={size2}")
    proof: list[bytes] = []
    start, end, whole = 0, size2, True  # ``whole``: SUBPROOF's b flag (still the full old tree)
    while size1 < end:
        mid = start + _split(end - start)
        if size1 <= mid:
            proof.append(_range_hash(subtree_hash, mid, end))
            end = mid
        else:
            proof.append(subtree_hash(start, mid))
            start, whole = mid, False
    if not whole:
        proof.append(_range_hash(subtree_hash, start, end))
    proof.reverse()
    return proof


def _list_subtree_hash(leaf_hashes: Sequence[bytes], size: int) -> SubtreeHash:
    if not 0 <= size <= len(leaf_hashes):
        raise ValueError(f"tree size {size} exceeds the {len(leaf_hashes)} leaf hashes given")
    return lambda start, end: root_from_leaf_hashes(leaf_hashes[start:end])


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Inclusion proof for leaf ``index`` in the tree of the first ``size`` leaf hashes."""
    return inclusion_proof_from(_list_subtree_hash(leaf_hashes, size), index, size)


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """Consistency proof between the trees of the first ``size1`` and ``size2`` leaf hashes."""
    return consistency_proof_from(_list_subtree_hash(leaf_hashes, size2), size1, size2)


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split the proof for ``index`` in a tree of ``size`` into (inner, border) lengths."""
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def _check_hashes(proof: Sequence[bytes], want: int) -> None:
    if len(proof) != want:
        raise ProofError(f"wrong proof length {len(proof)}, want {want}")
    if any(len(h) != HASH_SIZE for h in proof):
        raise ProofError(f"proof contains a hash that is not {HASH_SIZE} bytes")


def _chain(seed: bytes, proof: Sequence[bytes], inner: int, index: int, old: bool = False) -> bytes:
    """Hash ``seed`` up along ``proof``: ``inner`` siblings placed by the bits of ``index``,
    then border siblings (always on the left). With ``old``, right-hand inner siblings are
    skipped, giving the hash of the older, smaller version of the subtree.
    """
    for i, h in enumerate(proof[:inner]):
        if index >> i & 1:
            seed = node_hash(h, seed)
        elif not old:
            seed = node_hash(seed, h)
    for h in proof[inner:]:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2); raises ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf_hash)} bytes, want {HASH_SIZE}")
    inner, border = _decompose(index, size)
    _check_hashes(proof, inner + border)
    return _chain(leaf_hash, proof, inner, index)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)``; else ProofError."""
    if root_from_inclusion_proof(leaf_hash, index, size, proof) != root:
        raise ProofError("inclusion proof does not match the root hash")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that tree ``(size1, root1)`` is a prefix of ``(size2, root2)`` (RFC 9162 §2.1.4.2).

    Raises ProofError on failure. As in the transparency-dev test vectors, a proof from the empty
    tree (``size1 == 0``) is always refused, even when ``size2 == 0``.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"need 0 <= size1 <= size2, got size1={size1}, size2={size2}")
    if size1 == 0:
        raise ProofError("consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("tree sizes are equal but the proof is not empty")
        if root1 != root2:
            raise ProofError("tree sizes are equal but the root hashes differ")
        return
    if not proof:
        raise ProofError("empty consistency proof for different tree sizes")
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # the old tree's rightmost perfect subtree: 2^shift
    inner -= shift
    # The proof starts with that subtree's hash unless it is the whole old tree (then root1).
    seed, start = (root1, 0) if size1 == 1 << shift else (proof[0], 1)
    _check_hashes(proof, start + inner + border)
    rest, mask = proof[start:], (size1 - 1) >> shift
    if _chain(seed, rest, inner, mask, old=True) != root1:
        raise ProofError("consistency proof does not match the first root hash")
    if _chain(seed, rest, inner, mask) != root2:
        raise ProofError("consistency proof does not match the second root hash")
