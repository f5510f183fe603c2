"""Transparency log benchmark: appends, proofs at 10 million entries, and the cost of signing.

    .venv/bin/python benchmarks/log_bench.py          # a SQLite file in /tmp
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vr_bench .venv/bin/python \
        benchmarks/log_bench.py                       # a scratch PostgreSQL database

It builds its own database (the SQLite file is deleted first; on PostgreSQL use a scratch
database: its tables are flushed) and its own throwaway keys, then reports:

1. appending 100,000 entries through ``append_log_many`` in batches of 1,000 (as
   ``vault_allocate_many`` does), and 2,000 single-entry appends, each in its own transaction;
2. the signed lookup against the same lookup with the receipt switched off, interleaved in one run;
3. roots and proofs at 10,000,000 entries. The tree nodes of 10 million leaves are synthesised
   directly (random leaf hashes, every perfect subtree hashed for real and bulk-inserted: ~20
   million ``TreeNode`` rows) without 10 million ``LogEntry`` rows, which proofs never read.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/vr-log-bench.sqlite3")
os.environ.setdefault("VAULT_KEY_DIR", tempfile.mkdtemp(prefix="vr-bench-keys-"))
os.environ.setdefault("VAULT_CHECKPOINT_INTERVAL", "3600")  # publish explicitly, once

import django


def _setup() -> None:
    url = os.environ["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not url.startswith("sqlite"):
        call_command("flush", interactive=False, verbosity=0)
        from registry.models import LogHead

        LogHead.objects.get_or_create(pk=1)
    call_command("generate_keys", stdout=StringIO())


def bench_appends(total: int, batch: int, singles: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from registry.services.common import append_log, append_log_many

    started = time.perf_counter()
    for offset in range(0, total, batch):
        with transaction.atomic():
            append_log_many(
                [
                    ("vault.allocated", {"vault": f"BENCH{offset + i:015d}", "provider": "p"})
                    for i in range(batch)
                ],
                at=timezone.now(),
            )
    elapsed = time.perf_counter() - started
    print(
        f"append {total:,} entries in batches of {batch:,}: {elapsed:.1f} s, "
        f"{total / elapsed:,.0f} entries/s (entry + tree nodes + vault index, committed)"
    )
    started = time.perf_counter()
    for i in range(singles):
        with transaction.atomic():
            append_log(
                "vault.held", {"vault": f"BENCH{i:015d}", "hold": "client_hold"}, at=timezone.now()
            )
    elapsed = time.perf_counter() - started
    print(
        f"append {singles:,} single entries, one transaction each: "
        f"{singles / elapsed:,.0f} entries/s ({1000 * elapsed / singles:.2f} ms each)"
    )


def bench_signing(lookups: int) -> None:
    from django.core.management import call_command
    from django.test import Client

    from directory import checkpoints, receipts
    from directory.api import views
    from registry.models import Issuer, Vault
    from registry.services import tokens
    from registry.services.common import Actor

    call_command("load_demo", vaults=1000, stdout=StringIO())
    checkpoints.publish()
    _token, value = tokens.token_create(
        actor=Actor.system("bench"), owner=Issuer.objects.first(), name="bench", expires_in_days=1
    )
    numbers = list(Vault.objects.filter(status="active").values_list("number", flat=True)[:200])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {value}", HTTP_HOST="localhost")
    signed_attach = receipts.attach_receipt

    def unsigned_attach(request, number, body):
        return body

    def run(attach, count):
        views.receipts.attach_receipt = attach
        started = time.perf_counter()
        for i in range(count):
            response = client.get(f"/api/v1/vaults/{numbers[i % len(numbers)]}")
            assert response.status_code == 200
        return (time.perf_counter() - started) / count

    run(signed_attach, len(numbers))  # warm the per-process caches (routes, proofs, checkpoint)
    run(unsigned_attach, len(numbers))
    signed, unsigned = [], []
    for _ in range(10):  # interleaved rounds: both see the same machine state
        unsigned.append(run(unsigned_attach, lookups // 10))
        signed.append(run(signed_attach, lookups // 10))
    views.receipts.attach_receipt = signed_attach
    s, u = statistics.median(signed), statistics.median(unsigned)
    print(
        f"lookup through the full Django stack, {lookups:,} each, median of 10 rounds: "
        f"unsigned {u * 1e6:,.0f} us, signed {s * 1e6:,.0f} us, ratio signed/unsigned {s / u:.2f}"
    )
    started = time.perf_counter()
    for _ in range(1000):
        receipts.sign_receipt({"asked": {"number": numbers[0]}, "answer": {"status": 200}})
    each_us = (time.perf_counter() - started) * 1e6 / 1000
    print(f"sign_receipt alone (Ed25519 compact JWS, 1,000 calls): {each_us:,.0f} us each")


def synthesise_tree(leaves: int) -> None:
    """Store every perfect subtree of ``leaves`` random leaf hashes, as appends would have."""
    from django.db import connection, transaction

    from directory.models import TreeNode
    from directory.transparency.merkle import node_hash

    table = TreeNode._meta.db_table
    with connection.cursor() as cursor:  # TRUNCATE: the append-only trigger refuses DELETE
        cursor.execute(
            f"TRUNCATE {table}" if connection.vendor == "postgresql" else f"DELETE FROM {table}"
        )
    quote = connection.ops.quote_name
    columns = f"{quote('level')}, {quote('index')}, {quote('hash')}"
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s)"
    rng = random.Random(1)
    stack: list[tuple[int, int, bytes]] = []
    chunk = 1 << 16
    started = time.perf_counter()
    for first in range(0, leaves, chunk):
        rows = []
        for index in range(first, min(first + chunk, leaves)):
            node = (0, index, rng.randbytes(32))
            rows.append(node)
            while stack and stack[-1][0] == node[0]:
                left = stack.pop()
                node = (node[0] + 1, node[1] >> 1, node_hash(left[2], node[2]))
                rows.append(node)
            stack.append(node)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        done = min(first + chunk, leaves)
        rate = done / (time.perf_counter() - started)
        print(f"\rsynthesising {done:,}/{leaves:,} leaves ({rate:,.0f}/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")


def bench_proofs(leaves: int, samples: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from directory import tree
    from directory.models import TreeNode
    from directory.transparency import merkle

    started = time.perf_counter()
    synthesise_tree(leaves)
    rows = TreeNode.objects.count()
    print(
        f"synthesised the stored tree of {leaves:,} leaves: {rows:,} TreeNode rows in "
        f"{time.perf_counter() - started:.0f} s"
    )
    rng = random.Random(2)
    sizes = [leaves, leaves - 12_345]
    for size in sizes:
        with CaptureQueriesContext(connection) as root_queries:
            started = time.perf_counter()
            root = tree.root(size)
            root_ms = (time.perf_counter() - started) * 1000
        timings, queries, lengths = [], [], []
        for _ in range(samples):
            index = rng.randrange(size)
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                proof = tree.inclusion_proof(index, size)
                timings.append((time.perf_counter() - started) * 1000)
            queries.append(len(captured))
            lengths.append(len(proof))
            leaf = tree.level_hashes(0, index, 1)[0]
            merkle.verify_inclusion(leaf, index, size, proof, root)
        consistency = []
        for _ in range(samples):
            old = rng.randrange(1, size)
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                proof = tree.consistency_proof(old, size)
                consistency.append(((time.perf_counter() - started) * 1000, len(captured)))
            merkle.verify_consistency(old, size, proof, tree.root(old), root)
        print(
            f"size {size:,}: root {len(root_queries)} query {root_ms:.2f} ms; inclusion proof "
            f"({min(lengths)}-{max(lengths)} hashes) {max(queries)} query, median "
            f"{statistics.median(timings):.2f} ms, max {max(timings):.2f} ms; consistency proof "
            f"{max(q for _, q in consistency)} query, median "
            f"{statistics.median(t for t, _ in consistency):.2f} ms ({samples} proofs each, "
            "all verified)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--singles", type=int, default=2_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--proof-leaves", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    _setup()
    from django.db import connection

    print(f"database: {connection.vendor}; Python {sys.version.split()[0]}")
    bench_appends(args.appends, args.batch, args.singles)
    bench_signing(args.lookups)
    bench_proofs(args.proof_leaves, args.samples)


if __name__ == "__main__":
    main()
