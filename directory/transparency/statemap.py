"""The state map: a compact binary sparse Merkle tree from 32-byte paths to 32-byte values.

Pure Python (no Django, stdlib only). A log-backed map in the manner of KEYTRANS, Meta's AKD and
Diem's Jellyfish Merkle tree: keys are inserted or updated, never deleted.

The canonical tree: the subtree at depth ``d`` with prefix ``p`` (the first ``d`` bits of a path)
hashes to ``EMPTY`` when no path in the map starts with ``p``, to ``leaf_hash(path, value)`` when
exactly one does (a leaf sits at the highest depth where it is alone), and otherwise to
``node_hash(hash(p + 0), hash(p + 1))``. Internal nodes are not compressed, so an internal node
always has at least two leaves below it, and a node is stored under ``(depth, prefix)``.

A multiproof for a set of query paths is the pre-order traversal of the tree pruned to those paths:
a subtree no query path enters is ``0x03`` + its hash; any other node is ``0x00`` (empty),
``0x01`` + path + value (a leaf) or ``0x02`` (internal) followed by its left and right children.

One ``PartialTree`` serves the server (loaded from stored nodes, updated, encoded), the witness
(built from an old proof, updated, re-hashed to check the new root) and the client (verified).
"""

from __future__ import annotations

import gc
import hashlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise

HASH_SIZE = 32
PATH_BITS = 256
EMPTY = bytes(HASH_SIZE)
"""The hash of an empty subtree, and the root of the empty map."""

TAG_EMPTY = 0x00
TAG_LEAF = 0x01
TAG_INTERNAL = 0x02
TAG_OPAQUE = 0x03
"""Node kinds in a multiproof (and, for the first three, in a partial tree)."""
TAG_OWN_LEAF = 0x04
"""In a path proof only: the leaf is the query path's own, its value the verifier's."""

_sha256 = hashlib.sha256
_LEAF_SIZE = 1 + 2 * HASH_SIZE
_LEAVES_AT_LEAST = (0, 1, 2)  # leaves below an EMPTY, leaf or internal node (by tag)
_OPAQUE_SIZE = 1 + HASH_SIZE


class MapProofError(ValueError):
    """A state-map multiproof is malformed, non-canonical or does not match the root."""


def path_of(key: str) -> bytes:
    """The path of a map key: SHA-256 of its UTF-8 bytes."""
    return _sha256(key.encode()).digest()


def value_of(record: bytes) -> bytes:
    """The value stored for a record: SHA-256 of its canonical bytes."""
    return _sha256(record).digest()


def leaf_hash(path: bytes, value: bytes) -> bytes:
    """Hash of a leaf: SHA-256(0x00 || path || value)."""
    return _sha256(b"\x00" + path + value).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an internal node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def path_bit(path: bytes, index: int) -> int:
    """Bit ``index`` of a path, most significant bit of the first byte being bit 0 (0 = left)."""
    return (path[index >> 3] >> (7 - (index & 7))) & 1


def prefix_bytes(path: bytes, depth: int) -> bytes:
    """The first ``ceil(depth / 8)`` bytes of ``path``, bits at positions >= ``depth`` zeroed."""
    if not 0 <= depth <= PATH_BITS:
        raise ValueError(f"depth {depth} out of range 0..{PATH_BITS}")
    size = (depth + 7) >> 3
    spare = depth & 7
    if not spare:
        return bytes(path[:size])
    return bytes(path[: size - 1]) + bytes((path[size - 1] & (0xFF00 >> spare) & 0xFF,))


def node_id(depth: int, prefix: bytes) -> bytes:
    """The storage key of the node at ``(depth, prefix)``: depth as a big-endian uint16, prefix."""
    if len(prefix) != (depth + 7) >> 3:
        raise ValueError(
            f"the prefix at depth {depth} is {(depth + 7) >> 3} bytes, not {len(prefix)}"
        )
    return depth.to_bytes(2, "big") + prefix


def node_id_of(path: bytes, depth: int) -> bytes:
    """The storage key of the node at ``depth`` on the way to ``path``."""
    return node_id(depth, prefix_bytes(path, depth))


_HEADS = [depth.to_bytes(2, "big") for depth in range(PATH_BITS + 1)]
_SIZES = [(depth + 7) >> 3 for depth in range(PATH_BITS + 1)]
_PADS = [(size << 3) - depth for depth, size in enumerate(_SIZES)]


