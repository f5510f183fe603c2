"""The log's Merkle tree state in the database: stored subtree hashes, roots and proofs.

Every perfect, aligned subtree gets one ``TreeNode`` row the moment its last leaf is appended, in
the append's transaction; rows are never changed. A root, an inclusion proof or a consistency proof
for any tree size N then needs at most ~2·log2(N) node hashes, read in one indexed query; nothing
re-reads the leaves. The hashing and proof shapes are those of ``directory.transparency.merkle``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connections

from directory.models import TreeNode
from directory.transparency import merkle
from registry.routers import reading

Key = tuple[int, int]  # (level, index): leaves [index·2^level, (index+1)·2^level)

_BATCH = 5000


def frontier_keys(size: int) -> list[Key]:
    """The perfect subtrees a tree of ``size`` leaves decomposes into, largest (leftmost) first."""
    keys, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def _key(start: int, end: int) -> Key:
    width = end - start
    level = width.bit_length() - 1
    if width <= 0 or width != 1 << level or start % width:
        raise ValueError(f"[{start}, {end}) is not a perfect aligned subtree")
    return level, start >> level


def fetch_nodes(keys: Iterable[Key]) -> dict[Key, bytes]:
    """The stored hashes of these subtrees, in one query; raises LookupError for a missing one."""
    wanted = set(keys)
    if not wanted:
        return {}
    by_level: dict[int, list[int]] = {}
    for level, index in wanted:
        by_level.setdefault(level, []).append(index)
    # Raw SQL: building this OR of per-level IN lists through the ORM costs more than running it.
    connection = connections[reading()]  # the replica for the read side (registry.routers)
    quote = connection.ops.quote_name
    level_col, index_col = quote("level"), quote("index")
    clauses, params = [], []
    for level, indexes in sorted(by_level.items()):
        clauses.append(
            f"({level_col} = %s AND {index_col} IN ({', '.join(['%s'] * len(indexes))}))"
        )
        params += [level, *indexes]
    sql = (
        f"SELECT {level_col}, {index_col}, {quote('hash')} "  # noqa: S608 (no input in the text)
        f"FROM {TreeNode._meta.db_table} WHERE {' OR '.join(clauses)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = {(level, index): bytes(digest) for level, index, digest in cursor.fetchall()}
    missing = wanted - found.keys()
    if missing:
        raise LookupError(f"tree nodes missing: {sorted(missing)[:5]}")
    return found


def extend(first: int, leaf_hashes: Sequence[bytes]) -> list[TreeNode]:
    """Add the leaves ``first, first+1, …`` to the stored tree; run in the append's transaction.

    Reads the old tree's frontier (one query, at most log2(first) rows), then inserts every new
    perfect subtree in bulk: about two rows per leaf.
    """
    frontier = [(level, digest) for (level, _index), digest in _frontier(first)]
    nodes: list[TreeNode] = []
    for leaf, digest in enumerate(leaf_hashes, first):
        for level, node in merkle.push_leaf(frontier, digest):
            nodes.append(TreeNode(level=level, index=leaf >> level, hash=node))
    TreeNode.objects.bulk_create(nodes, batch_size=_BATCH)
    return nodes


def _frontier(size: int) -> list[tuple[Key, bytes]]:
    keys = frontier_keys(size)
    found = fetch_nodes(keys)
    return [(key, found[key]) for key in keys]


def root(size: int) -> bytes:
    """The Merkle tree hash of the first ``size`` leaves, from at most log2(size) stored rows."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return merkle.root_from_frontier([digest for _key, digest in _frontier(size)])


def _batched(build) -> list[bytes]:
    """Run a proof builder twice: once to learn which subtrees it needs, then on one query's rows.

    The shape of a proof depends only on the sizes and indexes, never on the hash values.
    """
    wanted: list[Key] = []

    def record(start: int, end: int) -> bytes:
        wanted.append(_key(start, end))
        return merkle.EMPTY_ROOT

    build(record)
    found = fetch_nodes(wanted)
    return build(lambda start, end: found[_key(start, end)])


def inclusion_proof(index: int, size: int) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the tree of ``size`` leaves: one query."""
    return _batched(lambda subtree: merkle.inclusion_proof_from(subtree, index, size))


def consistency_proof(size1: int, size2: int) -> list[bytes]:
    """Consistency proof from the tree of ``size1`` leaves to that of ``size2``: one query."""
    return _batched(lambda subtree: merkle.consistency_proof_from(subtree, size1, size2))


def level_hashes(level: int, start: int, count: int) -> list[bytes]:
    """``count`` consecutive stored hashes of one level from ``start`` (a C2SP tile's content)."""
    rows = list(
        TreeNode.objects.filter(level=level, index__gte=start, index__lt=start + count)
        .order_by("index")
        .values_list("hash", flat=True)
    )
    return [bytes(digest) for digest in rows]
