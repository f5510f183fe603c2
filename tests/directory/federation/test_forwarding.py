"""Forwarded lookups (the issuer's registry side) and signed registry-to-registry requests
(the home registry's side)."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from http_message_signatures.structures import CaseInsensitiveDict

from directory.federation import forwarding, signatures
from registry.numbers import check_digits
from tests.directory.federation.conftest import PEER_URL, SELF_URL


def _foreign(serial: str = "000000000042") -> str:
    return "FR" + check_digits("FR", "VLT2", serial) + "VLT2" + serial


@pytest.fixture
def peer_answers(monkeypatch):
    """The peer's HTTP side: records each request, answers what the test set."""
    calls = []
    answer = {"status": 200, "body": b'{"number": "x", "proof": {}, "receipt": "r"}'}

    def send(method, url, headers, body, timeout):
        calls.append({"method": method, "url": url, "headers": headers, "body": body})
        if "raise" in answer:
            raise answer["raise"]
        return answer["status"], {"Content-Type": "application/json"}, answer["body"]

    forwarding.set_transport(send)
    yield calls, answer
    forwarding.set_transport(None)


def test_a_foreign_number_is_answered_by_its_home_registry_untouched(
    federation, lookup_client, issuer, peer_answers, peer_b
):
    calls, answer = peer_answers
    answer["body"] = b'{"proof":  {"checkpoint": "as the peer wrote it"}, "receipt": "jws"}'

    response = lookup_client.get(f"/api/v1/vaults/{_foreign()}")

    assert response.status_code == 200
    assert response.content == answer["body"]  # byte for byte
    assert response["Vault-Federation-Answered-By"] == "peer-b"
    (call,) = calls
    assert call["url"] == f"{PEER_URL}/api/v1/vaults/{_foreign()}"
    assert call["headers"]["Vault-Federation-Issuer"] == str(issuer.pk)
    assert "vault-federation-issuer" in call["headers"]["Signature-Input"]
    assert 'keyid="self"' in call["headers"]["Signature-Input"]


def test_the_purpose_and_time_asked_go_to_the_home_registry(
    federation, lookup_client, peer_answers
):
    calls, _answer = peer_answers

    response = lookup_client.get(
        f"/api/v1/vaults/{_foreign()}?purpose=bank_statement&at=2026-01-01T00:00:00Z"
    )

    assert response.status_code == 200
    (call,) = calls
    assert call["url"] == (
        f"{PEER_URL}/api/v1/vaults/{_foreign()}?at=2026-01-01T00%3A00%3A00Z&purpose=bank_statement"
    )


def test_a_purpose_the_issuer_may_not_use_is_refused_before_forwarding(
    federation, lookup_client, peer_answers
):
    calls, _answer = peer_answers

    response = lookup_client.get(f"/api/v1/vaults/{_foreign()}?purpose=payslip")

    assert response.status_code == 403
    assert response.json()["code"] == "purpose_not_allowed"
    assert calls == []


def test_a_refusal_of_the_home_registry_is_returned_as_it_came(
    federation, lookup_client, peer_answers
):
    _calls, answer = peer_answers
    answer["status"], answer["body"] = 404, b'{"code": "vault_not_found", "proof": {}}'

    response = lookup_client.get(f"/api/v1/vaults/{_foreign()}")

    assert response.status_code == 404
    assert response.content == answer["body"]


def test_forward_false_answers_a_referral(federation, lookup_client, peer_answers):
    calls, _answer = peer_answers

    response = lookup_client.get(f"/api/v1/vaults/{_foreign()}?forward=false")

    assert response.status_code == 421
    problem = response.json()
    assert problem["code"] == "referred"
    assert problem["registry_url"] == PEER_URL
    assert problem["location"] == f"{PEER_URL}/api/v1/vaults/{_foreign()}"
    assert calls == []


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (forwarding.RegistryDown("connection refused"), 502, "registry_unavailable"),
        (forwarding.RegistryTimeout("timed out"), 504, "registry_timeout"),
    ],
)
def test_a_home_registry_down_or_slow_is_a_problem_with_retry_after(
    federation, lookup_client, peer_answers, failure, status, code
):
    _calls, answer = peer_answers
    answer["raise"] = failure

    response = lookup_client.get(f"/api/v1/vaults/{_foreign()}")

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert response.json()["registry"] == "peer-b"
    assert int(response["Retry-After"]) > 0


