"""Apply the deadline to every pending transfer past it (``server_approved``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from registry.models import Transfer
from registry.services.common import Actor
from registry.services.transfers import transfer_settle_overdue

BATCH = 500


class Command(BaseCommand):
    help = (
        "Approve (server_approved) every pending transfer whose deadline has passed. Idempotent "
        "and safe to run from several machines at once: each transfer is settled under its row "
        "locks, and one already settled is skipped. Run it from a timer (deploy/systemd)."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        actor = Actor.system("process_transfers")
        due = Transfer.objects.overdue(now).count()
        self.stdout.write(f"{due} transfer(s) past their deadline")
        settled = 0
        # Each one in its own transaction; one settled meanwhile by another run is skipped.
        while done := transfer_settle_overdue(actor=actor, now=now, limit=BATCH):
            settled += done
            self.stdout.write(f"  settled {settled}/{due}")
        self.stdout.write(self.style.SUCCESS(f"Settled {settled} transfer(s)."))
