"""Apply the deadline to every pending transfer past it (``server_approved``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from registry.models import Transfer
from registry.services.common import Actor
from registry.services.transfers import transfer_settle_overdue

BATCH = 500


class Command(BaseCommand):
    help = (
        "Approve (server_approved) every pending transfer whose deadline has passed. Idempotent "
        "and safe to run from several machines at once: each transfer is settled under its row "
        "locks, and one already settled is skipped. A transfer that fails is reported and "
        "skipped, the others are settled, and the command then exits with an error (the next "
        "run tries it again). Run it from a timer (deploy/systemd)."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        actor = Actor.system("process_transfers")
        due = Transfer.objects.overdue(now).count()
        self.stdout.write(f"{due} transfer(s) past their deadline")
        settled = 0
        failures: dict = {}
        # Each one in its own transaction; one settled meanwhile by another run is skipped.
        while True:
            failed_before = len(failures)
            done = transfer_settle_overdue(actor=actor, now=now, limit=BATCH, failures=failures)
            if not done and len(failures) == failed_before:
                break
            settled += done
            self.stdout.write(f"  settled {settled}/{due}, {len(failures)} failed")
        for pk, exc in failures.items():
            self.stderr.write(f"  transfer {pk} not settled: {type(exc).__name__}: {exc}")
        self.stdout.write(self.style.SUCCESS(f"Settled {settled} transfer(s)."))
        if failures:
            raise CommandError(f"{len(failures)} transfer(s) could not be settled (see above).")
