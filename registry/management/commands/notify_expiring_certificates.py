"""Queue a message for every certificate that expires soon (once per certificate)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from registry.services.common import Actor
from registry.services.messages import certificate_notify_expiring


class Command(BaseCommand):
    help = (
        "Tell providers, through their message queue, about each live certificate that expires "
        "within CERTIFICATE_EXPIRY_NOTICE_DAYS. Idempotent: each certificate is announced once."
    )

    def handle(self, *args, **options):
        days = settings.CERTIFICATE_EXPIRY_NOTICE_DAYS
        self.stdout.write(f"Looking for certificates expiring within {days} days")
        count = certificate_notify_expiring(actor=Actor.system("notify_expiring_certificates"))
        self.stdout.write(self.style.SUCCESS(f"Queued {count} message(s)."))
