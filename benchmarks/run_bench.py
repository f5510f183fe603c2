"""Routing plans, lookups with their proofs, writes and checkpoints on PostgreSQL, each against
a baseline measured in the same run.

    make bench              # 1,000,000 vaults over 50 providers
    make bench SIZE=10m     # also 10,000,000 vaults, and the plan's growth from 1M to 10M
    .venv/bin/python benchmarks/run_bench.py --size 20k     # a quick smoke run (20,000 vaults)

Figures (see benchmarks/README.md):
- fill: how long the database took to fill (once; populate.py), among it ``rebuild_state_map``
  (the state map replayed from the whole log) and the first ``publish_checkpoint``;
- plan: a 100,000-number routing plan end to end over HTTP (median of 5), against the same
  resolution done as one raw psycopg ``= ANY`` query plus stdlib JSON in this process;
- plan verification (client_bench.py): ``POST /api/v1/state/proofs`` bytes and time, and the
  client's ``verify_plan``;
- lookups: requests/s and p50/p99 from wrk (second process, fixed connections), against a
  minimal WSGI app doing the same indexed lookup under the same gunicorn settings; a sample of
  answers verified with ``verify_lookup`` afterwards;
- writes (write_bench.py): ``vault_allocate`` with and without the state map's update;
- checkpoints (write_bench.py): ``checkpoints.publish()`` with two witnesses on loopback
  (``vault-witness serve``) and without;
- memory: the high-water RSS of the gunicorn workers after the plans and their proofs.
"""

from __future__ import annotations

