"""The state map: canonical roots, stored nodes, multiproofs and partial trees."""

from __future__ import annotations

import gc
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from directory.transparency.statemap import (
    EMPTY,
    MapProofError,
    PartialTree,
    StoredNode,
    build,
    expand_path,
    leaf_hash,
    node_hash,
    node_id,
    node_id_of,
    path_bit,
    path_of,
    prefix_bytes,
    root_of,
    value_of,
    verify_multiproof,
)


def reference_root(items: dict[bytes, bytes], depth: int = 0) -> bytes:
    """The canonical root straight from its definition, one bit at a time."""
    if not items:
        return EMPTY
    if len(items) == 1:
        [(path, value)] = items.items()
        return leaf_hash(path, value)
    left = {p: v for p, v in items.items() if not path_bit(p, depth)}
    right = {p: v for p, v in items.items() if path_bit(p, depth)}
    return node_hash(reference_root(left, depth + 1), reference_root(right, depth + 1))


def random_items(rng: random.Random, count: int) -> dict[bytes, bytes]:
    return {rng.randbytes(32): rng.randbytes(32) for _ in range(count)}


def path_with(bits: str, fill: int = 0x55) -> bytes:
    """A path starting with the given bits, then ``fill`` bytes."""
    number = int(bits, 2) << (256 - len(bits)) if bits else 0
    tail = int.from_bytes(bytes([fill]) * 32, "big") & ((1 << (256 - len(bits))) - 1)
    return (number | tail).to_bytes(32, "big")


class Store:
    """Stored nodes in a dict, with the fetch callback PartialTree.load reads them through."""

    def __init__(self, nodes: list[StoredNode] = ()) -> None:
        self.rows = {node.node_id: node for node in nodes}
        self.calls = 0

    def fetch(self, ids: list[bytes]) -> dict[bytes, StoredNode]:
        self.calls += 1
        return {i: self.rows[i] for i in ids if i in self.rows}

    def save(self, nodes: list[StoredNode]) -> None:
        self.rows.update((node.node_id, node) for node in nodes)


V1 = value_of(b"one")
V2 = value_of(b"two")
V3 = value_of(b"three")


# Definitions


def test_paths_and_values_are_sha256():
    assert path_of("NL-1234") == hashlib.sha256(b"NL-1234").digest()
    assert path_of("é") == hashlib.sha256("é".encode()).digest()
    assert value_of(b"record") == hashlib.sha256(b"record").digest()


def test_bit_zero_is_the_most_significant_bit_of_the_first_byte():
    path = bytes([0b1010_0000, 0b0000_0001]) + bytes(30)
    assert [path_bit(path, i) for i in range(4)] == [1, 0, 1, 0]
    assert path_bit(path, 15) == 1
    assert path_bit(path, 255) == 0


def test_leaf_and_node_hashes_are_domain_separated():
    path, value = bytes(range(32)), bytes(range(32, 64))
    assert leaf_hash(path, value) == hashlib.sha256(b"\x00" + path + value).digest()
    assert node_hash(path, value) == hashlib.sha256(b"\x01" + path + value).digest()


# Canonical roots and stored nodes


def test_the_empty_map_has_the_empty_root():
    assert bytes(32) == EMPTY
    assert build([]) == (EMPTY, [])
    assert root_of([]) == EMPTY
    assert PartialTree.load([path_of("x")], Store().fetch).root() == EMPTY


def test_one_key_is_a_leaf_at_the_root():
    path = path_of("only")
    root, nodes = build([(path, V1)])
    assert root == leaf_hash(path, V1)
    assert nodes == [StoredNode(0, b"", root, path, V1)]


def test_two_keys_split_at_the_first_bit_where_they_differ():
    a, b = path_with("0000"), path_with("0001")
    leaves = node_hash(leaf_hash(a, V1), leaf_hash(b, V2))
    chain = node_hash(node_hash(node_hash(leaves, EMPTY), EMPTY), EMPTY)
    root, nodes = build([(b, V2), (a, V1)])
    assert root == chain == root_of([(a, V1), (b, V2)])
    assert {(n.depth, n.prefix, n.leaf_path) for n in nodes} == {
        (0, b"", None),
        (1, b"\x00", None),
        (2, b"\x00", None),
        (3, b"\x00", None),
        (4, b"\x00", a),
        (4, b"\x10", b),
    }