def _prefix(depth: int, top: int) -> bytes:
    """``prefix_bytes`` of the node at ``depth`` whose prefix, as an integer, is ``top``."""
    return (top << _PADS[depth]).to_bytes(_SIZES[depth], "big")


def _id(depth: int, top: int) -> bytes:
    """``node_id`` of the node at ``depth`` whose prefix, as a ``depth``-bit integer, is ``top``."""
    return _HEADS[depth] + (top << _PADS[depth]).to_bytes(_SIZES[depth], "big")


@dataclass(frozen=True, slots=True)
class StoredNode:
    """One stored node of the map: a leaf row carries its path and value, an internal row neither.

    Empty subtrees are never stored: a missing ``(depth, prefix)`` below an internal node is EMPTY.
    """

    depth: int
    prefix: bytes
    hash: bytes
    leaf_path: bytes | None = None
    leaf_value: bytes | None = None

    @property
    def node_id(self) -> bytes:
        """The key the node is stored under (see ``node_id``)."""
        return self.depth.to_bytes(2, "big") + self.prefix

    @property
    def is_leaf(self) -> bool:
        """Whether this row is a leaf (else an internal node)."""
        return self.leaf_path is not None

    @classmethod
    def from_row(cls, node, digest, leaf_path=None, leaf_value=None) -> StoredNode:
        """A node from a stored row (its id, hash, leaf path and value; any bytes-like)."""
        node = bytes(node)
        return cls(
            depth=int.from_bytes(node[:2], "big"),
            prefix=node[2:],
            hash=bytes(digest),
            leaf_path=bytes(leaf_path) if leaf_path is not None else None,
            leaf_value=bytes(leaf_value) if leaf_value is not None else None,
        )


Fetch = Callable[[list[bytes]], Mapping[bytes, StoredNode]]
"""``fetch(ids)``: the stored nodes among the given node ids (a missing id is an EMPTY subtree)."""


def _check_key(path: bytes, what: str = "path") -> bytes:
    path = bytes(path)
    if len(path) != HASH_SIZE:
        raise ValueError(f"a {what} is {HASH_SIZE} bytes, not {len(path)}")
    return path


def _query_paths(paths: Iterable[bytes]) -> list[bytes]:
    """The query paths, deduplicated and sorted (the order of a multiproof)."""
    return sorted({_check_key(p) for p in paths})


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of acyclic nodes are made: it would rescan
    the heap again and again for nothing (half the time of ``build`` at a million paths)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _split(depth: int, top: int) -> int:
    """The smallest path integer in the right child of the node at ``(depth, top)``."""
    return ((top << 1) | 1) << (PATH_BITS - 1 - depth)


# Full trees


def _canonical(
    items: Iterable[tuple[bytes, bytes]], record: Callable[[StoredNode], object] | None
) -> bytes:
    """The root of the canonical tree of ``items``, passing every node to ``record`` if given.

    The paths are walked in order with a stack of branching nodes still waiting for their right
    child. Two sorted neighbours diverge at the depth of their lowest common ancestor, so a leaf
    sits one below the deeper of its two neighbour splits, and a finished subtree is lifted through
    the single-child (EMPTY-sibling) internal nodes up to the child slot of its parent.
    """
    table = {_check_key(p): _check_key(v, "value") for p, v in items}
    keys = sorted(table)
    if not keys:
        return EMPTY
    ints = [int.from_bytes(k, "big") for k in keys]
    splits = [PATH_BITS - (a ^ b).bit_length() for a, b in pairwise(ints)]
    splits.append(-1)
    sha = _sha256

    def lift(number: int, digest: bytes, start: int, stop: int) -> bytes:
        # The internal nodes from depth start - 1 up to stop whose other child is EMPTY.
        for depth in range(start - 1, stop - 1, -1):
            if (number >> (PATH_BITS - 1 - depth)) & 1:
                digest = sha(b"\x01" + EMPTY + digest).digest()
            else:
                digest = sha(b"\x01" + digest + EMPTY).digest()
            if record is not None:
                prefix = _prefix(depth, number >> (PATH_BITS - depth))
                record(StoredNode(depth, prefix, digest))
        return digest

    stack: list[tuple[int, bytes]] = []  # (depth of a branching node, hash of its left child)
    previous = -1
    digest = EMPTY
    depth = 0
    for path, number, after in zip(keys, ints, splits, strict=True):
        value = table[path]
        depth = max(previous, after) + 1
        digest = sha(b"\x00" + path + value).digest()
        if record is not None:
            prefix = _prefix(depth, number >> (PATH_BITS - depth))
            record(StoredNode(depth, prefix, digest, path, value))
        while stack and stack[-1][0] > after:
            branch, left = stack.pop()
            if depth > branch + 1:
                digest = lift(number, digest, depth, branch + 1)
            digest = sha(b"\x01" + left + digest).digest()
            depth = branch
            if record is not None:
                prefix = _prefix(depth, number >> (PATH_BITS - depth))
                record(StoredNode(depth, prefix, digest))
        if after >= 0:
            stack.append((after, lift(number, digest, depth, after + 1)))
        previous = after
    return lift(ints[-1], digest, depth, 0)


