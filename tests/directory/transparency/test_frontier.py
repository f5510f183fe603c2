"""A frontier of perfect subtrees, grown leaf by leaf, folds into the RFC 9162 root."""

from __future__ import annotations

import hashlib

from directory.transparency.merkle import (
    EMPTY_ROOT,
    leaf_hash,
    push_leaf,
    root_from_frontier,
    root_from_leaf_hashes,
)


def test_the_frontier_root_equals_the_reference_root_for_every_size_up_to_70():
    leaves = [leaf_hash(hashlib.sha256(bytes([i])).digest()) for i in range(70)]
    frontier: list[tuple[int, bytes]] = []
    assert root_from_frontier([]) == EMPTY_ROOT
    for size, leaf in enumerate(leaves, 1):
        completed = push_leaf(frontier, leaf)
        # the leaf, then each perfect subtree it closes: one per trailing 1 bit of its index
        assert completed[0] == (0, leaf)
        assert [height for height, _ in completed] == list(range((size & -size).bit_length()))
        for height, digest in completed:
            first = (size - 1) >> height << height
            assert digest == root_from_leaf_hashes(leaves[first:size])
        assert [height for height, _ in frontier] == [
            h for h in range(size.bit_length() - 1, -1, -1) if size >> h & 1
        ]
        assert root_from_frontier([d for _, d in frontier]) == root_from_leaf_hashes(leaves[:size])