import argparse
import io
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
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVER = "postgres://postgres@127.0.0.1:5432"
PORT = 8765
SIZES = {"20k": 20_000, "1m": 1_000_000, "10m": 10_000_000}
WITNESS_PORTS = (7391, 7392)
BENCH = ROOT / "benchmarks"
PLAN_SIZE = 100_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database(name: str, vaults: int) -> tuple[str, str, dict[str, dict]]:
    """Create and fill the benchmark database once (a database left half-filled is dropped and
    filled again); return its URL, an issuer token and the fill's timings."""
    url = f"{SERVER}/{name}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists and not fill_of(url).get("done"):
        log(f"{name} was not filled completely: dropping it")
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        exists = None
    if exists and not key_dir(url).exists():
        # Its checkpoints were signed by keys this checkout no longer has: the registry would
        # rightly refuse to sign on top of them.
        log(f"{name} was signed by keys that are not in {key_dir(url)}: dropping it")
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        exists = None
    env = django_env(url)
    if not exists:
        state_file(url).unlink(missing_ok=True)
        shutil.rmtree(key_dir(url), ignore_errors=True)
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        log(f"filling {name} with {vaults:,} vaults (first run only)…")
    for command in (["migrate", "--noinput", "-v0"], ["createcachetable"], ["generate_keys"]):
        subprocess.run(
            [PYTHON, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    done = subprocess.run(
        [PYTHON, "benchmarks/populate.py", str(vaults)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return url, done.stdout.strip().splitlines()[-1], fill_of(url)


def fill_of(url: str) -> dict[str, dict]:
    """What populate.py measured when it filled this database (its ``bench_fill`` table)."""
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('bench_fill')").fetchone()[0] is None:
            return {}
        rows = conn.execute(
            "SELECT step, seconds, peak_rss_mb, detail, at::date::text FROM bench_fill"
        ).fetchall()
    return {
        step: {"seconds": seconds, "peak_rss_mb": peak, "detail": detail, "date": date}
        for step, seconds, peak, detail, date in rows
    }


def manage(url: str, *command: str, extra_env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        [PYTHON, "manage.py", *command],
        cwd=ROOT,
        env={**django_env(url), **(extra_env or {})},
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout


def script(url: str, *args: str, extra_env: dict[str, str] | None = None) -> dict:
    """Run one of the benchmark's helper scripts; the JSON object it prints last."""
    out = subprocess.run(
        [PYTHON, *args],
        cwd=ROOT,
        env={**django_env(url), **(extra_env or {})},
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def state_file(url: str) -> Path:
    """Where the registry of this database keeps the last checkpoint it signed: one file per
    database (the default in var/ is one registry's)."""
    return ROOT / "var" / "bench" / f"{url.rsplit('/', 1)[-1]}.last-checkpoint.json"


def lookup_environ(number: str, token: str) -> dict:
    """The WSGI environ of ``GET /api/v1/vaults/<number>`` with an issuer's token, for the
    scripts that time lookups through ``registry.wsgi.application`` in process."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/api/v1/vaults/{number}",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }


def key_dir(url: str) -> Path:
    """The signing keys of this database's registry, kept beside its last signed checkpoint:
    a database signed by keys that are gone is filled again."""
    return ROOT / "var" / "bench" / f"{url.rsplit('/', 1)[-1]}.keys"


def django_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "VAULT_CHECKPOINT_STATE_FILE": str(state_file(url)),
        "VAULT_KEY_DIR": str(key_dir(url)),
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghij",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "GUNICORN_ACCESSLOG": "",
        "DATABASE_CONN_MAX_AGE": "600",
        # The rate limits' shared store, as deploy/env.example configures it (without Redis, the
        # database cache adds a transaction of five queries to every lookup).
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
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


def plan_numbers(url: str, plan_size: int = PLAN_SIZE) -> tuple[list[str], list[str]]:
    """95% vaults of the registry drawn at random, 4% unknown numbers, 1% typos."""
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT reltuples FROM pg_class WHERE relname='registry_vault'")
        fraction = min(100.0, 100.0 * plan_size * 1.3 / max(total.fetchone()[0], 1))
        rows = conn.execute(
            f"SELECT number FROM registry_vault TABLESAMPLE SYSTEM ({fraction}) REPEATABLE (7)"
        ).fetchall()
    rng = random.Random(7)
    known = rng.sample([row[0] for row in rows], int(plan_size * 0.95))
    sys.path.insert(0, str(ROOT))
    from registry import numbers

    unknown = [numbers.draw("FR", "VLT1").value for _ in range(int(plan_size * 0.04))]
    typos = [n[:-1] + str((int(n[-1]) + 1) % 10) for n in known[: plan_size // 100]]
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
    assert json.loads(answer)["summary"]["asked"] == len(json.loads(body))
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


def sample_for_verification(url: str, known: list[str]) -> list[str]:
    """Numbers whose answers are verified after the timed lookups: registered ones, closed
    ones (410), held ones and unknown ones (404 with a proof of absence)."""
    with psycopg.connect(url) as conn:
        closed = [
            r[0]
            for r in conn.execute(
                "SELECT number FROM registry_vault WHERE status = 'closed' LIMIT 10"
            )
        ]
        held = [
            r[0]
            for r in conn.execute("SELECT number FROM registry_vault WHERE client_hold LIMIT 10")
        ]
    from registry import numbers

    unknown = [numbers.draw("FR", "VLT1").value for _ in range(10)]
    return known[-170:] + closed + held + unknown


class Witnesses:
    """Two ``vault-witness serve`` processes on loopback, witnessing the bench registry, each
    seeded with the state of a witness that has cosigned the latest checkpoint."""

    def __init__(self, url: str):
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-witness-")
        self.processes: list[subprocess.Popen] = []
        self.config: list[dict[str, str]] = []
        well_known = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/.well-known/vault-registry").read()
        )
        origin, log_vkey = well_known["origin"], well_known["log_keys"][0]["vkey"]
        tool = [PYTHON, "-m", "directory.witness.cli"]  # the vault-witness command
        registry = f"http://127.0.0.1:{PORT}"
        for number, port in enumerate(WITNESS_PORTS, 1):
            folder = Path(self.tmp.name)
            name = f"bench.example/w{number}"
            key, db = folder / f"w{number}.pem", folder / f"w{number}.db"
            run = lambda *args: subprocess.run(  # noqa: E731
                [*tool, *args], cwd=ROOT, check=True, capture_output=True, text=True
            ).stdout.strip()
            vkey = run("keygen", "--key", str(key), "--name", name)
            run(
                "add-log",
                "--state",
                str(db),
                "--origin",
                origin,
                "--vkey",
                log_vkey,
                "--url",
                registry,
            )
            script(url, "benchmarks/write_bench.py", "seed-witness", str(db), registry)
            self.processes.append(
                subprocess.Popen(
                    [
                        *tool,
                        "serve",
                        "--state",
                        str(db),
                        "--key",
                        str(key),
                        "--name",
                        name,
                        "--listen",
                        f"127.0.0.1:{port}",
                        "--evidence",
                        str(folder / f"ev{number}"),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=open(folder / f"w{number}.log", "w"),  # noqa: SIM115
                    start_new_session=True,
                )
            )
            self.config.append({"name": name, "vkey": vkey, "url": f"http://127.0.0.1:{port}"})
        for port in WITNESS_PORTS:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                except urllib.error.HTTPError:
                    break  # 404: it is up
                except OSError:
                    time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in Path(self.tmp.name).glob("w*.log"))

    def stop(self) -> None:
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        self.tmp.cleanup()


def run_size(label: str, vaults: int, args) -> dict:
    url, token, fill = database(f"vault_registry_bench_{label}", vaults)
    asked, known = plan_numbers(url, min(PLAN_SIZE, vaults // 4))
    body = json.dumps(asked).encode()
    results: dict = {"fill": fill}
    log(f"[{label}] plan ceiling (raw psycopg = ANY + stdlib json)…")
    results["plan_ceiling_s"] = median_seconds(lambda: plan_ceiling(url, asked))
    manage(url, "publish_checkpoint", "--force")  # a fresh checkpoint for the clients' max age
    server = Gunicorn(url)
    try:
        log(f"[{label}] plan over HTTP…")
        results["plan_s"] = median_seconds(lambda: plan_over_http(token, body))
        results["plan_peak_rss_mb"] = server.peak_rss_mb()
        log(f"[{label}] plan verified by the client (state proofs)…")
        with tempfile.NamedTemporaryFile("w", suffix=".json") as numbers_file:
            numbers_file.write(json.dumps(asked))
            numbers_file.flush()
            results["verify"] = script(
                url,
                "benchmarks/client_bench.py",
                "plan",
                f"http://127.0.0.1:{PORT}",
                token,
                numbers_file.name,
                "--repeat",
                str(args.repeat),
            )
        results["proofs_peak_rss_mb"] = server.peak_rss_mb()
        if not args.skip_lookups:
            log(f"[{label}] lookups (wrk)…")
            sample = known[:20_000]
            wrk(token, sample, 3, args.connections)  # warm-up
            results.update(
                {
                    f"lookup_{k}": v
                    for k, v in wrk(token, sample, args.seconds, args.connections).items()
                }
            )
            log(f"[{label}] a sample of lookups verified by the client…")
            with tempfile.NamedTemporaryFile("w", suffix=".json") as numbers_file:
                numbers_file.write(json.dumps(sample_for_verification(url, sample)))
                numbers_file.flush()
                results["lookups_verified"] = script(
                    url,
                    "benchmarks/client_bench.py",
                    "lookups",
                    f"http://127.0.0.1:{PORT}",
                    token,
                    numbers_file.name,
                )
        log(f"[{label}] writes with and without the state map…")
        results["writes"] = script(url, "benchmarks/write_bench.py", "writes", str(args.writes))
        log(f"[{label}] checkpoint publication with 2 witnesses…")
        witnesses = Witnesses(url)
        try:
            results["publish"] = script(
                url,
                "benchmarks/write_bench.py",
                "publish",
                str(args.publishes),
                extra_env={"VAULT_WITNESSES": json.dumps(witnesses.config)},
            )
        except subprocess.CalledProcessError:
            log(witnesses.logs())
            raise
        finally:
            witnesses.stop()
    finally:
        server.stop()
    if not args.skip_lookups:
        ceiling = Gunicorn(url, "benchmarks.minimal_wsgi:application")
        try:
            log(f"[{label}] lookup ceiling (minimal WSGI + psycopg)…")
            wrk(token, sample, 3, args.connections)
            results.update(
                {
                    f"lookup_ceiling_{k}": v
                    for k, v in wrk(token, sample, args.seconds, args.connections).items()
                }
            )
        finally:
            ceiling.stop()
    return results


def table(results: dict[str, dict]) -> str:
    rows = ["| size | figure | measured | baseline | ratio | target |", "|---|---|---|---|---|---|"]
    for label, r in results.items():
        fill = r["fill"]
        if "rebuild_state_map" in fill:
            f = fill["rebuild_state_map"]
            rows.append(
                f"| {label} | `rebuild_state_map` (the map from the whole log; fill of "
                f"{fill['done']['date']}) | {f['seconds']:.0f} s, peak RSS "
                f"{f['peak_rss_mb']:,.0f} MB | | | |"
            )
            f = fill["publish_checkpoint"]
            rows.append(
                f"| {label} | first `publish_checkpoint` (both roots from the whole log) | "
                f"{f['seconds']:.0f} s, peak RSS {f['peak_rss_mb']:,.0f} MB | | | |"
            )
            rows.append(
                f"| {label} | whole fill (COPY, vacuum, rebuild, first checkpoint) | "
                f"{fill['done']['seconds'] / 60:.1f} min (COPY {fill['copy']['seconds']:.0f} s) "
                "| | | |"
            )
        ratio = r["plan_s"] / r["plan_ceiling_s"]
        rows.append(
            f"| {label} | 100,000-number plan over HTTP (median of 5) | {r['plan_s']:.3f} s | "
            f"{r['plan_ceiling_s']:.3f} s | {ratio:.2f}x | ≤ 1.5x and < 1.5 s |"
        )
        v = r["verify"]
        rows.append(
            f"| {label} | plan's state proofs: `POST /api/v1/state/proofs` ({v['keys']:,} keys, "
            f"{v['present']:,} present) | {v['seconds']:.2f} s; proof {v['proof_bytes'] / 1e6:.1f} "
            f"MB ({v['proof_b64_bytes'] / 1e6:.1f} MB base64, {v['proof_bytes'] / v['keys']:.0f} "
            f"B/key), records {v['records_bytes'] / 1e6:.1f} MB | | | |"
        )
        rows.append(
            f"| {label} | client's verification of the plan (`verify_plan` less the proofs call)"
            f" | {v['verify_client_s']:.2f} s | | | ≤ 5 s |"
        )
        rows.append(
            f"| {label} | of which the multiproof alone / with the records' hashes | "
            f"{v['multiproof_s']:.2f} / {v['verify_records_s']:.2f} s | | | |"
        )
        rows.append(
            f"| {label} | `verify_plan` end to end (proofs call included) | "
            f"{v['verify_total_s']:.2f} s | | | |"
        )
        if "lookup_rps" in r:
            share = r["lookup_rps"] / r["lookup_ceiling_rps"]
            rows.append(
                f"| {label} | single lookups with their proofs | {r['lookup_rps']:,.0f} req/s | "
                f"{r['lookup_ceiling_rps']:,.0f} req/s | {share:.2f}x | ≥ 0.30x |"
            )
            rows.append(
                f"| {label} | lookup latency p50 / p99 | {r['lookup_p50_ms']:.2f} / "
                f"{r['lookup_p99_ms']:.2f} ms | {r['lookup_ceiling_p50_ms']:.2f} / "
                f"{r['lookup_ceiling_p99_ms']:.2f} ms | | p99 < 15 ms |"
            )
            checked = r["lookups_verified"]
            statuses = ", ".join(f"{n} x {s}" for s, n in sorted(checked["by_status"].items()))
            rows.append(
                f"| {label} | lookups verified with `verify_lookup` (after the timing) | "
                f"{checked['verified']} of {checked['verified']} ({statuses}) | | | all |"
            )
            sizes = checked.get("vault_proof_bytes", {})
            if sizes:
                shown = ", ".join(
                    f"{s}: {v['median']:.0f} (max {v['max']})" for s, v in sorted(sizes.items())
                )
                rows.append(
                    f"| {label} | a lookup's vault proof, bytes by HTTP status, median | {shown} "
                    "| | | ≤ 1 KiB |"
                )
        w = r["writes"]
        extra = w["map"]["median_ms"] - w["no_map"]["median_ms"]
        rows.append(
            f"| {label} | `vault_allocate` median / p99, with the map vs `state.apply` a no-op "
            f"({w['map']['n']} each, alternated, rolled back) | {w['map']['median_ms']:.2f} / "
            f"{w['map']['p99_ms']:.2f} ms | {w['no_map']['median_ms']:.2f} / "
            f"{w['no_map']['p99_ms']:.2f} ms | +{extra:.2f} ms "
            f"({w['map']['median_ms'] / w['no_map']['median_ms']:.2f}x) | |"
        )
        c = w["committed_map"]
        rows.append(
            f"| {label} | `vault_allocate` committed, with the map, median / p99 ({c['n']}) | "
            f"{c['median_ms']:.2f} / {c['p99_ms']:.2f} ms | | | |"
        )
        p = r["publish"]
        rows.append(
            f"| {label} | `checkpoints.publish()` after a write, median / p99, 2 witnesses on "
            f"loopback vs none ({p['witnesses']['n']} each) | {p['witnesses']['median_ms']:.1f} / "
            f"{p['witnesses']['p99_ms']:.1f} ms | {p['none']['median_ms']:.1f} / "
            f"{p['none']['p99_ms']:.1f} ms | "
            f"+{p['witnesses']['median_ms'] - p['none']['median_ms']:.1f} ms | |"
        )
        rows.append(
            f"| {label} | worker memory peak (VmHWM), after the plans / after their proofs | "
            f"{r['plan_peak_rss_mb']:.0f} / {r['proofs_peak_rss_mb']:.0f} MB | | | < 300 MB |"
        )
    if "10m" in results and "1m" in results:
        growth = results["10m"]["plan_s"] / results["1m"]["plan_s"]
        rows.append(f"| 1m → 10m | plan time growth | {growth:.2f}x | | | ≤ 1.3x |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--size",
        choices=list(SIZES),
        default=os.environ.get("SIZE", "1m"),
        help="10m runs 1m too; 20k is a smoke run",
    )
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--skip-lookups", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="plan verifications (median)")
    parser.add_argument("--writes", type=int, default=300, help="writes of each variant")
    parser.add_argument("--publishes", type=int, default=20, help="checkpoints of each variant")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.skip_lookups:
        sys.exit("wrk is missing: `apt-get install wrk` (Debian), or pass --skip-lookups")
    labels = ["1m", "10m"] if args.size == "10m" else [args.size]
    load_before = os.getloadavg()
    results = {}
    for label in labels:
        results[label] = run_size(label, SIZES[label], args)
        log(table({label: results[label]}))  # as soon as it is measured
        log("raw: " + json.dumps(results[label]))
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(
        f"Machine: {cpu} cores, PostgreSQL at 127.0.0.1, {time.strftime('%Y-%m-%d')}; load "
        f"average (1 min) {load_before[0]:.2f} before the run, {os.getloadavg()[0]:.2f} after\n"
    )
    print(table(results))
    print("\nraw:", json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