@_gc_paused()
def build(items: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, list[StoredNode]]:
    """The root and every stored node of the canonical tree of ``(path, value)`` pairs.

    A repeated path keeps its last value.
    """
    nodes: list[StoredNode] = []
    return _canonical(items, nodes.append), nodes


@_gc_paused()
def build_batches(
    items: Iterable[tuple[bytes, bytes]],
    sink: Callable[[list[StoredNode]], object],
    *,
    batch_size: int = 100_000,
) -> bytes:
    """The root of the canonical tree of ``(path, value)`` pairs, as ``build`` gives it, handing
    its stored nodes to ``sink`` in lists of up to ``batch_size`` (in ``build``'s order) instead
    of returning them all: a map of ten million paths has about 24 million nodes, which a list
    would hold in memory at once. A repeated path keeps its last value.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch: list[StoredNode] = []
    append = batch.append

    def record(node: StoredNode) -> None:
        append(node)
        if len(batch) >= batch_size:
            sink(batch[:])
            batch.clear()

    root = _canonical(items, record)
    if batch:
        sink(batch[:])
        batch.clear()
    return root


def root_of(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of the canonical tree of ``(path, value)`` pairs (last value wins)."""
    return _canonical(items, None)


# Partial trees


class _Node:
    """A node of a partial tree: EMPTY, a leaf, an internal node, or an opaque subtree (its hash).

    ``digest`` is None while a hash has to be (re)computed; ``changed`` marks nodes set() made.
    """

    __slots__ = ("changed", "digest", "kind", "left", "path", "right", "value")

    def __init__(
        self,
        kind: int,
        digest: bytes | None = None,
        path: bytes | None = None,
        value: bytes | None = None,
        left: _Node | None = None,
        right: _Node | None = None,
        changed: bool = False,
    ) -> None:
        self.kind = kind
        self.digest = digest
        self.path = path
        self.value = value
        self.left = left
        self.right = right
        self.changed = changed


_EMPTY_NODE = _Node(TAG_EMPTY, EMPTY)  # shared and never mutated: set() replaces it


def _opaque(digest: bytes) -> _Node:
    return _EMPTY_NODE if digest == EMPTY else _Node(TAG_OPAQUE, digest)


def _digest(node: _Node) -> bytes:
    digest = node.digest
    if digest is None:
        if node.kind == TAG_LEAF:
            assert node.path is not None and node.value is not None
            digest = leaf_hash(node.path, node.value)
        else:
            assert node.left is not None and node.right is not None
            digest = node_hash(_digest(node.left), _digest(node.right))
        node.digest = digest
    return digest