def test_two_keys_differing_in_the_last_bit():
    a = bytes(31) + b"\x00"
    b = bytes(31) + b"\x01"
    root, nodes = build([(a, V1), (b, V2)])
    assert root == reference_root({a: V1, b: V2})
    assert sorted(n.depth for n in nodes if n.leaf_path) == [256, 256]
    assert max(n.depth for n in nodes if n.leaf_path is None) == 255


@pytest.mark.parametrize("count", [2, 3, 5, 17, 100, 300])
def test_build_matches_the_definition(count):
    items = random_items(random.Random(count), count)
    root, nodes = build(items.items())
    assert root == reference_root(items) == root_of(items.items())
    assert len({n.node_id for n in nodes}) == len(nodes)
    assert {n.leaf_path: n.leaf_value for n in nodes if n.leaf_path} == items
    assert all(n.hash != EMPTY for n in nodes)


def test_a_repeated_path_keeps_its_last_value():
    path = path_of("k")
    assert root_of([(path, V1), (path, V2)]) == leaf_hash(path, V2)


def test_paths_and_values_must_be_32_bytes():
    with pytest.raises(ValueError):
        build([(b"short", V1)])
    with pytest.raises(ValueError):
        build([(path_of("k"), b"short")])


def test_building_leaves_the_garbage_collector_as_it_was():
    items = random_items(random.Random(1), 10)
    build(items.items())
    assert gc.isenabled()
    gc.disable()
    try:
        build(items.items())
        PartialTree.load(list(items), Store(build(items.items())[1]).fetch)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(ValueError):
        build([(b"short", V1)])
    assert gc.isenabled()


# Node ids


def test_prefix_bits_beyond_the_depth_are_zero():
    path = b"\xff" * 32
    assert prefix_bytes(path, 0) == b""
    assert prefix_bytes(path, 1) == b"\x80"
    assert prefix_bytes(path, 7) == b"\xfe"
    assert prefix_bytes(path, 8) == b"\xff"
    assert prefix_bytes(path, 13) == b"\xff\xf8"
    assert prefix_bytes(path, 256) == path
    for depth in range(257):
        prefix = prefix_bytes(path, depth)
        assert len(prefix) == (depth + 7) // 8
        assert int.from_bytes(prefix, "big") & ((1 << (len(prefix) * 8 - depth)) - 1) == 0


def test_node_ids_are_unique_per_depth_and_prefix():
    rng = random.Random(7)
    paths = [rng.randbytes(32) for _ in range(20)]
    paths += [path_with("0"), path_with("1"), bytes(32)]
    seen: dict[bytes, tuple[int, bytes]] = {}
    for path in paths:
        for depth in range(257):
            ident = node_id_of(path, depth)
            assert ident == node_id(depth, prefix_bytes(path, depth))
            assert ident[:2] == depth.to_bytes(2, "big")
            key = (depth, prefix_bytes(path, depth))
            assert seen.setdefault(ident, key) == key
    assert node_id(0, b"") == b"\x00\x00"
    # Paths that agree on the first bits share the nodes above where they part.
    assert node_id_of(path_with("0110", 0x00), 4) == node_id_of(path_with("0110", 0xFF), 4)
    assert node_id_of(path_with("0110", 0x00), 5) != node_id_of(path_with("0110", 0xFF), 5)
    with pytest.raises(ValueError):
        node_id(9, b"\x00")


def test_a_stored_node_knows_its_id():
    node = StoredNode(12, b"\xab\xc0", bytes(range(32)))
    assert node.node_id == node_id(12, b"\xab\xc0")
    assert not node.is_leaf


# Incremental updates


def test_inserting_keys_one_at_a_time_matches_build():
    rng = random.Random(300)
    store = Store()
    items: dict[bytes, bytes] = {}
    keys = [rng.randbytes(32) for _ in range(300)]
    # 300 inserts and 60 updates of keys already in, interleaved.
    steps = [(key, rng.randbytes(32)) for key in keys]
    for _ in range(60):
        position = rng.randrange(1, len(steps))
        steps.insert(position, (rng.choice([k for k, _ in steps[:position]]), rng.randbytes(32)))
    for path, value in steps:
        tree = PartialTree.load([path], store.fetch)
        assert tree.get(path) == items.get(path)
        tree.set(path, value)
        assert tree.get(path) == value
        store.save(tree.changed_nodes())
        items[path] = value
        assert tree.root() == root_of(items.items())
    root, nodes = build(items.items())
    assert PartialTree.load([], store.fetch).root() == root
    # No stale row is left behind: the store holds exactly the canonical tree's nodes.
    assert store.rows == {node.node_id: node for node in nodes}


