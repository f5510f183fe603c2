"""Push queued messages to the providers' webhooks, with retries (see services.webhooks)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from registry.services.webhooks import DeliveryReport, deliver_webhooks


class Command(BaseCommand):
    help = (
        "POST every due message to its provider's webhook, signed (Standard Webhooks headers), "
        "providers in parallel (WEBHOOK_CONCURRENCY), each delivery within "
        "WEBHOOK_TIMEOUT_SECONDS in all. Failures are retried with exponential backoff by later "
        "runs; several runs may overlap. Run it from a timer (deploy/systemd)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=100, help="messages claimed at a time")

    def handle(self, *args, batch: int, **options):
        def progress(report: DeliveryReport) -> None:
            self.stdout.write(
                f"  {report.attempted} attempted: {report.delivered} delivered, "
                f"{report.failed} to retry, {report.abandoned} abandoned, "
                f"{report.deferred} waiting behind a failure"
            )

        report = deliver_webhooks(limit=batch, on_progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Delivered {report.delivered}, {report.failed} to retry, "
                f"{report.abandoned} abandoned."
            )
        )
