"""Push queued messages to the providers' webhooks, with retries (see services.webhooks)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from registry.services.webhooks import DeliveryReport, deliver_webhooks


class Command(BaseCommand):
    help = (
        "POST every due message to its provider's webhook, signed (Standard Webhooks headers), "
        "providers in parallel (WEBHOOK_CONCURRENCY), each delivery within "
        "WEBHOOK_TIMEOUT_SECONDS in all. Failures are retried with exponential backoff by later "
        "runs; several runs may overlap. A message whose outcome cannot be recorded is reported, "
        "the others go on, and the command then exits with an error. Run it from a timer "
        "(deploy/systemd)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=100, help="messages claimed at a time")

    def handle(self, *args, batch: int, **options):
        def progress(report: DeliveryReport) -> None:
            self.stdout.write(
                f"  {report.attempted} attempted: {report.delivered} delivered, "
                f"{report.failed} to retry, {report.abandoned} abandoned, "
                f"{report.deferred} waiting behind a failure, {report.errors} not recorded"
            )

        report = deliver_webhooks(limit=batch, on_progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Delivered {report.delivered}, {report.failed} to retry, "
                f"{report.abandoned} abandoned."
            )
        )
        if report.errors:
            raise CommandError(
                f"{report.errors} message(s) sent or not, but not recorded: they are delivered "
                "again when their lease ends (see the log)."
            )
