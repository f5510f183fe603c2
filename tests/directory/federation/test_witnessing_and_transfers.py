"""Mutual witnessing configured from the federation document, and transfers that stay home."""

from __future__ import annotations

import sqlite3
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from directory.client import cli
from directory.federation import members
from directory.federation.services import federation_document_install
from directory.transparency import cosignature, note
from registry.numbers import check_digits
from registry.services.common import Actor
from tests.directory.helpers import BASE, django_transport
from tests.factories import make_token

PEER_WITNESS = cosignature.verifier_key(
    "peer-b/witness", Ed25519PrivateKey.generate().public_key().public_bytes_raw()
)


@pytest.fixture
def witnessed(db, pin, document, sign):
    data = document(quorum=1)
    data["members"][1] |= {"witness_vkey": PEER_WITNESS, "witness_url": "http://peer-b.test/w"}
    return federation_document_install(actor=Actor.system("t"), signed=sign(data))


def test_the_peers_witnesses_come_from_the_document(witnessed):
    assert members.witnesses() == [
        {"name": "peer-b/witness", "vkey": PEER_WITNESS, "url": "http://peer-b.test/w"}
    ]


def test_configured_witnesses_take_precedence(witnessed, settings):
    settings.VAULT_WITNESSES = [{"name": "w", "vkey": "v", "url": "http://w"}]

    assert members.witnesses() == settings.VAULT_WITNESSES


def test_this_member_witnesses_every_peer_log(witnessed, tmp_path, peer_b):
    state = tmp_path / "witness.sqlite3"

    call_command("federation", "witness", "--state", str(state), stdout=StringIO())

    rows = sqlite3.connect(state).execute("SELECT origin, url FROM logs").fetchall()
    assert rows == [("peer-b/log", peer_b.url)]


def test_the_client_requires_the_federations_quorum(
    witnessed, federation_key, issuer, vault, checkpoint
):
    fed_vkey = note.verifier_key("fed.test", federation_key.public_key().public_bytes_raw())
    out, err = StringIO(), StringIO()

    code = cli.main(
        [
            "--url",
            BASE,
            "--token",
            make_token(issuer)[1],
            "--federation-key",
            fed_vkey,
            "lookup",
            vault.number,
        ],
        transport=django_transport(),
        out=out,
        err=err,
    )

    assert code == 11, err.getvalue()  # no cosignature by peer-b's witness


def test_a_transfer_of_another_registrys_vault_names_its_home(federation, provider_client, peer_b):
    serial = "000000000042"
    foreign = "FR" + check_digits("FR", "VLT2", serial) + "VLT2" + serial

    response = provider_client.post(
        "/api/v1/provider/transfers",
        {"vault": foreign, "code": "ABCD-EFGH-JKLM-NPQ7", "consent_reference": "c-1"},
        format="json",
    )

    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "not_a_member_of_home_registry"
    assert problem["registry_url"] == peer_b.url
