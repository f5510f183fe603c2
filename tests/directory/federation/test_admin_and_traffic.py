"""What the federation admins see: the document in force and its members, each peer's health
(its latest checkpoint, cosignatures given and received, the last error) and the traffic
forwarded each way, counted in memory and written in bulk (never a write per request)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from directory.federation import forwarding, traffic
from directory.federation.models import PeerHealth, PeerTraffic
from directory.federation.services import federation_document_install, federation_peers_check
from directory.models import Checkpoint
from directory.transparency import cosignature, note
from registry.numbers import check_digits
from registry.services.common import Actor
from tests.registry.conftest import admin_user, otp_client  # noqa: F401 (fixtures)

OUR_WITNESS = "self.test/witness"
PEER_WITNESS = "peer-b.test/witness"


def _foreign(n: int) -> str:
    serial = f"{n:012d}"
    return "FR" + check_digits("FR", "VLT2", serial) + "VLT2" + serial


@pytest.fixture(autouse=True)
def _english_and_no_flush(settings):
    settings.LANGUAGE_CODE = "en"  # the admin's English labels
    settings.VAULT_USAGE_FLUSH_SECONDS = 3600  # no flush after a request unless a test flushes


@pytest.fixture
def witnesses():
    return {OUR_WITNESS: Ed25519PrivateKey.generate(), PEER_WITNESS: Ed25519PrivateKey.generate()}


def _vkey(name: str, key: Ed25519PrivateKey) -> str:
    return cosignature.verifier_key(name, key.public_key().public_bytes_raw())


@pytest.fixture
def witnessed(db, pin, self_entry, peer_b, sign, witnesses):
    """The federation, each member running a witness named in the document."""
    ours = self_entry | {
        "witness_vkey": _vkey(OUR_WITNESS, witnesses[OUR_WITNESS]),
        "witness_url": "http://testserver/witness",
    }
    theirs = peer_b.entry() | {
        "witness_vkey": _vkey(PEER_WITNESS, witnesses[PEER_WITNESS]),
        "witness_url": "http://peer-b.test/witness",
    }
    document = {
        "federation": "fed.test",
        "serial": 3,
        "country": "FR",
        "quorum": 1,
        "members": [ours, theirs],
    }
    return federation_document_install(actor=Actor.system("tests"), signed=sign(document))


def _peer_checkpoint(peer_b, size: int, *, cosigned_by=None) -> str:
    """peer-b's signed checkpoint, with the cosignatures of ``cosigned_by`` (name → key)."""
    text = note.checkpoint_text(
        f"{peer_b.name}/log", size, bytes(32), map_root=bytes(32), time=int(time.time())
    )
    signed = note.sign(text, f"{peer_b.name}/log", peer_b.log_key)
    for name, key in (cosigned_by or {}).items():
        signed += cosignature.sign_cosignature(text, name, key, int(time.time()))
    return signed


# --- traffic: counted in memory, written in bulk ------------------------------------------------


def test_traffic_is_counted_in_memory_and_added_up_in_bulk(db):
    now = datetime(2026, 12, 2, 10, 0, 30, tzinfo=UTC).timestamp()
    traffic.count("peer-b", traffic.OUT, traffic.LOOKUP, 1, now=now)
    traffic.count("peer-b", traffic.OUT, traffic.PLAN, 500, error="unreachable: refused", now=now)
    traffic.count("peer-b", traffic.IN, traffic.LOOKUP, 1, now=now)
    assert not PeerTraffic.objects.exists()  # nothing written while counting

    assert traffic.flush() == 2
    traffic.count("peer-b", traffic.OUT, traffic.LOOKUP, 1, now=now + 10)  # the same minute
    traffic.flush()

    rows = {
        row.direction: (row.lookups, row.plans, row.numbers, row.errors)
        for row in PeerTraffic.objects.filter(member="peer-b")
    }
    assert rows == {"out": (2, 1, 502, 1), "in": (1, 0, 1, 0)}
    assert PeerTraffic.objects.get(direction="out").minute == datetime(
        2026, 12, 2, 10, 0, tzinfo=UTC
    )
    health = PeerHealth.objects.get(member="peer-b")
    assert health.last_error == "unreachable: refused"
    assert health.last_ok_at == datetime.fromtimestamp(now + 10, tz=UTC)


def test_a_forwarded_lookup_is_counted_without_a_write(federation, lookup_client):
    forwarding.set_transport(
        lambda *args: (404, {"Content-Type": "application/problem+json"}, b'{"code":"not_found"}')
    )
    try:
        response = lookup_client.get(f"/api/v1/vaults/{_foreign(7)}")
    finally:
        forwarding.set_transport(None)

    assert response.status_code == 404
    assert not PeerTraffic.objects.exists()
    traffic.flush()
    row = PeerTraffic.objects.get()
    assert (row.member, row.direction, row.lookups, row.errors) == ("peer-b", "out", 1, 0)


def test_a_peer_down_is_counted_as_an_error_with_its_reason(federation, lookup_client):
    def down(*args):
        raise forwarding.RegistryDown("connection refused")

    forwarding.set_transport(down)
    try:
        response = lookup_client.get(f"/api/v1/vaults/{_foreign(8)}")
    finally:
        forwarding.set_transport(None)

    assert response.status_code == 502
    traffic.flush()
    assert PeerTraffic.objects.get().errors == 1
    assert PeerHealth.objects.get(member="peer-b").last_error == "unreachable: connection refused"


# --- the peers' health ----------------------------------------------------------------------------


