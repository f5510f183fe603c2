"""``manage.py federation``: the federation key and document, offline and on this registry.

    federation keygen --key fed.pem --name federation.example       # prints the vkey to pin
    federation member --url https://registry.example [--witness-vkey V --witness-url U]
                                                   # this registry's member entry (JSON)
    federation sign --document federation.json --key fed.pem [--name N] [--out F]
    federation install federation.note             # verified against VAULT_FEDERATION_KEYS
    federation show                                # the document in force
    federation witness --state witness.sqlite3     # witness every peer's log (vault-witness)
    federation check                               # every peer's checkpoint now (a timer)

``keygen`` and ``sign`` touch only the files named: the federation key never needs to be on a
registry's server.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from directory.transparency import federation as fed
from directory.transparency import note


def _private(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CommandError(f"{path} is not an Ed25519 private key")
    return key


class Command(BaseCommand):
    help = "Federation key and document: keygen, member, sign (offline), install, show."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        keygen = sub.add_parser("keygen", help="a new federation key; prints its verifier key")
        keygen.add_argument("--key", required=True, help="PEM file to create (never overwritten)")
        keygen.add_argument("--name", required=True, help="the key's name, e.g. federation.example")
        member = sub.add_parser("member", help="this registry's member entry, from its keys")
        member.add_argument("--url", required=True, help="this registry's public base URL")
        member.add_argument("--name", help="member name (default: the log origin's host)")
        member.add_argument("--witness-vkey", help="the vkey of the witness this member runs")
        member.add_argument("--witness-url", help="where that witness listens")
        sign = sub.add_parser("sign", help="sign a document (JSON file) with a federation key")
        sign.add_argument("--document", required=True)
        sign.add_argument("--key", required=True)
        sign.add_argument("--name", help="the key's name (default: the document's federation)")
        sign.add_argument("--out", help="where to write the signed note (default: stdout)")
        install = sub.add_parser("install", help="install a signed document on this registry")
        install.add_argument("file")
        sub.add_parser("show", help="print the document in force")
        witness = sub.add_parser(
            "witness",
            help="configure this member's witness (a vault-witness state file) to "
            "witness every other active member's log, as the document lists them",
        )
        witness.add_argument("--state", required=True, help="the witness's SQLite state file")
        sub.add_parser(
            "check",
            help="fetch and verify every peer's latest checkpoint, note who cosigned it, "
            "keep it for the admin (peer health); run it from a timer",
        )

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    def _keygen(self, *, key, name, **_):
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise CommandError(f"{key} exists: a key is never overwritten") from exc
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        self.stdout.write(note.verifier_key(name, private.public_key().public_bytes_raw()))

    def _member(self, *, url, name, witness_vkey, witness_url, **_):
        from directory import keys

        keys.generate()  # idempotent: the peer key of a registry set up before federations
        manifest = keys.public_manifest()
        log = next(e for e in manifest[keys.Purpose.LOG] if e["valid_until"] is None)
        peer = next(e for e in manifest[keys.Purpose.PEER] if e["valid_until"] is None)
        entry = {
            "name": name or settings.VAULT_LOG_ORIGIN.split("/")[0],
            "status": "active",
            "allocators": [settings.VAULT_ALLOCATOR],
            "url": url.rstrip("/"),
            "origin": settings.VAULT_LOG_ORIGIN,
            "log_vkey": note.verifier_key(log["name"], base64.b64decode(log["public_key"])),
            "receipt_keys": [
                {k: v for k, v in e.items() if k in {"kid", "public_key", "valid_from"}}
                | ({"valid_until": e["valid_until"]} if e["valid_until"] else {})
                for e in manifest[keys.Purpose.RECEIPT]
            ],
            "request_key": peer["public_key"],
        }
        if witness_vkey:
            entry |= {"witness_vkey": witness_vkey, "witness_url": witness_url}
        self.stdout.write(json.dumps(entry, indent=2))

    def _sign(self, *, document, key, name, out, **_):
        try:
            data = json.loads(Path(document).read_text())
            signed = fed.sign(data, name or data.get("federation", ""), _private(key))
        except (OSError, ValueError) as exc:
            raise CommandError(f"not signed: {exc}") from exc
        if out:
            Path(out).write_text(signed)
        else:
            self.stdout.write(signed, ending="")

    def _install(self, *, file, **_):
        from directory.federation.services import federation_document_install
        from registry.errors import DomainError
        from registry.services.common import Actor

        text = sys.stdin.read() if file == "-" else Path(file).read_text()
        try:
            row = federation_document_install(actor=Actor.system("federation install"), signed=text)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        self.stdout.write(f"installed {row.federation} serial {row.serial}")

    def _witness(self, *, state, **_):
        from directory.federation import members
        from directory.witness import app

        document = members.current()
        me = members.self_member(document)
        if document is None or me is None:
            raise CommandError("no federation document names this registry")
        for member in document.members:
            if member is me or member.status != fed.MemberStatus.ACTIVE:
                continue
            new = app.add_log(state, member.origin, member.log_vkey, member.url)
            self.stdout.write(
                f"{'witnessing' if new else 'updated'} {member.origin} ({member.url})"
            )

    def _show(self, **_):
        from directory.federation import members

        document = members.current()
        if document is None:
            raise CommandError("no federation document installed (or it no longer verifies)")
        self.stdout.write(json.dumps(document.data, indent=2, sort_keys=True))

    def _check(self, **_):
        from directory.federation.services import federation_peers_check

        checked = federation_peers_check()
        if not checked:
            self.stdout.write("no peer to check (no federation document, or no active peer)")
        for health in checked:
            if health.last_error_at == health.checked_at:
                self.stdout.write(f"{health.member}: {health.last_error}")
            else:
                self.stdout.write(
                    f"{health.member}: checkpoint {health.checkpoint_size}, cosigned by "
                    f"{', '.join(health.cosigners) or 'no member witness'}"
                )
