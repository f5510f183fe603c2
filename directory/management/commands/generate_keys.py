"""Create the registry's signing keys if missing (idempotent; never overwrites a key)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from directory import keys
from directory.transparency import note


class Command(BaseCommand):
    help = (
        "Create the Ed25519 log and receipt keys in VAULT_KEY_DIR if they are missing (files "
        "0600, never overwritten) and list their public halves in public.json."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rotate",
            choices=[purpose.value for purpose in keys.Purpose],
            help="Retire the current key of this purpose (kept to verify) and make a new one.",
        )

    def handle(self, *args, rotate: str | None = None, **options):
        done = keys.generate(rotate=keys.Purpose(rotate) if rotate else None)
        for line in done:
            self.stdout.write(line)
        if not done:
            self.stdout.write(f"keys already present in {settings.VAULT_KEY_DIR}")
        log_key = keys.signing_key(keys.Purpose.LOG)
        self.stdout.write(f"log key      {note.verifier_key(log_key.name, log_key.public)}")
        self.stdout.write(f"receipt key  kid {keys.signing_key(keys.Purpose.RECEIPT).kid}")
