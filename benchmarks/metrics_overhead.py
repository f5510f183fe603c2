"""What the metrics and the access log line cost a lookup, in process, in one run.

    .venv/bin/python benchmarks/metrics_overhead.py [postgres://…/database]

Builds a small registry in the database given (default: vr_metrics_bench on the local
PostgreSQL, created anew; ``sqlite:////tmp/x.sqlite3`` keeps the database's own latency
out of the figures on a busy machine; migrated, one provider and 2,000 vaults through the services,
a checkpoint), then times a lookup through ``registry.wsgi.application`` (the short path, signed
receipt) in three ways, interleaved, best of 7 rounds of 2,000 calls each:
- **bare**: ``begin``/``finish`` of ``registry.middleware`` and the per-issuer count replaced by
  no-ops (what the short path cost before);
- **metrics**: prometheus-client in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, as under
  gunicorn), the access line's level disabled;
- **metrics + log**: the same, and the JSON access line written to /dev/null;
and the observation alone (``begin``, the per-issuer count, ``finish``) without the lookup.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_bench  # noqa: E402

URL = sys.argv[1] if len(sys.argv) > 1 else "postgres://postgres@127.0.0.1:5432/vr_metrics_bench"
WORK = Path(tempfile.mkdtemp(prefix="vr-metrics-bench-"))
os.environ.update(
    DJANGO_SETTINGS_MODULE="registry.settings",
    SECRET_KEY="benchmark-only-secret-key-0123456789-abcdef",
    DATABASE_URL=URL,
    VAULT_KEY_DIR=str(WORK / "keys"),
    VAULT_CHECKPOINT_INTERVAL="0",
    VAULT_TOKEN_CACHE_SECONDS="3600",
    PROMETHEUS_MULTIPROC_DIR=str(WORK / "prometheus"),
    LOG_FORMAT="json",
)
(WORK / "prometheus").mkdir()
# A fresh database each run: its checkpoints are signed with this run's throwaway keys.
if URL.startswith("postgres"):
    database, server = URL.rsplit("/", 1)[1], URL.rsplit("/", 1)[0] + "/postgres"
    for sql in (f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}"):
        subprocess.run(["psql", server, "-qc", sql], check=True)
elif URL.startswith("sqlite:///"):
    Path(URL[len("sqlite://") :]).unlink(missing_ok=True)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from directory import checkpoints, keys  # noqa: E402
from registry import metrics, middleware  # noqa: E402
from registry.models import Issuer, Provider  # noqa: E402
from registry.services import tokens, vaults  # noqa: E402
from registry.services.common import Actor  # noqa: E402
from registry.wsgi import application  # noqa: E402

CALLS = 2000
ACTOR = Actor.system("bench")


def setup() -> tuple[str, list[str]]:
    call_command("migrate", verbosity=0)
    keys.generate()
    sys.path.insert(0, str(ROOT))
    from tests.factories import IssuerFactory, deliverable_provider

    provider = Provider.objects.filter(status="active").first() or deliverable_provider()
    issuer = Issuer.objects.filter(status="active").first() or IssuerFactory()
    numbers = list(provider.vaults.values_list("number", flat=True)[:CALLS])
    if len(numbers) < CALLS:
        created = vaults.vault_allocate_many(
            actor=ACTOR, provider=provider, count=CALLS - len(numbers)
        )
        numbers += [vault.number for vault in created]
    checkpoints.publish(force=True)
    _token, value = tokens.token_create(
        actor=ACTOR, owner=issuer, name="metrics bench", expires_in_days=1
    )
    return value, numbers


def main() -> None:
    token, numbers = setup()
    cycle = iter(numbers * 1000)
    access = logging.getLogger("registry.requests")
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115

    def lookup() -> None:
        environ = run_bench.lookup_environ(next(cycle), token)
        body = b"".join(application(environ, lambda status, headers: None))
        assert body.startswith(b'{"display"'), body[:200]

    class Bare:
        @staticmethod
        def begin(request):
            request.request_id = ""
            return 0.0, None

        @staticmethod
        def finish(request, response, route, started, context):
            return None

    real_count = metrics.count_lookup

    def variant(name: str):
        def run() -> None:
            if name == "bare":
                application.observation = Bare
                metrics.count_lookup = lambda issuer, status: None
            else:
                application.observation = middleware
                metrics.count_lookup = real_count
                access.setLevel(logging.INFO if name == "metrics + log" else logging.WARNING)
            for _ in range(CALLS):
                lookup()

        return run

    names = ["bare", "metrics", "metrics + log"]
    for name in names:
        variant(name)()  # warm up
    best = {name: float("inf") for name in names}
    for _round in range(7):
        for name in names:
            seconds = timeit.timeit(variant(name), number=1)
            best[name] = min(best[name], seconds / CALLS * 1e6)
    # The observation alone, without the lookup around it: steadier on a busy machine.
    from django.core.handlers.wsgi import WSGIRequest
    from django.http import HttpResponse

    request = WSGIRequest(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"/api/v1/vaults/{numbers[0]}",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "wsgi.input": io.BytesIO(b""),
        }
    )
    response = HttpResponse(b"{}")
    issuer = str(Issuer.objects.first().pk)

    def observe() -> None:
        started, context = middleware.begin(request)
        metrics.count_lookup(issuer, 200)
        middleware.finish(request, response, application.route, started, context)

    alone = {}
    for name, level in (("metrics", logging.WARNING), ("metrics + log", logging.INFO)):
        access.setLevel(level)
        alone[name] = min(timeit.repeat(observe, number=CALLS, repeat=7)) / CALLS * 1e6
    print(f"lookup through registry.wsgi.application, best of 7 x {CALLS} calls, database {URL}")
    for name in names:
        extra = best[name] - best["bare"]
        print(f"  {name:<14} {best[name]:7.1f} µs   +{extra:5.1f} µs ({extra / best['bare']:.1%})")
    for name, micros in alone.items():
        print(f"  {name} alone (begin, count, finish): {micros:.1f} µs per request")


if __name__ == "__main__":
    main()