def test_keys_sharing_long_prefixes_split_and_move_leaves_down():
    store = Store()
    items: dict[bytes, bytes] = {}
    paths = [path_with("1" * 40, fill) for fill in (0x00, 0x80, 0x40, 0xC0, 0x01)]
    paths += [bytes(31) + b"\x01", bytes(32), path_with("0")]
    for path in paths:
        tree = PartialTree.load([path], store.fetch, lookahead=3)
        tree.set(path, V1)
        store.save(tree.changed_nodes())
        items[path] = V1
    root, nodes = build(items.items())
    assert store.rows == {node.node_id: node for node in nodes}
    assert PartialTree.load(paths, store.fetch).root() == root == reference_root(items)


def test_setting_many_paths_at_once_matches_build():
    rng = random.Random(5)
    items = random_items(rng, 2_000)
    root, nodes = build(items.items())
    store = Store(nodes)
    updates = {path: rng.randbytes(32) for path in rng.sample(sorted(items), 200)}
    updates |= random_items(rng, 300)
    tree = PartialTree.load(updates, store.fetch)
    assert tree.root() == root
    for path, value in updates.items():
        tree.set(path, value)
    items |= updates
    store.save(tree.changed_nodes())
    new_root, new_nodes = build(items.items())
    assert tree.root() == new_root
    assert store.rows == {node.node_id: node for node in new_nodes}


def test_setting_the_same_value_changes_nothing():
    items = random_items(random.Random(9), 50)
    root, nodes = build(items.items())
    path = next(iter(items))
    tree = PartialTree.load([path], Store(nodes).fetch)
    tree.set(path, items[path])
    assert tree.root() == root
    assert tree.changed_nodes() == []


def test_a_path_the_tree_does_not_cover_cannot_be_read_or_set():
    rng = random.Random(11)
    items = random_items(rng, 500)
    root, nodes = build(items.items())
    covered = next(iter(items))
    tree = PartialTree.load([covered], Store(nodes).fetch)
    other = next(p for p in items if path_bit(p, 0) != path_bit(covered, 0))
    with pytest.raises(KeyError):
        tree.get(other)
    with pytest.raises(KeyError):
        tree.set(other, V1)
    with pytest.raises(KeyError):
        tree.encode([other])
    assert tree.root() == root


# Multiproofs


def small_map() -> tuple[dict[bytes, bytes], bytes]:
    """Three keys: 000…, 001… under an internal node at depth 2 whose 01… side is EMPTY; 1… a leaf
    at depth 1."""
    items = {path_with("000"): V1, path_with("001"): V2, path_with("1"): V3}
    return items, root_of(items.items())


def test_a_proof_of_absence_ending_at_an_empty_subtree():
    items, root = small_map()
    absent = path_with("01")
    tree = PartialTree.load([absent], Store(build(items.items())[1]).fetch)
    proof = tree.encode()
    below_00 = node_hash(leaf_hash(path_with("000"), V1), leaf_hash(path_with("001"), V2))
    assert proof == (b"\x02\x02\x03" + below_00 + b"\x00" + b"\x03" + leaf_hash(path_with("1"), V3))
    assert verify_multiproof(root, [absent], proof) == {absent: None}


def test_a_proof_of_absence_ending_at_another_leaf():
    items, root = small_map()
    absent = path_with("11", 0x00)
    tree = PartialTree.load([absent], Store(build(items.items())[1]).fetch)
    proof = tree.encode()
    left = node_hash(
        node_hash(leaf_hash(path_with("000"), V1), leaf_hash(path_with("001"), V2)), EMPTY
    )
    assert proof == b"\x02\x03" + left + b"\x01" + path_with("1") + V3
    assert verify_multiproof(root, [absent], proof) == {absent: None}


def test_a_proof_of_presence_and_absence_together():
    items, root = small_map()
    paths = [path_with("001"), path_with("01"), path_with("11", 0x00), path_with("1")]
    proof = PartialTree.load(paths, Store(build(items.items())[1]).fetch).encode()
    assert verify_multiproof(root, reversed(paths), proof) == {
        path_with("001"): V2,
        path_with("01"): None,
        path_with("11", 0x00): None,
        path_with("1"): V3,
    }


