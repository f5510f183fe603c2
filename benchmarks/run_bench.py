"""Routing plans and lookups on PostgreSQL, each against its ceiling measured in the same run.

    make bench              # 1,000,000 vaults over 50 providers
    make bench SIZE=10m     # also 10,000,000 vaults, and the plan's growth from 1M to 10M

Figures:
- plan: a 100,000-number routing plan end to end over HTTP (median of 5), against the same
  resolution done as one raw psycopg ``= ANY`` query plus stdlib JSON in this process;
- lookups: requests/s and p50/p99 from wrk (second process, fixed connections), against a
  minimal WSGI app doing the same indexed lookup under the same gunicorn settings;
- memory: the high-water RSS of the gunicorn workers after the plans.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVER = "postgres://postgres@127.0.0.1:5432"
PORT = 8765
SIZES = {"1m": 1_000_000, "10m": 10_000_000}
PLAN_SIZE = 100_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database(name: str, vaults: int) -> tuple[str, str]:
    """Create (once) and fill the benchmark database; return its URL and an issuer token."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    env = django_env(url)
    for command in (["migrate", "--noinput", "-v0"], ["generate_keys"]):
        subprocess.run(
            [PYTHON, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    log(f"filling {name} up to {vaults:,} vaults (first run only)…")
    done = subprocess.run(
        [PYTHON, "benchmarks/populate.py", str(vaults)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return url, done.stdout.strip().splitlines()[-1]


def django_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghij",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "GUNICORN_ACCESSLOG": "",
        "DATABASE_CONN_MAX_AGE": "600",
    }


class Gunicorn:
    """gunicorn started with deploy/gunicorn.conf.py, as `make run` and deploy/ do."""

    def __init__(self, url: str, app: str | None = None):
        command = [str(Path(PYTHON).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py"]
        self.process = subprocess.Popen(
            command + ([app] if app else []),
            cwd=ROOT,
            env=django_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/schema/", timeout=2)
                break
            except OSError as exc:
                if getattr(exc, "code", None):  # any HTTP answer means it is up
                    break
                time.sleep(0.3)
        time.sleep(1)

    def workers(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def peak_rss_mb(self) -> float:
        peaks = []
        for pid in self.workers():
            status = Path(f"/proc/{pid}/status").read_text()
            peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)
        return max(peaks)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def plan_numbers(url: str) -> tuple[list[str], list[str]]:
    """95% vaults of the registry drawn at random, 4% unknown numbers, 1% typos."""
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT reltuples FROM pg_class WHERE relname='registry_vault'")
        fraction = min(100.0, 100.0 * PLAN_SIZE * 1.3 / max(total.fetchone()[0], 1))
        rows = conn.execute(
            f"SELECT number FROM registry_vault TABLESAMPLE SYSTEM ({fraction}) REPEATABLE (7)"
        ).fetchall()
    rng = random.Random(7)
    known = rng.sample([row[0] for row in rows], int(PLAN_SIZE * 0.95))
    sys.path.insert(0, str(ROOT))
    from registry import numbers

    unknown = [numbers.draw("FR", "VLT1").value for _ in range(int(PLAN_SIZE * 0.04))]
    typos = [n[:-1] + str((int(n[-1]) + 1) % 10) for n in known[: PLAN_SIZE // 100]]
    asked = known + unknown + typos
    rng.shuffle(asked)
    return asked, known


def median_seconds(run, times: int = 5) -> float:
    """Median duration of ``run``: the seconds it returns, or its wall time if it returns none."""
    run()  # warm-up: caches, connections, page cache
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        took = run()
        samples.append(took if took is not None else time.perf_counter() - start)
    return statistics.median(samples)


def plan_over_http(token: str, body: bytes) -> float:
    """Seconds from sending the plan to its last byte received; the answer is checked after."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api/v1/routing-plans",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = response.read()
    took = time.perf_counter() - start
    assert json.loads(answer)["summary"]["asked"] == PLAN_SIZE
    return took


def plan_ceiling(url: str, asked: list[str]) -> None:
    """The same resolution with nothing around it: one raw query, group, stdlib JSON."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT v.number, v.provider_id::text, v.status, v.client_hold, v.server_hold, "
            "p.status FROM registry_vault v JOIN registry_provider p ON p.id = v.provider_id "
            "WHERE v.number = ANY(%s)",
            (asked,),
        ).fetchall()
    groups: dict[str, list[str]] = defaultdict(list)
    unroutable = []
    for number, provider, status, client_hold, server_hold, provider_status in rows:
        if status == "closed":
            unroutable.append({"number": number, "reason": "closed"})
        elif client_hold or server_hold:
            unroutable.append({"number": number, "reason": "hold"})
        elif provider_status != "active":
            unroutable.append({"number": number, "reason": "provider_suspended"})
        else:
            groups[provider].append(number)
    json.dumps(
        {
            "groups": [{"provider": p, "numbers": n} for p, n in groups.items()],
            "unroutable": unroutable,
        }
    ).encode()


def wrk(token: str, sample: list[str], seconds: int, connections: int) -> dict[str, float]:
    """Requests/s and latency percentiles under a fixed number of connections."""
    with tempfile.TemporaryDirectory() as tmp:
        numbers_file = Path(tmp) / "numbers.txt"
        numbers_file.write_text("\n".join(sample))
        script = Path(tmp) / "lookup.lua"
        script.write_text(
            f"""
local numbers = {{}}
for line in io.lines("{numbers_file}") do numbers[#numbers + 1] = line end
wrk.headers["Authorization"] = "Bearer {token}"
local i = 0
request = function()
  i = i % #numbers + 1
  return wrk.format("GET", "/api/v1/vaults/" .. numbers[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status,
    summary.requests))
end
"""
        )
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{PORT}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rps, p50, p99, errors, requests = re.search(
        r"RESULT (\S+) (\S+) (\S+) (\d+) (\d+)", out
    ).groups()
    # Closed vaults answer 410 (about 0.5% of the sample): any more is a failure.
    if int(errors) > int(requests) // 50:
        raise RuntimeError(f"{errors} of {requests} lookups answered an HTTP error")
    return {"rps": float(rps), "p50_ms": float(p50), "p99_ms": float(p99)}


def run_size(label: str, vaults: int, args) -> dict[str, float]:
    url, token = database(f"vault_registry_bench_{label}", vaults)
    asked, known = plan_numbers(url)
    body = json.dumps(asked).encode()
    results: dict[str, float] = {}
    log(f"[{label}] plan ceiling (raw psycopg = ANY + stdlib json)…")
    results["plan_ceiling_s"] = median_seconds(lambda: plan_ceiling(url, asked))
    server = Gunicorn(url)
    try:
        log(f"[{label}] plan over HTTP…")
        results["plan_s"] = median_seconds(lambda: plan_over_http(token, body))
        results["plan_peak_rss_mb"] = server.peak_rss_mb()
        if not args.skip_lookups:
            log(f"[{label}] lookups (wrk)…")
            known = known[:20_000]
            wrk(token, known, 3, args.connections)  # warm-up
            results.update(
                {
                    f"lookup_{k}": v
                    for k, v in wrk(token, known, args.seconds, args.connections).items()
                }
            )
    finally:
        server.stop()
    if not args.skip_lookups:
        ceiling = Gunicorn(url, "benchmarks.minimal_wsgi:application")
        try:
            log(f"[{label}] lookup ceiling (minimal WSGI + psycopg)…")
            wrk(token, known, 3, args.connections)
            results.update(
                {
                    f"lookup_ceiling_{k}": v
                    for k, v in wrk(token, known, args.seconds, args.connections).items()
                }
            )
        finally:
            ceiling.stop()
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    rows = ["| size | figure | measured | ceiling | ratio | target |", "|---|---|---|---|---|---|"]
    for label, r in results.items():
        ratio = r["plan_s"] / r["plan_ceiling_s"]
        rows.append(
            f"| {label} | 100,000-number plan over HTTP (median of 5) | {r['plan_s']:.3f} s | "
            f"{r['plan_ceiling_s']:.3f} s | {ratio:.2f}x | ≤ 1.5x and < 1.5 s |"
        )
        if "lookup_rps" in r:
            share = r["lookup_rps"] / r["lookup_ceiling_rps"]
            rows.append(
                f"| {label} | single lookups | {r['lookup_rps']:,.0f} req/s | "
                f"{r['lookup_ceiling_rps']:,.0f} req/s | {share:.0%} | ≥ 50% |"
            )
            rows.append(
                f"| {label} | lookup latency p50 / p99 | {r['lookup_p50_ms']:.2f} / "
                f"{r['lookup_p99_ms']:.2f} ms | {r['lookup_ceiling_p50_ms']:.2f} / "
                f"{r['lookup_ceiling_p99_ms']:.2f} ms | | p99 < 15 ms |"
            )
        rows.append(
            f"| {label} | worker memory peak (VmHWM) | {r['plan_peak_rss_mb']:.0f} MB | | | "
            "< 300 MB |"
        )
    if "10m" in results and "1m" in results:
        growth = results["10m"]["plan_s"] / results["1m"]["plan_s"]
        rows.append(f"| 1m → 10m | plan time growth | {growth:.2f}x | | | ≤ 1.3x |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["1m", "10m"], default=os.environ.get("SIZE", "1m"))
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--skip-lookups", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.skip_lookups:
        sys.exit("wrk is missing: `apt-get install wrk` (Debian), or pass --skip-lookups")
    labels = ["1m", "10m"] if args.size == "10m" else ["1m"]
    results = {label: run_size(label, SIZES[label], args) for label in labels}
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(f"Machine: {cpu} cores, PostgreSQL at 127.0.0.1, {time.strftime('%Y-%m-%d')}\n")
    print(table(results))
    print("\nraw:", json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
