"""The federation document: signed by a pinned key, serial only grows, peers come from it."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from directory.federation import members
from directory.federation.models import FederationDocument
from directory.federation.services import federation_document_install
from directory.transparency import federation as fed
from directory.transparency import note
from registry.errors import DomainError
from registry.federation import known_allocators, parse_number
from registry.models import AuditEvent
from registry.numbers import check_digits
from registry.services.common import Actor


def _install(signed: str):
    return federation_document_install(actor=Actor.system("tests"), signed=signed)


def test_a_signed_document_verifies_and_names_each_home(document, sign, federation_key):
    pinned = fed.pinned(
        [note.verifier_key("fed.test", federation_key.public_key().public_bytes_raw())]
    )

    verified = fed.verify(sign(document()), pinned)

    assert verified.serial == 1
    assert verified.home_of("VLT2").name == "peer-b"
    assert verified.home_of("VLT1").name == "self"
    assert verified.allocators() == {"VLT1", "VLT2"}


def test_a_document_signed_by_another_key_is_refused(document, sign, federation_key):
    pinned = fed.pinned(
        [note.verifier_key("fed.test", federation_key.public_key().public_bytes_raw())]
    )
    forged = sign(document(), Ed25519PrivateKey.generate())

    with pytest.raises(fed.FederationError, match="signature"):
        fed.verify(forged, pinned)


def test_an_edited_document_is_refused(document, sign, federation_key):
    pinned = fed.pinned(
        [note.verifier_key("fed.test", federation_key.public_key().public_bytes_raw())]
    )
    edited = sign(document()).replace('"serial":1', '"serial":9')

    with pytest.raises(fed.FederationError):
        fed.verify(edited, pinned)


def test_an_allocator_of_two_members_is_not_signed(document, sign, peer_b):
    data = document()
    data["members"][1]["allocators"] = ["VLT1"]

    with pytest.raises(fed.FederationError, match="two members"):
        sign(data)


def test_installing_a_document_makes_its_members_known(federation, peer_b):
    foreign = "FR" + check_digits("FR", "VLT2", "000000000042") + "VLT2000000000042"

    assert known_allocators() == {"VLT1", "VLT2"}
    assert parse_number(foreign).allocator == "VLT2"
    assert members.home_of("VLT2").url == peer_b.url
    assert AuditEvent.objects.filter(action="federation:installed").count() == 1


def test_a_higher_serial_replaces_the_document(federation, document, sign):
    _install(sign(document(2, peer_status="withdrawn")))
    members.clear_cache()

    assert members.current().serial == 2
    assert known_allocators() == {"VLT1"}  # a withdrawn member's numbers are unknown


@pytest.mark.parametrize("serial", [1, 0])
def test_an_old_document_is_refused(federation, document, sign, serial):
    data = document(serial) if serial else document(1)

    with pytest.raises(DomainError) as refused:
        _install(sign(data))

    assert refused.value.code == "federation_document_refused"
    assert FederationDocument.objects.count() == 1


def test_a_forged_document_is_refused(db, pin, document, sign):
    with pytest.raises(DomainError) as refused:
        _install(sign(document(), Ed25519PrivateKey.generate()))

    assert refused.value.code == "federation_document_refused"
    assert not FederationDocument.objects.exists()


def test_no_key_pinned_refuses_every_document(db, settings, document, sign):
    settings.VAULT_FEDERATION_KEYS = []

    with pytest.raises(DomainError, match="no federation key is pinned"):
        _install(sign(document()))


def test_the_well_known_document_is_the_installed_note(client, federation):
    answer = client.get("/.well-known/vault-federation")

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    assert answer.content.decode() == federation.signed


def test_no_document_answers_no_federation(client, db):
    answer = client.get("/.well-known/vault-federation")

    assert answer.status_code == 404
    assert answer.json()["code"] == "no_federation"


def test_keygen_sign_and_install_work_on_files(db, tmp_path, settings, document, capsys):
    key = tmp_path / "fed.pem"
    call_command("federation", "keygen", "--key", str(key), "--name", "fed.test")
    settings.VAULT_FEDERATION_KEYS = [capsys.readouterr().out.strip()]
    (tmp_path / "doc.json").write_text(__import__("json").dumps(document()))
    out = tmp_path / "doc.note"

    call_command(
        "federation",
        "sign",
        "--document",
        str(tmp_path / "doc.json"),
        "--key",
        str(key),
        "--out",
        str(out),
    )
    call_command("federation", "install", str(out))

    assert members.current().serial == 1
    assert (key.stat().st_mode & 0o777) == 0o600
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("federation", "keygen", "--key", str(key), "--name", "fed.test")
    with pytest.raises(CommandError, match="federation_document_refused"):
        call_command("federation", "install", str(out))
