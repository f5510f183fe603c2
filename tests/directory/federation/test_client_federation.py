"""The client pins the federation key and learns each registry's keys from the document."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from directory.client import cli
from directory.client.errors import UnknownKey
from directory.federation import forwarding
from directory.federation.services import federation_document_install
from directory.transparency import note
from registry.services.common import Actor
from tests.directory.helpers import BASE, django_transport
from tests.factories import make_token


def _run(token: str, fed_key: str, *argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = cli.main(
        ["--url", BASE, "--token", token, "--federation-key", fed_key, *argv],
        transport=django_transport(),
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fed_vkey(federation_key) -> str:
    return note.verifier_key("fed.test", federation_key.public_key().public_bytes_raw())


def test_a_lookup_is_verified_with_the_keys_the_federation_lists(
    federation, fed_vkey, issuer, vault, checkpoint
):
    code, out, err = _run(make_token(issuer)[1], fed_vkey, "lookup", vault.number)

    assert code == 0, err
    assert "answered by self (http://testserver), its home registry" in out
    assert f"{vault.number}: deliverable" in out


def test_a_document_not_signed_by_the_pinned_key_is_refused(federation, issuer, vault, checkpoint):
    other = note.verifier_key(
        "fed.test", Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    )

    code, _out, err = _run(make_token(issuer)[1], other, "lookup", vault.number)

    assert code == 7
    assert "federation document" in err


def test_an_answer_signed_by_keys_the_federation_does_not_list_is_refused(
    db, pin, document, sign, fed_vkey, issuer, vault, checkpoint, peer_b
):
    data = document()
    data["members"][0]["receipt_keys"] = peer_b.entry()["receipt_keys"]  # not our receipt key
    federation_document_install(actor=Actor.system("t"), signed=sign(data))

    code, _out, err = _run(make_token(issuer)[1], fed_vkey, "lookup", vault.number)

    assert code == UnknownKey.exit_code, err


def test_a_foreign_answer_is_checked_with_the_home_registrys_keys(
    federation, fed_vkey, issuer, vault, checkpoint, monkeypatch
):
    """The peer 'answers' with this registry's proof and receipt: signed by keys that are not
    the peer's in the document, so the client refuses it (a lying or impersonated peer)."""
    from django.test import Client

    from registry.numbers import check_digits

    token = make_token(issuer)[1]
    real = Client().get(f"/api/v1/vaults/{vault.number}", HTTP_AUTHORIZATION=f"Bearer {token}")
    forwarding.set_transport(lambda *a: (200, {"Content-Type": "application/json"}, real.content))
    serial = "000000000042"
    foreign = "FR" + check_digits("FR", "VLT2", serial) + "VLT2" + serial
    try:
        code, _out, err = _run(token, fed_vkey, "lookup", foreign)
    finally:
        forwarding.set_transport(None)

    assert code in {3, 4}, err  # the receipt is for another number / by an unknown key
