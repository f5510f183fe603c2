"""Fill a benchmark database as a real registry is: every vault in the log, the tree, the map.

    DATABASE_URL=… python benchmarks/populate.py 1000000      # run by run_bench.py

Run by run_bench.py with DATABASE_URL set on a new database (migrated, keys generated); prints a
fresh issuer token on the last line. On a database it already filled, only the token is made.

The fill:
1. 50 providers through the services (their log entries carry their records), with the state
   map's update switched off (``state.apply``) and no checkpoint published, so that the map is
   built below from the log alone like every other record;
2. N vaults written by COPY, not through the services (10 million service calls would take
   hours): the vault rows, one ``state.snapshot`` log entry per vault carrying its record
   exactly as the services write it (``registry.services.common.vault_record`` and
   ``canonical`` bodies, checked byte for byte on a sample), its leaf hash, its
   ``directory_vaultlogref`` row, and the log's Merkle tree nodes computed here (the stack
   algorithm of directory migration 0002's backfill, ``merkle.push_leaf``); the log head's
   size is set. 0.5% of the vaults are closed and 1% held, and their records say so. Numbers
   are real (python-stdnum check digits), drawn at random;
3. ``manage.py rebuild_state_map``: the state map replayed from the log alone (timed, with
   the peak memory of that process);
4. ``manage.py publish_checkpoint``: the first checkpoint, which re-derives the log root and
   the map root from the whole log before signing (timed too).

The timings are kept in the database (table ``bench_fill``) and shown by run_bench.py: the
database is filled once and reused by later runs.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
django.setup()

import orjson  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from directory import checkpoints, state, tree  # noqa: E402
from directory.transparency import merkle  # noqa: E402
from directory.transparency import records as rec  # noqa: E402
from registry import numbers, x509  # noqa: E402
from registry.management.commands.load_demo import demo_siren  # noqa: E402
from registry.models import Issuer, LogKind, OrganisationStatus, Provider, Vault  # noqa: E402
from registry.services import organisations, routing, tokens  # noqa: E402
from registry.services.common import Actor, canonical, timestamp, vault_record  # noqa: E402

PROVIDERS = 50
ACTOR = Actor.system("bench")
CHUNK = 50_000  # vaults per round of COPYs
CHECK_EVERY = 997  # one vault in so many is checked against the services' own functions
FILL_TABLE = "bench_fill"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def providers() -> list[Provider]:
    """50 active providers, each with an endpoint and an encryption certificate, through the
    services; the map is left to ``rebuild_state_map`` and no checkpoint is published yet."""
    original_apply, original_publish = state.apply, checkpoints.publish_soon
    state.apply = lambda version, records: None
    checkpoints.publish_soon = lambda: None
    try:
        existing = list(Provider.objects.filter(status=OrganisationStatus.ACTIVE).order_by("pk"))
        for index in range(len(existing), PROVIDERS):
            provider = organisations.provider_apply(
                actor=ACTOR,
                legal_name=f"Bench provider {index:02d}",
                legal_id=demo_siren(index),
                technical_email="tech@bench.example",
                security_email="security@bench.example",
            )
            provider = organisations.provider_set_status(
                actor=ACTOR, provider=provider, status="active", reason="bench"
            )
            routing.endpoint_create(
                actor=ACTOR,
                provider=provider,
                transport_profile="vault-pivot-https/1",
                url=f"https://deliver{index}.bench.example/v1",
            )
            pem, _ = x509.generate_certificate(f"bench {index}", "encryption")
            routing.certificate_upload(actor=ACTOR, provider=provider, use="encryption", pem=pem)
            existing.append(provider)
    finally:
        state.apply, checkpoints.publish_soon = original_apply, original_publish
    return existing


def vaults(target: int, provider_ids: list[uuid.UUID]) -> int:
    """COPY ``target`` vaults with their log entries, vault references and tree nodes; returns
    the log size after them."""
    first = checkpoints.log_size()
    frontier: merkle.Frontier = [
        (level, digest) for (level, _index), digest in tree._frontier(first)
    ]
    now = timezone.now()
    at = timestamp(now)
    country, allocator = settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR
    rng = random.Random(target)
    serials = rng.sample(range(10**12), target)
    ids = [str(p) for p in provider_ids]
    sha256, push_leaf, dumps, sort_keys = (
        hashlib.sha256,
        merkle.push_leaf,
        orjson.dumps,
        orjson.OPT_SORT_KEYS,
    )
    kind = str(LogKind.STATE_SNAPSHOT)
    copies = {
        "registry_vault": (
            "number, provider_id, status, client_hold, server_hold, client_transfer_prohibited, "
            "registry_lock, pending_transfer, created_at, closed_at, last_log_index",
            [
                "varchar",
                "uuid",
                "varchar",
                "bool",
                "bool",
                "bool",
                "bool",
                "bool",
                "timestamptz",
                "timestamptz",
                "int8",
            ],
        ),
        "registry_logentry": (
            "sequence, kind, body, leaf_hash, created_at",
            ["int8", "varchar", "bytea", "bytea", "timestamptz"],
        ),
        "directory_vaultlogref": ("number, sequence", ["varchar", "int8"]),
        "directory_treenode": ('"level", "index", hash', ["int2", "int8", "bytea"]),
    }
    started = time.monotonic()
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        for start in range(0, target, CHUNK):
            rows: dict[str, list[tuple]] = {table: [] for table in copies}
            vault_rows, entry_rows = rows["registry_vault"], rows["registry_logentry"]
            ref_rows, node_rows = rows["directory_vaultlogref"], rows["directory_treenode"]
            for offset in range(start, min(start + CHUNK, target)):
                sequence = first + offset
                number = numbers.make(country, allocator, f"{serials[offset]:012d}").value
                roll = rng.random()
                closed = roll < 0.005
                held = 0.005 <= roll < 0.015
                which = offset % len(ids)
                record = {
                    "type": rec.VAULT,
                    "number": number,
                    "provider": ids[which],
                    "status": "closed" if closed else "active",
                    "client_hold": held,
                    "server_hold": False,
                    "client_transfer_prohibited": False,
                    "registry_lock": False,
                    "pending_transfer": False,
                    "created_at": at,
                    "closed_at": at if closed else None,
                    "previous_provider": None,
                }
                # As state_snapshot writes it: {"vault", "provider"} and the record.
                document = {
                    "kind": kind,
                    "at": at,
                    "vault": number,
                    "provider": ids[which],
                    "records": [record],
                }
                body = dumps(
                    document, option=sort_keys
                )  # RFC 8785 for this ASCII, number-free JSON
                if offset % CHECK_EVERY == 0:
                    check(body, document, record, now, provider_ids[which], closed, held)
                leaf = sha256(b"\x00" + body).digest()
                vault_rows.append(
                    (
                        number,
                        provider_ids[which],
                        record["status"],
                        held,
                        False,
                        False,
                        False,
                        False,
                        now,
                        now if closed else None,
                        sequence,
                    )
                )
                entry_rows.append((sequence, kind, body, leaf, now))
                ref_rows.append((number, sequence))
                for level, digest in push_leaf(frontier, leaf):
                    node_rows.append((level, sequence >> level, digest))
            with conn.cursor() as cursor:
                for table, (columns, types) in copies.items():
                    sql = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
                    with cursor.copy(sql) as copy:
                        copy.set_types(types)
                        for row in rows[table]:
                            copy.write_row(row)
            done = min(start + CHUNK, target)
            if done % 500_000 == 0 or done == target:
                rate = done / (time.monotonic() - started)
                log(f"  {done:,} vaults written ({rate:,.0f}/s)")
        size = first + target
        root = merkle.root_from_frontier([digest for _level, digest in frontier])
        conn.execute("UPDATE registry_loghead SET size = %s WHERE id = 1", (size,))
        conn.commit()
    if tree.root(size) != root:
        raise SystemExit("the stored tree does not give the root computed while filling")
    return size


def check(body, document, record, now: datetime, provider_id, closed: bool, held: bool) -> None:
    """The entry is byte for byte what the services write (``vault_record``, ``canonical``)."""
    vault = Vault(
        number=record["number"],
        provider_id=provider_id,
        status="closed" if closed else "active",
        client_hold=held,
        created_at=now,
        closed_at=now if closed else None,
    )
    if vault_record(vault) != record or canonical(document) != body:
        raise SystemExit(f"vault {record['number']}: not the entry the services would write")


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Run a command; its wall time, its peak resident memory (MB) and its output."""
    if not os.path.exists("/usr/bin/time"):  # Debian's package "time"
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
        return time.monotonic() - started, float("nan"), done.stdout
    with tempfile.NamedTemporaryFile("r") as peak:
        # GNU time reports the command's own peak (a child forked from this process would
        # inherit this process's high-water mark).
        started = time.monotonic()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", peak.name, *command],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        took = time.monotonic() - started
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}")
        return took, int(peak.read().split()[-1]) / 1024, done.stdout