def _parse(
    root: bytes, paths: Iterable[bytes], proof: bytes, build_tree: bool
) -> tuple[list[bytes], list[bytes | None], _Node | None]:
    """Check a multiproof; return the sorted query paths, their values and (if asked) the tree."""
    keys = _query_paths(paths)
    ints = [int.from_bytes(k, "big") for k in keys]
    found: list[bytes | None] = [None] * len(keys)
    data = bytes(proof)
    end = len(data)
    pos = 0
    sha = _sha256

    def opaque() -> bytes:
        nonlocal pos
        if pos >= end:
            raise MapProofError("truncated proof")
        if data[pos] != TAG_OPAQUE:
            raise MapProofError(f"expected an opaque subtree at byte {pos}")
        if pos + _OPAQUE_SIZE > end:
            raise MapProofError("truncated proof")
        digest = data[pos + 1 : pos + _OPAQUE_SIZE]
        pos += _OPAQUE_SIZE
        return digest

    def subtree(depth: int, lo: int, hi: int) -> tuple[int, bytes, _Node | None]:
        # The node at ``depth`` that query paths ints[lo:hi] (at least one) go through.
        nonlocal pos
        if pos >= end:
            raise MapProofError("truncated proof")
        tag = data[pos]
        if tag == TAG_INTERNAL:
            if depth >= PATH_BITS:
                raise MapProofError("internal node below the last path bit")
            pos += 1
            shift = PATH_BITS - 1 - depth
            mid = bisect_left(ints, ((ints[lo] >> shift) | 1) << shift, lo, hi)
            left_node = right_node = None
            if mid == lo:
                left_kind, left = TAG_OPAQUE, opaque()
            else:
                left_kind, left, left_node = subtree(depth + 1, lo, mid)
            if mid == hi:
                right_kind, right = TAG_OPAQUE, opaque()
            else:
                right_kind, right, right_node = subtree(depth + 1, mid, hi)
            # An internal node has two leaves below it. An opaque child may hold two unless it
            # is EMPTY (one holding a single leaf cannot be told apart from here).
            if left_kind == TAG_OPAQUE:
                left_kind = TAG_EMPTY if left == EMPTY else TAG_INTERNAL
            if right_kind == TAG_OPAQUE:
                right_kind = TAG_EMPTY if right == EMPTY else TAG_INTERNAL
            if _LEAVES_AT_LEAST[left_kind] + _LEAVES_AT_LEAST[right_kind] < 2:
                raise MapProofError(f"non-canonical internal node at depth {depth}")
            digest = sha(b"\x01" + left + right).digest()
            node = None
            if build_tree:
                node = _Node(
                    TAG_INTERNAL,
                    digest,
                    left=_opaque(left) if left_node is None else left_node,
                    right=_opaque(right) if right_node is None else right_node,
                )
            return TAG_INTERNAL, digest, node
        if tag == TAG_LEAF:
            if pos + _LEAF_SIZE > end:
                raise MapProofError("truncated proof")
            leaf_path = data[pos + 1 : pos + 1 + HASH_SIZE]
            value = data[pos + 1 + HASH_SIZE : pos + _LEAF_SIZE]
            pos += _LEAF_SIZE
            number = int.from_bytes(leaf_path, "big")
            if depth and (number ^ ints[lo]) >> (PATH_BITS - depth):
                raise MapProofError(f"leaf outside its subtree at depth {depth}")
            index = bisect_left(ints, number, lo, hi)
            if index < hi and ints[index] == number:
                found[index] = value
            digest = sha(b"\x00" + leaf_path + value).digest()
            node = _Node(TAG_LEAF, digest, leaf_path, value) if build_tree else None
            return TAG_LEAF, digest, node
        if tag == TAG_EMPTY:
            pos += 1
            return TAG_EMPTY, EMPTY, _EMPTY_NODE
        if tag == TAG_OPAQUE:
            raise MapProofError(f"opaque subtree at byte {pos} where query paths go")
        raise MapProofError(f"unknown node tag {tag:#04x} at byte {pos}")

    if keys:
        _, digest, tree = subtree(0, 0, len(keys))
    else:
        digest = opaque()
        tree = _opaque(digest)
    if pos != end:
        raise MapProofError(f"{end - pos} trailing bytes after the proof")
    if digest != root:
        raise MapProofError("proof does not match the root")
    return keys, found, tree


def verify_multiproof(
    root: bytes, paths: Iterable[bytes], proof: bytes
) -> dict[bytes, bytes | None]:
    """Check a multiproof against ``root``: each query path's value, or None where it is absent.

    Raises MapProofError when the proof is malformed, non-canonical or for another root or paths.
    """
    keys, found, _ = _parse(root, paths, proof, build_tree=False)
    return dict(zip(keys, found, strict=True))


