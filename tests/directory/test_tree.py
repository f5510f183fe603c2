"""The stored Merkle tree: roots and proofs from O(log N) rows equal the reference ones."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from directory import tree
from directory.models import TreeNode, VaultLogRef
from directory.transparency import merkle
from registry.models import LogEntry
from registry.services.common import append_log_many
from tests.directory.helpers import append_entries, execute_without_trigger, leaf_hashes

pytestmark = pytest.mark.django_db


def test_roots_and_proofs_match_the_reference_for_every_size_up_to_70():
    # given a log appended in uneven batches, as services do
    total = 0
    for batch in [1, 1, 2, 3, 5, 8, 13, 1, 21, 15]:
        append_entries(batch, total)
        total += batch
    leaves = leaf_hashes()
    assert len(leaves) == total == 70
    # then every root, inclusion and consistency proof equals the one computed from all leaves
    for size in range(1, total + 1):
        assert tree.root(size) == merkle.root_from_leaf_hashes(leaves[:size])
        for index in range(size):
            assert tree.inclusion_proof(index, size) == merkle.inclusion_proof(leaves, index, size)
        for old in range(1, size + 1):
            assert tree.consistency_proof(old, size) == merkle.consistency_proof(leaves, old, size)
    assert tree.root(0) == merkle.EMPTY_ROOT


def test_large_batch_stores_about_two_nodes_per_leaf_and_random_proofs_verify():
    # given 1,000 entries appended at once (a vault_allocate_many batch)
    append_entries(1000)
    leaves = leaf_hashes()
    # then each perfect subtree is stored once: 1000 leaves, 500 pairs, … = 1994 rows
    assert TreeNode.objects.count() == sum(1000 >> level for level in range(10))
    rng = random.Random(7)
    for _ in range(50):
        size = rng.randrange(1, 1001)
        index = rng.randrange(size)
        proof = tree.inclusion_proof(index, size)
        merkle.verify_inclusion(leaves[index], index, size, proof, tree.root(size))
        old = rng.randrange(1, size + 1)
        merkle.verify_consistency(
            old, size, tree.consistency_proof(old, size), tree.root(old), tree.root(size)
        )


def test_a_root_or_a_proof_is_one_query_whatever_the_size(django_assert_num_queries):
    append_entries(300)
    with django_assert_num_queries(1):
        tree.root(299)
    with django_assert_num_queries(1):
        tree.inclusion_proof(17, 299)
    with django_assert_num_queries(1):
        tree.consistency_proof(100, 299)


def test_append_is_two_statements_for_the_tree(django_assert_num_queries, commit_publication):
    # given a log with an odd size, whose frontier has several subtrees
    append_entries(11)
    # when 5 entries are appended: head, the previous entry's time, entries, frontier read,
    # node insert (no records for the state map, no vault refs; publication after commit)
    with django_assert_num_queries(5):
        append_entries(5, 11)


def test_entries_naming_a_vault_are_indexed_in_the_same_append():
    append_log_many(
        [("vault.allocated", {"vault": "FR76VLT1000000000001", "provider": "p"}), ("x", {})],
        at=timezone.now(),
    )
    assert list(VaultLogRef.objects.values_list("number", "sequence")) == [
        ("FR76VLT1000000000001", 0)
    ]


def test_frontier_keys_decompose_the_size_into_perfect_subtrees():
    assert tree.frontier_keys(0) == []
    assert tree.frontier_keys(1) == [(0, 0)]
    assert tree.frontier_keys(6) == [(2, 0), (1, 2)]
    assert tree.frontier_keys(13) == [(3, 0), (2, 2), (0, 12)]


def test_the_migration_backfills_the_tree_and_vault_index_of_an_existing_log():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("directory.migrations.0002_log_tree_checkpoints")
    # given a log whose tree and vault index are missing (as before this migration)
    append_log_many(
        [
            ("vault.allocated", {"vault": f"FR76VLT100000000{i:04d}", "provider": "p"})
            for i in range(37)
        ],
        at=timezone.now(),
    )
    root = tree.root(37)
    execute_without_trigger(
        "directory_treenode", "directory_treenode_append_only", "DELETE FROM directory_treenode", []
    )
    VaultLogRef.objects.all().delete()
    # when the migration's backfill runs
    migration.backfill(apps, None)
    # then the same tree is stored, and every vault is indexed
    assert tree.root(37) == root
    assert TreeNode.objects.count() == sum(37 >> level for level in range(6))
    assert VaultLogRef.objects.count() == 37


def test_the_client_package_imports_no_django():
    import subprocess
    import sys

    code = (
        "import sys, directory.client.cli, directory.client.mirror; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_times_never_go_back_along_the_sequence():
    # given an entry appended at some time
    now = timezone.now()
    append_log_many([("t", {"n": 0})], at=now)
    # when a writer that read the clock earlier appends after it (as under concurrent writes)
    append_log_many([("t", {"n": 1}), ("t", {"n": 2})], at=now - timedelta(seconds=1))
    # then its entries take the later time: times are monotonic along the sequence
    times = list(LogEntry.objects.order_by("sequence").values_list("created_at", flat=True))
    assert times == sorted(times) and times[-1] == now
    bodies = [json.loads(bytes(b)) for b in LogEntry.objects.values_list("body", flat=True)]
    assert [b["at"] for b in bodies] == [bodies[0]["at"]] * 3
