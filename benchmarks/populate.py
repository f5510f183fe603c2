"""Fill a benchmark database: 50 providers through the services, N vaults by COPY.

Run by run_bench.py with DATABASE_URL set; prints a fresh issuer token on the last line.
Vaults are written with COPY, not through the services: 10 million service calls would take
hours, and the benchmark measures reads. Their numbers are real (python-stdnum check digits).
"""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, datetime

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from registry import numbers, x509  # noqa: E402
from registry.management.commands.load_demo import demo_siren  # noqa: E402
from registry.models import Issuer, OrganisationStatus, Provider, Vault  # noqa: E402
from registry.services import organisations, routing, tokens  # noqa: E402
from registry.services.common import Actor  # noqa: E402

PROVIDERS = 50
ACTOR = Actor.system("bench")


def providers() -> list[Provider]:
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
    return existing


def vaults(target: int, provider_ids: list[str]) -> None:
    missing = target - Vault.objects.count()
    if missing <= 0:
        return
    taken = set()
    now = datetime.now(UTC)
    country, allocator = settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR
    rng = random.Random(target)
    columns = (
        "number, provider_id, status, client_hold, server_hold, client_transfer_prohibited, "
        "registry_lock, pending_transfer, created_at, closed_at"
    )
    written = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {Vault._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        while written < missing:
            serial = f"{rng.randrange(10**12):012d}"
            if serial in taken:
                continue
            taken.add(serial)
            number = numbers.make(country, allocator, serial).value
            roll = rng.random()
            closed = roll < 0.005
            copy.write_row(
                (
                    number,
                    provider_ids[written % len(provider_ids)],
                    "closed" if closed else "active",
                    0.005 <= roll < 0.015,
                    False,
                    False,
                    False,
                    False,
                    now,
                    now if closed else None,
                )
            )
            written += 1
            if written % 500_000 == 0:
                print(f"  {written:,} vaults written", file=sys.stderr, flush=True)
    with connection.cursor() as cursor:
        # As autovacuum would in a live registry: statistics, visibility map and hint bits.
        cursor.execute(f"VACUUM (ANALYZE) {Vault._meta.db_table}")


def main() -> None:
    target = int(sys.argv[1])
    provider_ids = [str(p.pk) for p in providers()]
    vaults(target, provider_ids)
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
    _token, value = tokens.token_create(actor=ACTOR, owner=issuer, name="bench", expires_in_days=1)
    print(value)


if __name__ == "__main__":
    main()