def expand_path(path: bytes, proof: bytes, value: bytes | None) -> bytes:
    """The multiproof of ``[path]`` that a path proof (``PartialTree.encode_path``) stands for,
    ``value`` being the value the verifier expects at ``path`` (None: it expects none). Raises
    MapProofError when the path proof is malformed; ``verify_multiproof`` checks the rest."""
    path = _check_key(path)
    data = bytes(proof)
    if not data:
        raise MapProofError("empty path proof")
    depth = data[0]
    pos = 1 + ((depth + 7) >> 3)
    if len(data) < pos:
        raise MapProofError("truncated path proof")
    bitmap = data[1:pos]
    if depth & 7 and bitmap[-1] & (0xFF >> (depth & 7)):
        raise MapProofError("non-canonical path proof: bits set past its depth")
    before: list[bytes] = []
    after: list[bytes] = []
    for index in range(depth):
        if bitmap[index >> 3] & (0x80 >> (index & 7)):
            sibling = EMPTY
        else:
            if pos + HASH_SIZE > len(data):
                raise MapProofError("truncated path proof")
            sibling = data[pos : pos + HASH_SIZE]
            pos += HASH_SIZE
            if sibling == EMPTY:
                raise MapProofError("non-canonical path proof: an EMPTY sibling hashed")
        before.append(b"\x02")
        if path_bit(path, index):
            before.append(b"\x03" + sibling)
        else:
            after.append(b"\x03" + sibling)
    end = data[pos:]
    if end == bytes((TAG_OWN_LEAF,)):
        if value is None:
            raise MapProofError("the path proof claims a leaf the verifier has no record for")
        end = bytes((TAG_LEAF,)) + path + _check_key(value, "value")
    elif end[:1] == bytes((TAG_LEAF,)) and len(end) == _LEAF_SIZE:
        if end[1 : 1 + HASH_SIZE] == path:
            raise MapProofError("non-canonical path proof: the key's own leaf spelled out")
    elif end != bytes((TAG_EMPTY,)):
        raise MapProofError("malformed end of a path proof")
    return b"".join(before) + end + b"".join(reversed(after))


_Pending = tuple[int, int, int, int, _Node, bool]
"""A subtree ``load`` still has to read: (depth, prefix as an integer, the query paths ``lo:hi``
below it, the parent to attach it to, whether it is the parent's right child)."""


def _wanted(pending: list[_Pending], ints: list[int], lookahead: int) -> set[bytes]:
    """The node ids one round of ``load`` asks for."""
    wanted: set[bytes] = set()
    add = wanted.add
    heads, sizes, pads = _HEADS, _SIZES, _PADS
    for depth, top, lo, hi, _, _ in pending:
        if lo == hi:
            add(_id(depth, top))
            continue
        stop = min(depth + lookahead, PATH_BITS + 1)
        previous = None
        for number in ints[lo:hi]:
            # Sorted neighbours share their nodes down to the depth where they diverge.
            start = depth
            if previous is not None:
                start = max(depth, PATH_BITS + 1 - (number ^ previous).bit_length())
            previous = number
            for d in range(start, stop):
                bits = number >> (PATH_BITS - d)
                add(heads[d] + (bits << pads[d]).to_bytes(sizes[d], "big"))
                if d > depth:  # the sibling: the other child of the node above
                    add(heads[d] + ((bits ^ 1) << pads[d]).to_bytes(sizes[d], "big"))
    return wanted


def _attach(
    pending: list[_Pending], rows: Mapping[bytes, StoredNode], ints: list[int], lookahead: int
) -> list[_Pending]:
    """Turn one round's rows into nodes under their parents; return the subtrees left to read."""
    later: list[_Pending] = []

    def resolve(
        depth: int, top: int, lo: int, hi: int, stop: int, parent: _Node, right: bool
    ) -> None:
        if depth >= stop:
            later.append((depth, top, lo, hi, parent, right))
            return
        row = rows.get(_id(depth, top))
        node: _Node
        if row is None:
            node = _EMPTY_NODE
        elif row.leaf_path is not None:
            if depth and int.from_bytes(row.leaf_path, "big") >> (PATH_BITS - depth) != top:
                raise ValueError(f"stored leaf outside its node at depth {depth}")
            assert row.leaf_value is not None
            node = _Node(TAG_LEAF, None, row.leaf_path, row.leaf_value)
        elif lo == hi:
            node = _opaque(row.hash)
        else:
            if depth >= PATH_BITS:
                raise ValueError("stored internal node below the last path bit")
            node = _Node(TAG_INTERNAL)
            mid = bisect_left(ints, _split(depth, top), lo, hi)
            resolve(depth + 1, top << 1, lo, mid, stop, node, False)
            resolve(depth + 1, (top << 1) | 1, mid, hi, stop, node, True)
        if right:
            parent.right = node
        else:
            parent.left = node

    for depth, top, lo, hi, parent, right in pending:
        # A subtree no query path enters is one row; the others read ``lookahead`` depths.
        stop = depth + 1 if lo == hi else min(depth + lookahead, PATH_BITS + 1)
        resolve(depth, top, lo, hi, stop, parent, right)
    return later