def test_the_proof_of_the_empty_map():
    path = path_of("nothing")
    assert PartialTree.load([path], Store().fetch).encode() == b"\x00"
    assert verify_multiproof(EMPTY, [path, path_of("else")], b"\x00") == {
        path: None,
        path_of("else"): None,
    }


def test_a_proof_for_no_paths_is_the_root_alone():
    items, root = small_map()
    tree = PartialTree.load([], Store(build(items.items())[1]).fetch)
    assert tree.encode() == b"\x03" + root
    assert verify_multiproof(root, [], b"\x03" + root) == {}
    with pytest.raises(MapProofError):
        verify_multiproof(root, [], b"\x00")


def proof_fixture() -> tuple[bytes, list[bytes], bytes, dict[bytes, bytes]]:
    rng = random.Random(42)
    items = random_items(rng, 40)
    root, nodes = build(items.items())
    paths = [*list(items)[:2], rng.randbytes(32)]
    return root, paths, PartialTree.load(paths, Store(nodes).fetch).encode(), items


def test_every_single_bit_flip_is_refused():
    root, paths, proof, items = proof_fixture()
    assert verify_multiproof(root, paths, proof) == {p: items.get(p) for p in paths}
    for index in range(len(proof)):
        for bit in range(8):
            flipped = bytearray(proof)
            flipped[index] ^= 1 << bit
            with pytest.raises(MapProofError):
                verify_multiproof(root, paths, bytes(flipped))


def test_every_truncation_and_any_trailing_byte_is_refused():
    root, paths, proof, _ = proof_fixture()
    for cut in range(len(proof)):
        with pytest.raises(MapProofError):
            verify_multiproof(root, paths, proof[:cut])
    for tail in (b"\x00", b"\x03" + EMPTY, proof):
        with pytest.raises(MapProofError, match="trailing"):
            verify_multiproof(root, paths, proof + tail)


def test_a_wrong_root_is_refused():
    root, paths, proof, _ = proof_fixture()
    with pytest.raises(MapProofError, match="root"):
        verify_multiproof(node_hash(root, root), paths, proof)
    with pytest.raises(MapProofError, match="root"):
        verify_multiproof(EMPTY, paths, proof)


def test_a_proof_for_other_paths_is_refused():
    rng = random.Random(3)
    items = random_items(rng, 200)
    root, nodes = build(items.items())
    first, second = list(items)[:2]
    proof = PartialTree.load([first], Store(nodes).fetch).encode()
    with pytest.raises(MapProofError):
        verify_multiproof(root, [second], proof)
    with pytest.raises(MapProofError):
        verify_multiproof(root, [first, second], proof)
    with pytest.raises(MapProofError):
        verify_multiproof(root, [], proof)


def test_duplicate_query_paths_are_one_path():
    root, paths, proof, items = proof_fixture()
    answer = verify_multiproof(root, paths + paths[::-1], proof)
    assert answer == {p: items.get(p) for p in paths}


def test_query_paths_must_be_32_bytes():
    with pytest.raises(ValueError):
        verify_multiproof(EMPTY, [b"short"], b"\x00")


LEFT, RIGHT = path_with("0"), path_with("1")
LEAF_LEFT = b"\x01" + LEFT + V1
LEAF_RIGHT = b"\x01" + RIGHT + V2
OPAQUE_EMPTY = b"\x03" + EMPTY


@pytest.mark.parametrize(
    ("paths", "proof", "left", "right"),
    [
        pytest.param([LEFT, RIGHT], b"\x02\x00" + LEAF_RIGHT, EMPTY, None, id="empty-leaf"),
        pytest.param([LEFT, RIGHT], b"\x02" + LEAF_LEFT + b"\x00", None, EMPTY, id="leaf-empty"),
        pytest.param([LEFT, RIGHT], b"\x02\x00\x00", EMPTY, EMPTY, id="empty-empty"),
        pytest.param([RIGHT], b"\x02" + OPAQUE_EMPTY + LEAF_RIGHT, EMPTY, None, id="opaque-leaf"),
        pytest.param([LEFT], b"\x02" + LEAF_LEFT + OPAQUE_EMPTY, None, EMPTY, id="leaf-opaque"),
        pytest.param([LEFT], b"\x02\x00" + OPAQUE_EMPTY, EMPTY, EMPTY, id="empty-opaque"),
    ],
)
def test_an_internal_node_with_fewer_than_two_leaves_is_refused(paths, proof, left, right):
    left = leaf_hash(LEFT, V1) if left is None else left
    right = leaf_hash(RIGHT, V2) if right is None else right
    with pytest.raises(MapProofError, match="non-canonical"):
        verify_multiproof(node_hash(left, right), paths, proof)


