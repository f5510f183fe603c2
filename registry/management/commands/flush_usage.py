"""Move the issuers' usage counts to the IssuerUsage table (see registry.usage)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from registry import usage


class Command(BaseCommand):
    help = (
        "Write the usage counts gathered by the workers (in Redis when REDIS_URL is set; "
        "without Redis each worker writes its own every VAULT_USAGE_FLUSH_SECONDS) to the "
        "IssuerUsage table, and flag issuers that look like they enumerate numbers. Run it from "
        "a timer (deploy/systemd)."
    )

    def handle(self, *args, **options):
        rows = usage.flush()
        self.stdout.write(self.style.SUCCESS(f"Flushed {rows} usage row(s)."))
