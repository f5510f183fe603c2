"""The routing plan's vault query alone, on the benchmark databases: where plan time grows.

    .venv/bin/python benchmarks/plan_sql.py            # vault_registry_bench_1m and _10m

Runs the query ``directory.selectors`` sends for a 100,000-number plan (the numbers of
``run_bench.py``: 95% registered, 4% unknown and 1% typos, which the plan refuses before it
queries) and prints the best of 5 per database, with the server's shared_buffers. The
databases are the ones ``make bench`` fills.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-0123456789-abcdefghij")

import django  # noqa: E402

django.setup()

import run_bench  # noqa: E402
from directory.selectors import _rows_sql  # noqa: E402

from registry import numbers  # noqa: E402
from registry.federation import known_allocators  # noqa: E402


def main() -> None:
    sql = _rows_sql("postgresql", False, "probe")
    allocators = known_allocators()
    for label in run_bench.SIZES:
        url = f"{run_bench.SERVER}/vault_registry_bench_{label}"
        try:
            asked, _known = run_bench.plan_numbers(url)
        except psycopg.OperationalError:
            print(f"{label}: no database (run `make bench SIZE=10m` once)")
            continue
        valid = {n for n in asked if numbers.normalise_fast(n, allocators) is not None}
        param = ",".join(sorted(valid))
        with psycopg.connect(url) as conn:
            buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                rows = conn.execute(sql, (param,)).fetchall()
                best = min(best, time.perf_counter() - start)
        print(f"{label}: {best * 1000:.0f} ms, {len(rows)} groups (shared_buffers {buffers})")


if __name__ == "__main__":
    main()
