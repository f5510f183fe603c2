"""The registry's side of `make bench` for writes: what the state map adds to a write, and what
checkpoint publication costs with two witnesses.

    DATABASE_URL=… python benchmarks/write_bench.py writes 300
    DATABASE_URL=… VAULT_WITNESSES='[…]' python benchmarks/write_bench.py publish 20
    DATABASE_URL=… python benchmarks/write_bench.py seed-witness STATE.db REGISTRY_URL

Run by run_bench.py on the filled database (prints one JSON object):

``writes N``: ``vault_allocate`` through the service, each in its own transaction, alternating
the real service with the same service where ``state.apply`` is a no-op (no map records, no map
nodes), N of each after a warm-up. Those transactions are rolled back at their end: a write
committed without its map update would leave the log ahead of the map for good (the map and
the log are append-only, and the next checkpoint would be refused), so both variants are
timed up to the commit, excluded. Then N real writes, committed, with the map (commit
included). Checkpoint publication after a commit is switched off while timing (it is measured
by ``publish``); one checkpoint is published at the end so the database stays signed.

``publish N``: a small committed write (one ``vault_allocate``), then ``checkpoints.publish()``
timed, alternating with the witnesses of ``VAULT_WITNESSES`` and without any, N of each after
two warm-up rounds; every witnessed checkpoint must carry all the witnesses' cosignatures.

``seed-witness``: the state of a witness that has followed the log and cosigned the latest
checkpoint (its size, roots, frontier and note), written into that witness's SQLite file
after ``vault-witness add-log``: a witness started from size 0 replays the whole log first.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from directory import checkpoints, state, tree  # noqa: E402
from directory.witness import app as witness_app  # noqa: E402
from registry.models import OrganisationStatus, Provider  # noqa: E402
from registry.services import vaults  # noqa: E402
from registry.services.common import Actor  # noqa: E402

ACTOR = Actor.system("bench")


class _Rollback(Exception):
    pass


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median_ms": statistics.median(samples) * 1e3,
        "p99_ms": percentile(samples, 0.99) * 1e3,
        "mean_ms": statistics.fmean(samples) * 1e3,
    }


def provider() -> Provider:
    return Provider.objects.filter(status=OrganisationStatus.ACTIVE).order_by("pk").first()


def writes(count: int) -> dict:
    target = provider()
    real_apply = state.apply
    publish_soon = checkpoints.publish_soon
    checkpoints.publish_soon = lambda: None
    variants = {"map": real_apply, "no_map": lambda version, records: None}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for index in range(2 * (count + 10)):
            name = ("map", "no_map")[index % 2]
            state.apply = variants[name]
            started = time.perf_counter()
            try:
                with transaction.atomic():
                    vaults.vault_allocate(actor=ACTOR, provider=target)
                    took = time.perf_counter() - started
                    raise _Rollback
            except _Rollback:
                pass
            if index >= 20:  # the first ten of each warm up
                samples[name].append(took)
        state.apply = real_apply
        committed = []
        for _ in range(count):
            started = time.perf_counter()
            vaults.vault_allocate(actor=ACTOR, provider=target)
            committed.append(time.perf_counter() - started)
    finally:
        state.apply, checkpoints.publish_soon = real_apply, publish_soon
    checkpoints.publish()
    result = {name: summary(values) for name, values in samples.items()}
    result["committed_map"] = summary(committed)
    return result


def publish(count: int) -> dict:
    target = provider()
    witnesses = list(settings.VAULT_WITNESSES)
    if not witnesses:
        raise SystemExit("set VAULT_WITNESSES")
    publish_soon = checkpoints.publish_soon
    checkpoints.publish_soon = lambda: None
    samples: dict[str, list[float]] = {"witnesses": [], "none": []}
    try:
        for index in range(2 * (count + 2)):
            name = ("witnesses", "none")[index % 2]
            vaults.vault_allocate(actor=ACTOR, provider=target)
            settings.VAULT_WITNESSES = witnesses if name == "witnesses" else []
            started = time.perf_counter()
            checkpoint = checkpoints.publish()
            took = time.perf_counter() - started
            if name == "witnesses" and len(checkpoint.cosigners) != len(witnesses):
                raise SystemExit(
                    f"checkpoint {checkpoint.size} cosigned by {checkpoint.cosigners} only"
                )
            if index >= 4:
                samples[name].append(took)
    finally:
        settings.VAULT_WITNESSES = witnesses
        checkpoints.publish_soon = publish_soon
    return {name: summary(values) for name, values in samples.items()}


def seed_witness(path: str, url: str) -> dict:
    checkpoint = checkpoints.publish()
    size = checkpoint.size
    frontier = [(level, digest) for (level, _index), digest in tree._frontier(size)]
    db = witness_app.connect(path)
    try:
        db.execute("BEGIN IMMEDIATE")
        loaded = witness_app._load(db, settings.VAULT_LOG_ORIGIN)
        if loaded is None:
            raise SystemExit("run vault-witness add-log first")
        witness_app._store(
            db,
            witness_app.LogState(
                loaded.origin,
                loaded.vkey,
                url,
                size,
                bytes(checkpoint.root_hash),
                bytes(checkpoint.map_root),
                frontier,
                checkpoint.note,
            ),
            int(time.time()),
        )
        db.execute("COMMIT")
    finally:
        db.close()
    return {"size": size}


def main() -> None:
    what = sys.argv[1]
    if what == "writes":
        result = writes(int(sys.argv[2]))
    elif what == "publish":
        result = publish(int(sys.argv[2]))
    elif what == "seed-witness":
        result = seed_witness(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
