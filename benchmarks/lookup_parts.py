"""What a single lookup costs in process, and what each short cut of the hot path saves.

    .venv/bin/python benchmarks/lookup_parts.py      # needs the 1M database of `make bench`

Against ``vault_registry_bench_1m`` (the keys `make bench` generated in var/keys), it times in
this process, best of 7 rounds of 2,000 calls each:
- a whole lookup through ``registry.wsgi.application`` (WSGI short path, the records and their
  map proofs at the checkpoint served, signed receipt);
- the request signals Django would send (started + finished) against the short path's direct
  connection housekeeping;
- the receipt through joserfc's ``serialize_compact`` against ``receipts.sign_receipt``;
- the same lookup through Django's whole handler (middleware, URL resolution) against the short
  path.
"""

from __future__ import annotations

import os
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import run_bench  # noqa: E402

os.environ.update(run_bench.django_env(f"{run_bench.SERVER}/vault_registry_bench_1m"))

import django  # noqa: E402

django.setup()

from django.core import signals  # noqa: E402
from joserfc import jws  # noqa: E402
from joserfc.jwk import OKPKey  # noqa: E402

from directory import keys, receipts  # noqa: E402
from registry.models import Issuer, Vault  # noqa: E402
from registry.services import tokens  # noqa: E402
from registry.services.common import Actor  # noqa: E402
from registry.wsgi import application  # noqa: E402

CALLS = 2000


def best_us(function) -> float:
    function()
    return min(timeit.repeat(function, number=CALLS, repeat=7)) / CALLS * 1e6


def main() -> None:
    issuer = Issuer.objects.filter(status="active").first()
    _token, value = tokens.token_create(
        actor=Actor.system("bench"), owner=issuer, name="lookup parts", expires_in_days=1
    )
    numbers = list(Vault.objects.filter(status="active").values_list("number", flat=True)[:CALLS])
    cycle = iter(numbers * 100)

    def lookup(app=application) -> None:
        environ = run_bench.lookup_environ(next(cycle), value)
        statuses = []
        body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
        assert statuses[0].startswith("200") and b'"proof"' in body, body[:200]

    def signals_sent() -> None:
        signals.request_started.send(sender=None, environ={})
        signals.request_finished.send(sender=None)

    def housekeeping() -> None:
        application.close_unusable_connection()
        application.close_unusable_connection()

    payload = {"typ": "lookup", "asked": {"number": numbers[0]}, "answer": {"status": 200}}
    key = keys.signing_key(keys.Purpose.RECEIPT)
    jwk = OKPKey.import_key(key.private)

    def through_joserfc() -> None:
        header = {"alg": receipts.ALG, "kid": key.kid, "typ": receipts.TYP}
        jws.serialize_compact(header, receipts.orjson.dumps(payload), jwk, algorithms=["Ed25519"])

    whole = best_us(lookup)
    print(f"whole lookup (WSGI short path, signed): {whole:,.1f} us")
    pairs = [
        ("request signals, started + finished", signals_sent, "direct housekeeping", housekeeping),
        (
            "receipt through joserfc",
            through_joserfc,
            "receipts.sign_receipt",
            lambda: receipts.sign_receipt(payload),
        ),
        (
            "lookup through Django's handler",
            lambda: lookup(application.app),
            "the short path",
            lookup,
        ),
    ]
    for before_label, before, after_label, after in pairs:
        b, a = best_us(before), best_us(after)
        print(
            f"{before_label}: {b:,.1f} us; {after_label}: {a:,.1f} us; "
            f"saved {b - a:,.1f} us ({(b - a) / whole:.0%} of a whole lookup)"
        )


if __name__ == "__main__":
    main()