class PartialTree:
    """The part of the map that covers a set of paths: enough to read, update and re-hash them.

    A path is covered when its walk from the root ends at a known leaf or EMPTY node rather than
    at an opaque subtree; ``get``, ``set`` and ``encode`` raise KeyError for any other path.
    """

    __slots__ = ("_paths", "_root")

    def __init__(self, root: _Node, paths: Iterable[bytes]) -> None:
        """Use ``from_multiproof`` or ``load``."""
        self._root = root
        self._paths = set(paths)

    @classmethod
    @_gc_paused()
    def from_multiproof(cls, root: bytes, paths: Iterable[bytes], proof: bytes) -> PartialTree:
        """The partial tree a multiproof describes, verified as ``verify_multiproof`` does."""
        keys, _, tree = _parse(root, paths, proof, build_tree=True)
        assert tree is not None
        return cls(tree, keys)

    @classmethod
    @_gc_paused()
    def load(cls, paths: Iterable[bytes], fetch: Fetch, *, lookahead: int = 8) -> PartialTree:
        """The partial tree covering ``paths``, read from stored nodes through ``fetch``.

        All paths walk down together. Each round is one ``fetch`` call for the nodes at the next
        ``lookahead`` depths of every unfinished walk, together with their siblings (both children
        of each possible internal node on the way), so a walk of depth D costs about
        D / lookahead calls however many paths there are. Nodes below a leaf or an EMPTY subtree
        are asked for and ignored.
        """
        if lookahead < 1:
            raise ValueError("lookahead must be at least 1")
        keys = _query_paths(paths)
        ints = [int.from_bytes(k, "big") for k in keys]
        holder = _Node(TAG_INTERNAL)  # its left child is the root
        pending: list[_Pending] = [(0, 0, 0, len(ints), holder, False)]
        while pending:
            rows = fetch(list(_wanted(pending, ints, lookahead)))
            pending = _attach(pending, rows, ints, lookahead)
        assert holder.left is not None
        return cls(holder.left, keys)

    def _walk(self, path: bytes) -> tuple[list[_Node], _Node]:
        """The internal nodes on the way to ``path`` and the node its walk ends at."""
        chain: list[_Node] = []
        node = self._root
        depth = 0
        while node.kind == TAG_INTERNAL:
            chain.append(node)
            node = node.right if path_bit(path, depth) else node.left  # type: ignore[assignment]
            depth += 1
        if node.kind == TAG_OPAQUE:
            raise KeyError(f"path {path.hex()} is not covered by this partial tree")
        return chain, node

    def get(self, path: bytes) -> bytes | None:
        """The value at ``path``, or None if the map does not hold it."""
        path = _check_key(path)
        _, node = self._walk(path)
        return node.value if node.kind == TAG_LEAF and node.path == path else None

    def set(self, path: bytes, value: bytes) -> None:
        """Insert or update ``path``; a leaf already there moves down to where the paths differ."""
        path = _check_key(path)
        value = _check_key(value, "value")
        chain, node = self._walk(path)
        self._paths.add(path)
        depth = len(chain)
        if node.kind == TAG_LEAF and node.path == path:
            if node.value == value:
                return
            new = _Node(TAG_LEAF, None, path, value, changed=True)
        elif node.kind == TAG_EMPTY:
            new = _Node(TAG_LEAF, None, path, value, changed=True)
        else:
            assert node.path is not None
            other = int.from_bytes(node.path, "big")
            split = PATH_BITS - (int.from_bytes(path, "big") ^ other).bit_length()
            mine = _Node(TAG_LEAF, None, path, value, changed=True)
            moved = _Node(TAG_LEAF, node.digest, node.path, node.value, changed=True)
            if path_bit(path, split):
                new = _Node(TAG_INTERNAL, None, left=moved, right=mine, changed=True)
            else:
                new = _Node(TAG_INTERNAL, None, left=mine, right=moved, changed=True)
            for d in range(split - 1, depth - 1, -1):
                if path_bit(path, d):
                    new = _Node(TAG_INTERNAL, None, left=_EMPTY_NODE, right=new, changed=True)
                else:
                    new = _Node(TAG_INTERNAL, None, left=new, right=_EMPTY_NODE, changed=True)
        if not chain:
            self._root = new
        elif path_bit(path, depth - 1):
            chain[-1].right = new
        else:
            chain[-1].left = new
        for ancestor in chain:
            ancestor.digest = None
            ancestor.changed = True

    def root(self) -> bytes:
        """The root hash of the map as this tree now holds it."""
        return _digest(self._root)

    def encode(self, paths: Iterable[bytes] | None = None) -> bytes:
        """The multiproof for ``paths`` (default: every path loaded, proved or set) against
        ``root()``; KeyError if one is not covered.
        """
        keys = sorted(self._paths) if paths is None else _query_paths(paths)
        if not keys:
            return bytes((TAG_OPAQUE,)) + self.root()
        ints = [int.from_bytes(k, "big") for k in keys]
        out: list[bytes] = []
        emit = out.append

        def encode(node: _Node, depth: int, lo: int, hi: int) -> None:
            if lo == hi:
                emit(b"\x03" + _digest(node))
            elif node.kind == TAG_INTERNAL:
                assert node.left is not None and node.right is not None
                emit(b"\x02")
                shift = PATH_BITS - 1 - depth
                mid = bisect_left(ints, ((ints[lo] >> shift) | 1) << shift, lo, hi)
                encode(node.left, depth + 1, lo, mid)
                encode(node.right, depth + 1, mid, hi)
            elif node.kind == TAG_LEAF:
                assert node.path is not None and node.value is not None
                emit(b"\x01" + node.path + node.value)
            elif node.kind == TAG_EMPTY:
                emit(b"\x00")
            else:
                raise KeyError(f"path {keys[lo].hex()} is not covered by this partial tree")

        encode(self._root, 0, 0, len(keys))
        return b"".join(out)

    def encode_path(self, path: bytes) -> bytes:
        """The compact proof of one path (a lookup's): the multiproof of ``[path]`` with what
        the verifier knows taken out. One byte, the depth ``d`` where the walk ends; a bitmap of
        ``ceil(d / 8)`` bytes, bit ``i`` (most significant first) set when the sibling at depth
        ``i + 1`` is EMPTY; the hash of every other sibling, top down; then the end of the walk:
        ``0x00`` (EMPTY), ``0x01`` + path + value (another key's leaf: an absence), or ``0x04``
        (the key's own leaf, whose value the verifier computes from the record it was given).
        About ``32 * log2(N)`` bytes: 770 at the median depth of a 10-million-key map.
        ``expand_path`` turns it back into the multiproof, which ``verify_multiproof`` checks.
        """
        path = _check_key(path)
        chain, node = self._walk(path)
        depth = len(chain)
        if depth > 255:
            raise ValueError("a path proof holds at most 255 levels")
        bitmap = bytearray((depth + 7) >> 3)
        hashes = []
        for index, ancestor in enumerate(chain):
            sibling = ancestor.left if path_bit(path, index) else ancestor.right
            assert sibling is not None
            digest = _digest(sibling)
            if digest == EMPTY:
                bitmap[index >> 3] |= 0x80 >> (index & 7)
            else:
                hashes.append(digest)
        if node.kind == TAG_LEAF and node.path == path:
            end = bytes((TAG_OWN_LEAF,))
        elif node.kind == TAG_LEAF:
            assert node.path is not None and node.value is not None
            end = bytes((TAG_LEAF,)) + node.path + node.value
        else:
            end = bytes((TAG_EMPTY,))
        return bytes((depth,)) + bytes(bitmap) + b"".join(hashes) + end

    @_gc_paused()
    def changed_nodes(self) -> list[StoredNode]:
        """Every node set() created or re-hashed since construction, in pre-order, as rows to
        store (a leaf that moved down is stored at its new place; its old place is now internal).
        """
        out: list[StoredNode] = []
        stack: list[tuple[_Node, int, int]] = [(self._root, 0, 0)]
        while stack:
            node, depth, top = stack.pop()
            if not node.changed:
                continue
            if node.kind == TAG_LEAF:
                out.append(
                    StoredNode(depth, _prefix(depth, top), _digest(node), node.path, node.value)
                )
                continue
            assert node.left is not None and node.right is not None
            out.append(StoredNode(depth, _prefix(depth, top), _digest(node)))
            stack.append((node.right, depth + 1, (top << 1) | 1))
            stack.append((node.left, depth + 1, top << 1))
        return out