def keep(step: str, seconds: float, peak_mb: float | None = None, detail: str = "") -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FILL_TABLE} (step, seconds, peak_rss_mb, detail, at) "
            "VALUES (%s, %s, %s, %s, now()) ON CONFLICT (step) DO UPDATE SET "
            "seconds = EXCLUDED.seconds, peak_rss_mb = EXCLUDED.peak_rss_mb, "
            "detail = EXCLUDED.detail, at = EXCLUDED.at",
            [step, seconds, peak_mb, detail],
        )


def filled() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {FILL_TABLE} (step text PRIMARY KEY, "
            "seconds double precision, peak_rss_mb double precision, detail text, "
            "at timestamptz)"
        )
        cursor.execute(f"SELECT 1 FROM {FILL_TABLE} WHERE step = 'done'")
        return cursor.fetchone() is not None


def vacuum(*tables: str) -> None:
    # As autovacuum would in a live registry: statistics, visibility map and hint bits.
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def fill(target: int) -> None:
    if checkpoints.log_size() or Vault.objects.exists():
        raise SystemExit("populate.py fills a new database only (run_bench.py recreates it)")
    started = time.monotonic()
    provider_ids = [p.pk for p in providers()]
    log(f"  {len(provider_ids)} providers through the services; COPYing {target:,} vaults…")
    size = vaults(target, provider_ids)
    copied = time.monotonic() - started
    keep("copy", copied, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    log(f"  log of {size:,} entries written in {copied:.0f} s; vacuum…")
    vacuum("registry_vault", "registry_logentry", "directory_vaultlogref", "directory_treenode")
    manage = [sys.executable, "manage.py"]
    log("  rebuild_state_map…")
    took, peak, output = run_measured([*manage, "rebuild_state_map"])
    keep("rebuild_state_map", took, peak, output.strip().splitlines()[-1])
    log(f"  rebuild_state_map: {took:.1f} s, peak RSS {peak:,.0f} MB")
    vacuum("directory_mapnode", "directory_staterecord")
    took, peak, _ = run_measured([*manage, "publish_checkpoint"])
    keep("publish_checkpoint", took, peak, f"first checkpoint, size {size}")
    log(f"  first publish_checkpoint: {took:.1f} s, peak RSS {peak:,.0f} MB")
    keep("done", time.monotonic() - started, None, f"{target} vaults, log size {size}")


def issuer_token() -> str:
    issuer = Issuer.objects.filter(status=OrganisationStatus.ACTIVE).first()
    if issuer is None:
        issuer = organisations.issuer_apply(
            actor=ACTOR,
            legal_name="Bench bank",
            legal_id=demo_siren(PROVIDERS),
            technical_email="tech@bank.example",
            security_email="security@bank.example",
            purposes=["bank_statement"],
        )
        issuer = organisations.issuer_set_status(
            actor=ACTOR, issuer=issuer, status="active", reason="bench"
        )
    # The limiter runs (the benchmark measures it) but must refuse nothing: wrk asks thousands
    # of lookups a minute and the plans 500,000 numbers in a minute.
    Issuer.objects.filter(pk=issuer.pk).update(
        rate_lookups_per_minute=10**9, rate_plan_numbers_per_minute=10**9
    )
    _token, value = tokens.token_create(actor=ACTOR, owner=issuer, name="bench", expires_in_days=1)
    return value


def main() -> None:
    target = int(sys.argv[1])
    if not filled():
        fill(target)
    print(issuer_token())


if __name__ == "__main__":
    main()