def test_a_leaf_outside_its_subtree_is_refused():
    root = node_hash(leaf_hash(RIGHT, V1), leaf_hash(path_with("11", 0x00), V2))
    proof = b"\x02\x01" + RIGHT + V1 + b"\x03" + leaf_hash(path_with("11", 0x00), V2)
    with pytest.raises(MapProofError, match="outside"):
        verify_multiproof(root, [LEFT], proof)


def test_an_internal_node_below_the_last_bit_is_refused():
    with pytest.raises(MapProofError, match="last path bit"):
        verify_multiproof(EMPTY, [bytes(32)], b"\x02" * 257 + LEAF_LEFT)


@pytest.mark.parametrize(
    ("paths", "proof", "message"),
    [
        pytest.param([LEFT], b"\x04", "unknown node tag", id="unknown-tag"),
        pytest.param([LEFT], b"\x03" + EMPTY, "opaque", id="opaque-on-a-query-path"),
        pytest.param([LEFT], b"\x02" + LEAF_LEFT + LEAF_RIGHT, "expected an opaque", id="kind"),
        pytest.param([LEFT], b"", "truncated", id="nothing"),
    ],
)
def test_a_malformed_proof_is_refused(paths, proof, message):
    with pytest.raises(MapProofError, match=message):
        verify_multiproof(EMPTY, paths, proof)


def test_a_proof_for_a_thousand_paths_in_a_twenty_thousand_key_map():
    rng = random.Random(20_000)
    items = random_items(rng, 20_000)
    root, nodes = build(items.items())
    store = Store(nodes)
    paths = rng.sample(sorted(items), 900) + [rng.randbytes(32) for _ in range(100)]
    tree = PartialTree.load(paths, store.fetch)
    proof = tree.encode()
    assert tree.root() == root
    assert verify_multiproof(root, paths, proof) == {p: items.get(p) for p in paths}
    assert PartialTree.from_multiproof(root, paths, proof).encode() == proof
    # A proof for some of the paths, encoded from the same partial tree, verifies too.
    some = paths[::7]
    assert verify_multiproof(root, some, tree.encode(some)) == {p: items.get(p) for p in some}


@pytest.mark.parametrize("lookahead", [1, 3, 8, 300])
def test_any_lookahead_loads_the_same_partial_tree(lookahead):
    rng = random.Random(lookahead)
    items = random_items(rng, 3_000)
    root, nodes = build(items.items())
    paths = rng.sample(sorted(items), 50) + [rng.randbytes(32) for _ in range(10)]
    expected = PartialTree.load(paths, Store(nodes).fetch).encode()
    tree = PartialTree.load(paths, Store(nodes).fetch, lookahead=lookahead)
    assert tree.root() == root
    assert tree.encode() == expected


def test_one_path_in_a_hundred_thousand_key_map_takes_few_fetch_calls():
    rng = random.Random(100_000)
    items = random_items(rng, 100_000)
    root, nodes = build(items.items())
    store = Store(nodes)
    for path in [next(iter(items)), rng.randbytes(32)]:
        store.calls = 0
        tree = PartialTree.load([path], store.fetch)
        assert store.calls <= 5
        assert tree.root() == root
        assert verify_multiproof(root, [path], tree.encode()) == {path: items.get(path)}


# Witness and server: old proof + updates = new root


