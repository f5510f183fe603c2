"""What the per-token rate limit adds to a single lookup, with Redis, in one run.

    .venv/bin/python benchmarks/ratelimit_overhead.py [--database URL] [--redis URL]

Sets up a small registry in its own database (default ``vr_wt12b`` on the local server:
migrated, one deliverable provider with 1,000 vaults, one issuer and its token, a checkpoint;
keys in var/bench-keys), then times whole lookups through ``registry.wsgi.application`` in this
process, best of 7 rounds of 2,000 calls, alternating: the limit off (0: no Redis round trip),
a high limit counted one round trip per lookup (leases off: one INCRBY+EXPIRE pipeline per
lookup, carrying the usage counts), and the same limit with leases (a round trip per 64
lookups). The differences are the limiter's cost per lookup.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_bench  # noqa: E402

CALLS = 2000

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--database", default=f"{run_bench.SERVER}/vr_wt12b")
parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
args = parser.parse_args()
os.environ.update(run_bench.django_env(args.database))
os.environ.update({"REDIS_URL": args.redis, "VAULT_KEY_DIR": str(ROOT / "var" / "bench-keys")})

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from stdnum import luhn  # noqa: E402

from directory import checkpoints, keys  # noqa: E402
from registry import ratelimit, x509  # noqa: E402
from registry.models import Issuer, Vault  # noqa: E402
from registry.services import organisations, routing, tokens, vaults  # noqa: E402
from registry.services.common import Actor  # noqa: E402
from registry.wsgi import application  # noqa: E402

ACTOR = Actor.system("bench")


def siren() -> str:
    digits = f"{random.randrange(10**8):08d}"
    return digits + luhn.calc_check_digit(digits)


def set_up() -> str:
    """A registry to look numbers up in; returns a lookup token's value."""
    call_command("migrate", verbosity=0)
    if not (Path(settings.VAULT_KEY_DIR) / "manifest.json").exists():
        keys.generate()
    if not Vault.objects.exists():
        common = {"technical_email": "t@bench.example", "security_email": "s@bench.example"}
        provider = organisations.provider_apply(
            actor=ACTOR, legal_name="Bench provider", legal_id=siren(), **common
        )
        provider = organisations.provider_set_status(
            actor=ACTOR, provider=provider, status="active", reason="bench"
        )
        routing.endpoint_create(
            actor=ACTOR,
            provider=provider,
            transport_profile="vault-pivot-https/1",
            url="https://bench.example/deliver",
        )
        pem, _key = x509.generate_certificate("bench documents", "encryption")
        routing.certificate_upload(actor=ACTOR, provider=provider, use="encryption", pem=pem)
        vaults.vault_allocate_many(actor=ACTOR, provider=provider, count=1000)
        issuer = organisations.issuer_apply(
            actor=ACTOR, legal_name="Bench issuer", legal_id=siren(), **common
        )
        organisations.issuer_set_status(actor=ACTOR, issuer=issuer, status="active", reason="b")
        checkpoints.publish(force=True)
    issuer = Issuer.objects.filter(status="active").first()
    Issuer.objects.filter(pk=issuer.pk).update(rate_lookups_per_minute=None)
    return tokens.token_create(actor=ACTOR, owner=issuer, name="bench", expires_in_days=1)[1]


def main() -> None:
    value = set_up()
    numbers = list(Vault.objects.values_list("number", flat=True)[:1000])
    cycle = iter(numbers * (CALLS * 30 // len(numbers) + 1))
    ratelimit.redis_client().flushdb()

    def lookup() -> None:
        environ = run_bench.lookup_environ(next(cycle), value)
        body = b"".join(application(environ, lambda status, headers: None))
        assert body.startswith(b'{"display"'), body[:200]

    def timed(limit: int, lease: int = ratelimit.LEASE_MAX) -> float:
        settings.VAULT_RATE_LOOKUP_PER_MINUTE = limit
        ratelimit.LEASE_MAX = lease
        ratelimit._leases.clear()
        return timeit.timeit(lookup, number=CALLS) / CALLS * 1e6

    lookup()
    off, exact, leased = [], [], []
    for _ in range(7):  # alternated, so drifts of the machine hit all alike
        off.append(timed(0))
        exact.append(timed(10**9, lease=0))  # one Redis round trip per lookup
        leased.append(timed(10**9))  # a round trip per lease of 64 lookups
    best_off, best_exact, best_leased = min(off), min(exact), min(leased)
    print(f"lookup without the limiter: {best_off:,.1f} us (best of 7 x {CALLS})")
    for label, best in (("one round trip each", best_exact), ("leases of 64", best_leased)):
        print(
            f"lookup with the limiter (Redis, {label}): {best:,.1f} us; overhead "
            f"{best - best_off:,.1f} us per lookup ({(best - best_off) / best_off:.0%})"
        )


if __name__ == "__main__":
    main()
