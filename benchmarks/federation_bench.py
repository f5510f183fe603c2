"""A 100,000-number routing plan spread evenly over three registries, against the same plan on
one registry, measured in the same run on PostgreSQL.

    make bench-federation               # .venv/bin/python benchmarks/federation_bench.py
    .venv/bin/python benchmarks/federation_bench.py --rounds 3     # fewer rounds

Three registries (``deploy/federation.py``'s ``Node``: own PostgreSQL databases
``vault_registry_bench_fed_a`` … ``_c``, own keys under ``var/bench/federation/``, allocators
VLT1 … VLT3) are filled once like ``make bench`` fills its database (``populate.py``: every
vault in the log, the tree and the map, a first checkpoint): registry-a with 100,000 vaults,
registry-b and registry-c with 34,000 each. Each run signs and installs a new bootstrap and
serves the three with gunicorn (``deploy/gunicorn.conf.py``, 2 workers of 8 threads each).

Both plans are POSTed to registry-a by the same issuer, alternately, and timed from sending
to the last byte received (median of ``--rounds`` after one warm-up of each):

- **one registry** (the baseline): 95,000 of registry-a's vaults drawn at random, 4,000
  unknown VLT1 numbers, 1,000 typos;
- **three registries**: 31,667 vaults and 1,333 unknown numbers of each registry, 1,000 typos
  of registry-a's numbers (refused by registry-a itself): registry-a resolves its third while
  the two others resolve theirs, in parallel, and the answer carries the three parts;
- the same federated plan as NDJSON: the total, and the time to the first line (the plan line
  and registry-a's part, streamed before the peers' parts arrive);
- the parts alone, to explain the ratio: registry-a's third POSTed to registry-a, and
  registry-b's third POSTed to registry-b by its own issuer.

Every federated answer is checked: three parts, none unavailable, every number answered.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.federation import Node, make_nodes, migrate_template, prepare  # noqa: E402

PYTHON = sys.executable
SERVER = "postgres://postgres@127.0.0.1:5432"
BASE = ROOT / "var" / "bench" / "federation"
PLAN_SIZE = 100_000
VAULTS = {"registry-a": 100_000, "registry-b": 34_000, "registry-c": 34_000}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_url(node_name: str) -> str:
    return f"{SERVER}/vault_registry_bench_fed_{node_name[-1]}"


def bench_env() -> dict[str, str]:
    return {
        "DATABASE_CONN_MAX_AGE": "600",
        "VAULT_RATE_PLAN_NUMBERS_PER_MINUTE": "0",  # the bench sends millions a minute
        "VAULT_FEDERATION_PLAN_TIMEOUT": "300",
        "GUNICORN_TIMEOUT": "600",
        "GUNICORN_ACCESSLOG": "",
    }


def filled(url: str) -> bool:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('bench_fill')").fetchone()[0] is None:
            return False
        return bool(conn.execute("SELECT 1 FROM bench_fill WHERE step = 'done'").fetchone())


def fill(node: Node, vaults: int) -> str:
    """Create, migrate, key and fill the registry's database once; an issuer token of it."""
    env = node.env()
    if filled(node.database_url) and not node.key_dir.exists():
        # Signed by keys this checkout does not have: the registry would refuse to sign on.
        name = node.database_url.rsplit("/", 1)[1]
        log(f"{name} was signed by keys that are not in {node.key_dir}: dropping it")
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    if not filled(node.database_url):
        log(f"filling {node.database_url.rsplit('/', 1)[1]} with {vaults:,} vaults (first run)…")
        (node.directory / "last-checkpoint.json").unlink(missing_ok=True)
        migrate_template(node.database_url, node.directory / "migrate")
        subprocess.run(
            [PYTHON, "manage.py", "generate_keys"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    out = subprocess.run(
        [PYTHON, "benchmarks/populate.py", str(vaults)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def draw(url: str, allocator: str, known: int, unknown: int, seed: int) -> list[str]:
    """``known`` vaults of the registry drawn at random and ``unknown`` well-formed numbers of
    its allocator that no vault has."""
    from registry import numbers

    with psycopg.connect(url) as conn:
        rows = [row[0] for row in conn.execute("SELECT number FROM registry_vault").fetchall()]
    rng = random.Random(seed)
    drawn = rng.sample(rows, known)
    taken = set(rows)
    missing: list[str] = []
    while len(missing) < unknown:
        number = numbers.draw("FR", allocator).value
        if number not in taken:
            missing.append(number)
    return drawn + missing


def typos(numbers_: list[str], count: int) -> list[str]:
    return [n[:-1] + str((int(n[-1]) + 1) % 10) for n in numbers_[:count]]


def post(url: str, token: str, body: bytes, *, ndjson: bool = False) -> tuple[float, float, bytes]:
    """(seconds to the first line, seconds to the last byte, the answer)."""
    request = urllib.request.Request(
        url + "/api/v1/routing-plans",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/x-ndjson" if ndjson else "application/json",
        },
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        first = response.readline()
        first_at = time.perf_counter() - start
        answer = first + response.read()
    return first_at, time.perf_counter() - start, answer


def check_federated(answer: bytes, asked: int, ndjson: bool) -> None:
    if ndjson:
        lines = answer.splitlines()
        summary = json.loads(lines[-1])["summary"]
    else:
        summary = json.loads(answer)["summary"]
    assert summary["registries"] == 3, summary
    assert summary["registries_unavailable"] == [], summary
    assert summary["asked"] == asked and summary["distinct"] == asked, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from deploy.federation import free_port

    names = list(VAULTS)
    nodes = make_nodes(
        BASE,
        [free_port() for _ in names],
        [database_url(name) for name in names],
        workers=2,
        fresh=False,
    )
    for node in nodes:
        node.extra_env = bench_env()
    tokens = {node.name: fill(node, VAULTS[node.name]) for node in nodes}
    log("signing and installing a new bootstrap…")
    prepare(nodes, BASE, vaults=0, migrate=False)
    a, b, _c = nodes
    rng = random.Random(11)
    shares = {  # 33,000 numbers of each registry: 95 % registered, 4 % unknown
        node.name: draw(node.database_url, node.allocator, 31_667, 1_333, seed=index)
        for index, node in enumerate(nodes)
    }
    baseline = draw(a.database_url, "VLT1", 95_000, 4_000, seed=21)
    baseline += typos(baseline, 1_000)
    federated = [n for share in shares.values() for n in share]
    federated += typos(shares["registry-a"], PLAN_SIZE - len(federated))
    rng.shuffle(baseline)
    rng.shuffle(federated)
    assert len(baseline) == len(federated) == PLAN_SIZE
    bodies = {
        "baseline": json.dumps(baseline).encode(),
        "federated": json.dumps(federated).encode(),
        "a_share": json.dumps(shares["registry-a"]).encode(),
        "b_share": json.dumps(shares["registry-b"]).encode(),
    }
    load_before = os.getloadavg()[0]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        runs: dict[str, list[float]] = {
            k: [] for k in ("baseline", "federated", "ndjson", "ndjson_first", "a_share", "b_share")
        }
        for round_ in range(args.rounds + 1):  # round 0 warms up, not counted
            _, took, _answer = post(a.url, tokens["registry-a"], bodies["baseline"])
            _, fed_took, answer = post(a.url, tokens["registry-a"], bodies["federated"])
            check_federated(answer, PLAN_SIZE, ndjson=False)
            first, nd_took, answer = post(
                a.url, tokens["registry-a"], bodies["federated"], ndjson=True
            )
            check_federated(answer, PLAN_SIZE, ndjson=True)
            _, a_took, _answer = post(a.url, tokens["registry-a"], bodies["a_share"])
            _, b_took, _answer = post(b.url, tokens["registry-b"], bodies["b_share"])
            log(
                f"round {round_}: one registry {took:.3f} s, three {fed_took:.3f} s, "
                f"NDJSON {nd_took:.3f} s (first line {first:.3f} s), "
                f"a's third {a_took:.3f} s, b's third alone {b_took:.3f} s"
            )
            if round_:
                for key, value in (
                    ("baseline", took),
                    ("federated", fed_took),
                    ("ndjson", nd_took),
                    ("ndjson_first", first),
                    ("a_share", a_took),
                    ("b_share", b_took),
                ):
                    runs[key].append(value)
    finally:
        for node in nodes:
            node.stop()
    median = {key: statistics.median(values) for key, values in runs.items()}
    ratio = median["federated"] / median["baseline"]
    print(
        f"\nMachine: {os.cpu_count()} cores, PostgreSQL at 127.0.0.1, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average (1 min) "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; median of {args.rounds}\n"
    )
    print("| figure | measured | baseline | ratio | target |\n|---|---|---|---|---|")
    print(
        f"| 100,000-number plan over 3 registries vs on 1 (JSON) | {median['federated']:.3f} s "
        f"| {median['baseline']:.3f} s | {ratio:.2f}x | ≤ 1.5x |"
    )
    print(
        f"| the same, NDJSON: last byte / first line (registry-a's part) | "
        f"{median['ndjson']:.3f} / {median['ndjson_first']:.3f} s | {median['baseline']:.3f} s "
        f"| {median['ndjson'] / median['baseline']:.2f}x | |"
    )
    print(
        f"| registry-a's third alone / registry-b's third alone (33,000 numbers) | "
        f"{median['a_share']:.3f} / {median['b_share']:.3f} s | | | |"
    )
    print(json.dumps({"median_seconds": median, "ratio": ratio}))


if __name__ == "__main__":
    main()
