"""``vault-witness``: make a witness key, witness a log, serve add-checkpoint.

    vault-witness keygen --key witness.pem --name witness.example/w1
    vault-witness add-log --state witness.db --origin ORIGIN --vkey VKEY --url https://registry
    vault-witness serve --state witness.db --key witness.pem --name witness.example/w1 \\
        --listen 127.0.0.1:7380 --evidence evidence/
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from directory.transparency import cosignature as cosig
from directory.witness import app


def keygen(key_path: Path, name: str) -> str:
    """Write a new Ed25519 key (PKCS#8 PEM, mode 0600, never over an existing file); its vkey."""
    private = Ed25519PrivateKey.generate()
    vkey = cosig.verifier_key(name, private.public_key().public_bytes_raw())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return vkey


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vault-witness", description="A C2SP tlog-witness for the Vault Registry's log."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("keygen", help="write a new witness key and print its vkey")
    make.add_argument("--key", type=Path, required=True, help="PEM file to create")
    make.add_argument("--name", required=True, help="the witness name, e.g. witness.example/w1")

    log = commands.add_parser("add-log", help="witness a log (or change its key or URL)")
    log.add_argument("--state", type=Path, required=True, help="the witness's SQLite file")
    log.add_argument("--origin", required=True, help="the log's checkpoint origin line")
    log.add_argument("--vkey", required=True, help="the log's note verifier key")
    log.add_argument("--url", required=True, help="the registry's base URL")

    run = commands.add_parser("serve", help="serve POST /add-checkpoint")
    run.add_argument("--state", type=Path, required=True)
    run.add_argument("--key", type=Path, required=True)
    run.add_argument("--name", required=True)
    run.add_argument("--listen", type=_listen, default=("127.0.0.1", 7380), help="HOST:PORT")
    run.add_argument("--evidence", type=Path, required=True, help="where refusals are kept")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "keygen":
            print(keygen(args.key, args.name))
        elif args.command == "add-log":
            new = app.add_log(args.state, args.origin, args.vkey, args.url)
            print(f"{'added' if new else 'updated key and URL of'} {args.origin}")
        else:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
            witness = app.Witness(
                args.state, args.name, app.load_private_key(args.key), args.evidence
            )
            print(f"witness {witness.vkey}", flush=True)
            host, port = args.listen
            with contextlib.suppress(KeyboardInterrupt):
                app.serve(witness, host, port)
    except (OSError, ValueError) as exc:
        print(f"vault-witness: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