def test_a_suspended_member_is_not_asked(db, pin, document, sign, lookup_client, peer_answers):
    from directory.federation.services import federation_document_install
    from registry.services.common import Actor

    federation_document_install(
        actor=Actor.system("t"), signed=sign(document(peer_status="suspended"))
    )
    calls, _answer = peer_answers

    response = lookup_client.get(f"/api/v1/vaults/{_foreign()}")

    assert response.status_code == 502
    assert response.json()["code"] == "registry_unavailable"
    assert calls == []


def test_an_unknown_allocator_is_400(federation, lookup_client):
    serial = "000000000042"
    number = "FR" + check_digits("FR", "ZZZ9", serial) + "ZZZ9" + serial

    response = lookup_client.get(f"/api/v1/vaults/{number}")

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_allocator"


# --- The home registry's side: signed requests from members ---------------------------------


def _signed_by_self(path: str, issuer: str = "issuer-7") -> dict[str, str]:
    """Headers of a request this registry (member ``self``) signs for itself as home."""
    headers = signatures.sign_request("GET", SELF_URL + path, {}, None, issuer)
    return {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}


def test_a_signed_member_request_is_answered_with_attribution(
    federation, client, vault, checkpoint
):
    path = f"/api/v1/vaults/{vault.number}"

    response = client.get(path, **_signed_by_self(path))

    assert response.status_code == 200
    receipt = response.json()["receipt"].split(".")[1]
    payload = json.loads(__import__("base64").urlsafe_b64decode(receipt + "=="))
    assert payload["asked"]["issuer"] == "self/issuer-7"


def test_a_replayed_request_is_refused(federation, client, vault, checkpoint):
    path = f"/api/v1/vaults/{vault.number}"
    headers = _signed_by_self(path)
    assert client.get(path, **headers).status_code == 200

    replay = client.get(path, **headers)

    assert replay.status_code == 401
    assert replay.json()["code"] == "replayed_request"


def test_an_unsigned_member_request_is_refused(federation, client, vault):
    response = client.get(f"/api/v1/vaults/{vault.number}", HTTP_VAULT_FEDERATION_ISSUER="issuer-7")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "unsigned_request"


def test_a_stale_request_is_refused(federation, client, vault, monkeypatch):
    path = f"/api/v1/vaults/{vault.number}"
    headers = _signed_by_self(path)
    later = time.time() + 61
    monkeypatch.setattr(signatures.time, "time", lambda: later)

    response = client.get(path, **headers)

    assert response.status_code == 401
    assert response.json()["code"] == "stale_request"


def test_a_request_signed_for_another_member_is_refused(federation, client, vault):
    path = f"/api/v1/vaults/{vault.number}"
    headers = signatures.sign_request("GET", PEER_URL + path, {}, None, "issuer-7")
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}

    response = client.get(path, **meta)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_request_signature"


def _sign_as(name: str, key: Ed25519PrivateKey, url: str) -> dict[str, str]:
    message = signatures._Message("GET", url, CaseInsensitiveDict({"Vault-Federation-Issuer": "i"}))
    HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={name: key}),
    ).sign(
        message,
        key_id=name,
        nonce=secrets.token_urlsafe(18),
        covered_component_ids=signatures.COVERED,
    )
    return {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in message.headers.items()}


def test_a_request_signed_by_a_non_member_is_forbidden(federation, client, vault):
    path = f"/api/v1/vaults/{vault.number}"

    response = client.get(
        path, **_sign_as("intruder", Ed25519PrivateKey.generate(), SELF_URL + path)
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_a_federation_member"


def test_a_member_name_with_another_key_is_refused(federation, client, vault):
    path = f"/api/v1/vaults/{vault.number}"

    response = client.get(path, **_sign_as("peer-b", Ed25519PrivateKey.generate(), SELF_URL + path))

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_request_signature"


def test_a_peer_signing_with_its_listed_key_is_answered(
    federation, client, vault, checkpoint, peer_b
):
    path = f"/api/v1/vaults/{vault.number}"

    response = client.get(path, **_sign_as("peer-b", peer_b.request_key, SELF_URL + path))

    assert response.status_code == 200
    assert response.json()["number"] == vault.number


def test_a_member_asking_about_a_number_not_ours_gets_a_referral(federation, client, peer_answers):
    path = f"/api/v1/vaults/{_foreign()}"
    calls, _answer = peer_answers

    response = client.get(path, **_signed_by_self(path))

    assert response.status_code == 421
    assert response.json()["code"] == "referred"
    assert calls == []