def test_a_witness_checks_the_new_root_from_the_old_proof():
    rng = random.Random(77)
    items = random_items(rng, 2_000)
    old_root, nodes = build(items.items())
    updates = {path: rng.randbytes(32) for path in rng.sample(sorted(items), 40)}
    updates |= random_items(rng, 60)
    # The server loads the touched paths, proves them against the old root, applies the updates.
    server = PartialTree.load(updates, Store(nodes).fetch)
    old_proof = server.encode()
    for path, value in updates.items():
        server.set(path, value)
    new_root = root_of((items | updates).items())
    assert server.root() == new_root
    # The witness replays the updates on the old proof alone.
    witness = PartialTree.from_multiproof(old_root, updates, old_proof)
    assert {p: witness.get(p) for p in updates} == {p: items.get(p) for p in updates}
    for path, value in updates.items():
        witness.set(path, value)
    assert witness.root() == new_root
    # Both sides now encode the same proof of the new values against the new root.
    new_proof = server.encode()
    assert witness.encode() == new_proof
    assert verify_multiproof(new_root, updates, new_proof) == updates


def test_a_witness_refuses_an_old_proof_for_another_root():
    _, paths, proof, _ = proof_fixture()
    with pytest.raises(MapProofError):
        PartialTree.from_multiproof(EMPTY, paths, proof)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=32, max_size=32), max_size=40, unique=True),
    extra=st.lists(st.binary(min_size=32, max_size=32), max_size=5),
    data=st.data(),
)
def test_proofs_round_trip_for_any_map(keys, extra, data):
    items = {key: hashlib.sha256(key).digest() for key in keys}
    root, nodes = build(items.items())
    assert root == reference_root(items)
    queried = data.draw(st.lists(st.sampled_from(keys), max_size=8)) if keys else []
    paths = queried + extra
    tree = PartialTree.load(paths, Store(nodes).fetch, lookahead=data.draw(st.integers(1, 9)))
    proof = tree.encode()
    assert verify_multiproof(root, paths, proof) == {p: items.get(p) for p in paths}
    rebuilt = PartialTree.from_multiproof(root, paths, proof)
    for path in paths:
        rebuilt.set(path, V1)
        items[path] = V1
    assert rebuilt.root() == root_of(items.items())


# Path proofs (a lookup's)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_a_path_proof_expands_to_the_multiproof_of_its_path(count, seed):
    rng = random.Random(seed)
    items = random_items(rng, count)
    root = root_of(items.items())
    store = Store(build(items.items())[1])
    for path in [*list(items)[:5], *(rng.randbytes(32) for _ in range(5))]:
        tree = PartialTree.load([path], store.fetch)
        compact = tree.encode_path(path)
        value = items.get(path)
        expanded = expand_path(path, compact, value)
        assert expanded == tree.encode([path])
        assert verify_multiproof(root, [path], expanded) == {path: value}


def test_a_path_proof_is_a_hash_per_non_empty_sibling_and_no_leaf_for_the_own_key():
    items, _ = small_map()
    present = path_with("001")
    compact = PartialTree.load([present], Store(build(items.items())[1]).fetch).encode_path(present)
    # depth 3; siblings: 1… (a leaf), 01… (EMPTY: a bit, no hash), 000… (a leaf); own leaf
    assert compact == (
        bytes([3, 0b0100_0000])
        + leaf_hash(path_with("1"), V3)
        + leaf_hash(path_with("000"), V1)
        + b"\x04"
    )
    # against the multiproof: no tags per level, no EMPTY hash, no path and value for the key
    assert (
        len(compact)
        == len(PartialTree.load([present], Store(build(items.items())[1]).fetch).encode([present]))
        - 3
        - 33
        - 64
    )


def test_a_path_proof_needs_the_verifiers_value_and_refuses_what_is_malformed():
    items, root = small_map()
    present = path_with("001")
    good = PartialTree.load([present], Store(build(items.items())[1]).fetch).encode_path(present)
    # the own leaf with another value does not verify; without a value it is refused
    with pytest.raises(MapProofError):
        verify_multiproof(root, [present], expand_path(present, good, V1))
    with pytest.raises(MapProofError, match="no record"):
        expand_path(present, good, None)
    spelled = good[:-1] + b"\x01" + present + V2
    bad = {
        "truncated": good[:-5],
        "empty": b"",
        "bits past the depth": bytes([3, 0b0101_0000]) + good[2:],
        "an EMPTY sibling hashed": bytes([3, 0]) + good[2:34] + EMPTY + good[34:],
        "the own leaf spelled out": spelled,
        "trailing bytes": good + b"\x00",
    }
    for name, proof in bad.items():
        with pytest.raises(MapProofError):
            verify_multiproof(root, [present], expand_path(present, proof, V2))
        assert name
