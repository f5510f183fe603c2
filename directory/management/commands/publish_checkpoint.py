"""Sign and publish a checkpoint of the log (for a timer: writes also publish, rate-limited)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from directory import checkpoints


class Command(BaseCommand):
    help = "Publish a signed checkpoint over the whole log, unless the latest one has its size."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Sign a new checkpoint even at the same size."
        )

    def handle(self, *args, force: bool = False, **options):
        checkpoint = checkpoints.publish(force=force)
        self.stdout.write(checkpoint.note, ending="")