def test_checking_the_peers_keeps_their_checkpoint_and_who_cosigned_it(
    witnessed, peer_b, witnesses
):
    served = _peer_checkpoint(peer_b, 42, cosigned_by={OUR_WITNESS: witnesses[OUR_WITNESS]})

    (health,) = federation_peers_check(fetch=lambda url, timeout: (200, served.encode()))

    assert health.member == "peer-b"
    assert health.checkpoint_size == 42
    assert health.cosigners == [OUR_WITNESS]
    assert health.last_error == ""


def test_a_peer_serving_a_checkpoint_it_did_not_sign_keeps_its_last_good_one(
    witnessed, peer_b, witnesses
):
    good = _peer_checkpoint(peer_b, 42)
    federation_peers_check(fetch=lambda url, timeout: (200, good.encode()))
    forged = note.sign(
        note.checkpoint_text("peer-b/log", 43, bytes(32)),
        "peer-b/log",
        Ed25519PrivateKey.generate(),
    )

    (health,) = federation_peers_check(fetch=lambda url, timeout: (200, forged.encode()))

    assert health.checkpoint_size == 42
    assert health.last_error.startswith("its checkpoint is refused")
    assert health.last_error_at == health.checked_at


def test_a_peer_down_is_noted_by_the_check(witnessed):
    def down(url, timeout):
        raise forwarding.RegistryDown("connection refused")

    (health,) = federation_peers_check(fetch=down)

    assert health.checkpoint_size is None
    assert health.last_error == "unreachable: connection refused"


# --- the admin pages ------------------------------------------------------------------------------


def test_the_peers_page_needs_the_second_factor(client, admin_user, witnessed):  # noqa: F811
    client.force_login(admin_user)
    assert client.get("/admin/federation/peerhealth/").status_code == 302


def test_the_peers_page_shows_the_document_health_cosignatures_and_traffic(
    otp_client,  # noqa: F811
    witnessed,
    peer_b,
    witnesses,
):
    served = _peer_checkpoint(peer_b, 42, cosigned_by={OUR_WITNESS: witnesses[OUR_WITNESS]})
    federation_peers_check(fetch=lambda url, timeout: (200, served.encode()))
    for size, cosigners in ((10, [PEER_WITNESS]), (11, []), (12, [PEER_WITNESS])):
        Checkpoint.objects.create(
            size=size,
            root_hash=bytes(32),
            note="n",
            key_name="k",
            key_hash="00",
            cosigners=cosigners,
        )
    traffic.count("peer-b", traffic.OUT, traffic.PLAN, 300)
    traffic.count("peer-b", traffic.IN, traffic.LOOKUP, 1, error=None)
    traffic.flush()

    page = otp_client.get("/admin/federation/peerhealth/").content.decode()

    assert "document serial 3: 2 members, witness quorum 1" in page
    assert 'id="peer-peer-b"' in page and 'id="peer-self"' in page
    assert "size 42" in page
    assert "its latest checkpoint carries ours" in page
    assert "2 of our last 3 checkpoints, the latest at size 12" in page
    assert "asked by us: 0 lookups, 1 plans (300 numbers), 0 errors" in page
    assert "asked by it: 1 lookups, 0 plans (1 numbers), 0 errors" in page


def test_the_check_button_checks_every_peer(otp_client, witnessed, peer_b):  # noqa: F811
    served = _peer_checkpoint(peer_b, 7).encode()
    asked = []

    def serve(method, url, headers, body, timeout):
        asked.append(url)
        return 200, {}, served

    forwarding.set_transport(serve)
    try:
        response = otp_client.post("/admin/federation/peerhealth/check/", follow=True)
    finally:
        forwarding.set_transport(None)

    assert asked == ["http://peer-b.test/api/v1/log/checkpoint"]
    assert "1 peer checked." in response.content.decode()
    assert PeerHealth.objects.get(member="peer-b").checkpoint_size == 7
    assert otp_client.get("/admin/federation/peerhealth/check/").status_code == 405


def test_the_documents_page_lists_the_members_of_each_document(otp_client, witnessed):  # noqa: F811
    listing = otp_client.get("/admin/federation/federationdocument/")
    detail = otp_client.get(f"/admin/federation/federationdocument/{witnessed.pk}/change/")

    assert listing.status_code == 200 and detail.status_code == 200
    page = detail.content.decode()
    assert "<td>peer-b</td><td>active</td><td>VLT2</td><td>http://peer-b.test</td>" in page
    assert "http://testserver/witness" in page


def test_without_a_federation_the_peers_page_says_so(otp_client):  # noqa: F811
    page = otp_client.get("/admin/federation/peerhealth/").content.decode()

    assert 'id="no-federation"' in page


def test_the_start_page_names_the_federation_and_the_peers_witnesses(otp_client, witnessed):  # noqa: F811
    page = otp_client.get("/admin/").content.decode()

    assert "fed.test, serial 3, 2 members" in page
    assert PEER_WITNESS in page  # asked to cosign each checkpoint (no VAULT_WITNESSES set)


def test_the_check_command_reports_each_peer(witnessed, peer_b, witnesses, capsys):
    from django.core.management import call_command

    served = _peer_checkpoint(peer_b, 9, cosigned_by={OUR_WITNESS: witnesses[OUR_WITNESS]})
    forwarding.set_transport(lambda *args: (200, {}, served.encode()))
    try:
        call_command("federation", "check")
    finally:
        forwarding.set_transport(None)

    assert capsys.readouterr().out == f"peer-b: checkpoint 9, cosigned by {OUR_WITNESS}\n"
