"""Signed receipts on every lookup answer, and the client's verification of them."""

from __future__ import annotations

import base64
import json
from io import StringIO

import pytest
from django.core.management import call_command

from directory import checkpoints, keys, receipts
from directory.client import cli
from directory.client.errors import (
    Expired,
    Pending,
    ProofMismatch,
    Tampered,
    UnknownKey,
    VerificationError,
)
from directory.client.verify import verify_receipt
from registry import numbers
from registry.services import vaults
from tests.directory.helpers import BASE, django_transport, pinned_keys
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def allocated(provider, actor):
    """A vault allocated through the service (so its change is logged) and a checkpoint."""
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    checkpoints.publish()
    return vault


def test_found_answer_carries_a_receipt_that_verifies(lookup_client, allocated, provider, tmp_path):
    pinned, _ = pinned_keys(tmp_path)
    body = lookup_client.get(f"/api/v1/vaults/{allocated.number}").json()
    verified = verify_receipt(body["receipt"], pinned)
    # then the receipt binds the question, the answer, the entry and its proof
    assert verified.payload["asked"]["number"] == allocated.number
    assert verified.answer["provider"]["id"] == str(provider.pk)
    assert verified.answer["endpoints"] == [e["url"] for e in body["endpoints"]]
    assert verified.answer["certificate_fingerprints"] == [
        c["fingerprint_sha256"] for c in body["encryption_certificates"]
    ]
    assert verified.payload["log_index"] == allocated.last_log_index
    assert verified.entry["vault"] == allocated.number
    assert verified.payload["exp"] - verified.payload["iat"] == 600


def test_header_is_ed25519_with_the_receipt_kid(lookup_client, allocated):
    token = lookup_client.get(f"/api/v1/vaults/{allocated.number}").json()["receipt"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "Ed25519"
    assert header["kid"] == keys.signing_key(keys.Purpose.RECEIPT).kid


def test_not_found_closed_and_invalid_answers_are_signed_too(
    lookup_client, allocated, actor, tmp_path
):
    pinned, _ = pinned_keys(tmp_path)
    unknown = numbers.draw("FR", "VLT1").value
    not_found = lookup_client.get(f"/api/v1/vaults/{unknown}")
    invalid = lookup_client.get("/api/v1/vaults/FR00")
    vaults.vault_close(actor=actor, vault=allocated)
    checkpoints.publish()
    closed = lookup_client.get(f"/api/v1/vaults/{allocated.number}")
    for response, status, code in [
        (not_found, 404, "vault_not_found"),
        (invalid, 400, "invalid_length"),
        (closed, 410, "vault_closed"),
    ]:
        assert response.status_code == status
        verified = verify_receipt(response.json()["receipt"], pinned)
        assert verified.answer["status"] == status
        assert verified.answer["code"] == code
    # and the closure is proven by its own log entry
    closed_receipt = verify_receipt(closed.json()["receipt"], pinned)
    assert closed_receipt.entry["kind"] == "vault.closed"


def test_tampered_unknown_key_and_expired_receipts_are_refused_distinctly(
    lookup_client, allocated, tmp_path, settings
):
    pinned, _ = pinned_keys(tmp_path)
    token = lookup_client.get(f"/api/v1/vaults/{allocated.number}").json()["receipt"]
    # tampered: the payload is changed to re-point the vault
    head, _payload_part, signature = token.split(".")
    claims = _payload(token)
    claims["answer"]["provider"]["id"] = "00000000-0000-0000-0000-000000000000"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Tampered) as tampered:
        verify_receipt(f"{head}.{forged}.{signature}", pinned)
    # unknown key: a receipt signed by a key that is not pinned
    settings.VAULT_KEY_DIR = tmp_path / "other"
    keys.reset()
    receipts.clear_cache()
    call_command("generate_keys", stdout=StringIO())
    foreign = receipts.sign_receipt(_payload(token) | {"iat": claims["iat"]})
    with pytest.raises(UnknownKey) as unknown:
        verify_receipt(foreign, pinned)
    # expired: verified after its expiry
    with pytest.raises(Expired) as expired:
        verify_receipt(token, pinned, now=claims["exp"] + 3600)
    messages = {str(tampered.value), str(unknown.value), str(expired.value)}
    assert len(messages) == 3
    assert "tampered" in str(tampered.value)
    assert "unknown key" in str(unknown.value)
    assert "expired" in str(expired.value)


def test_a_change_newer_than_the_checkpoint_is_pending(lookup_client, provider, actor, tmp_path):
    checkpoints.publish()
    vault = vaults.vault_allocate(actor=actor, provider=provider)  # no checkpoint after it
    pinned, _ = pinned_keys(tmp_path)
    token = lookup_client.get(f"/api/v1/vaults/{vault.number}").json()["receipt"]
    assert _payload(token)["inclusion_proof"] is None
    with pytest.raises(Pending):
        verify_receipt(token, pinned)


def test_a_proof_for_another_entry_does_not_verify(
    lookup_client, allocated, provider, actor, tmp_path
):
    other = vaults.vault_allocate(actor=actor, provider=provider)
    checkpoints.publish()
    pinned, _ = pinned_keys(tmp_path)
    mine = _payload(lookup_client.get(f"/api/v1/vaults/{allocated.number}").json()["receipt"])
    theirs = _payload(lookup_client.get(f"/api/v1/vaults/{other.number}").json()["receipt"])
    # a registry signing a receipt whose entry is swapped for another vault's
    forged = receipts.sign_receipt(mine | {"log_entry": theirs["log_entry"]})
    with pytest.raises(ProofMismatch):
        verify_receipt(forged, pinned)
    forged = receipts.sign_receipt(
        mine
        | {
            "log_entry": theirs["log_entry"],
            "log_index": theirs["log_index"],
            "inclusion_proof": theirs["inclusion_proof"],
        }
    )
    with pytest.raises(ProofMismatch, match="another vault"):
        verify_receipt(forged, pinned)


def test_routing_plan_receipt_binds_the_hashes(checkpoint, tmp_path):
    pinned, _ = pinned_keys(tmp_path)
    token = receipts.receipt_for_plan("a" * 64, "b" * 64, {"asked": 3, "routable": 2})
    verified = verify_receipt(token, pinned)
    assert verified.payload["typ"] == "routing-plan"
    assert verified.payload["asked"] == {"request_sha256": "a" * 64}
    assert verified.answer == {"answer_sha256": "b" * 64, "summary": {"asked": 3, "routable": 2}}


def _cli(*argv: str, token: str, keys_path) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = cli.main(
        ["--url", BASE, "--token", token, "--keys", str(keys_path), *argv],
        transport=django_transport(),
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def test_cli_lookup_prints_the_verified_answer(allocated, issuer, provider, tmp_path):
    _, keys_path = pinned_keys(tmp_path)
    token = make_token(issuer)[1]
    code, out, err = _cli(
        "lookup", numbers.format_display(allocated.number), token=token, keys_path=keys_path
    )
    assert code == 0, err
    assert f"{allocated.number}: deliverable" in out
    assert provider.legal_name in out
    assert "sha256:" in out


def test_cli_refuses_expired_and_unknown_key_receipts_with_distinct_exit_codes(
    allocated, issuer, tmp_path, settings
):
    _, keys_path = pinned_keys(tmp_path)
    token = make_token(issuer)[1]
    settings.VAULT_RECEIPT_TTL = -3600
    code, _out, err = _cli("lookup", allocated.number, token=token, keys_path=keys_path)
    assert code == Expired.exit_code and "REFUSED (expired)" in err
    settings.VAULT_RECEIPT_TTL = 600
    document = json.loads(keys_path.read_text())
    document["receipt_keys"][0]["kid"] = "someone-else"
    keys_path.write_text(json.dumps(document))
    code, _out, err = _cli("lookup", allocated.number, token=token, keys_path=keys_path)
    assert code == UnknownKey.exit_code and "REFUSED (unknown key)" in err
    assert issubclass(UnknownKey, VerificationError)


def test_signing_adds_three_queries_cold_and_none_warm(
    lookup_client, allocated, provider, actor, django_assert_num_queries
):
    from directory.selectors import route_cache

    vaults.vault_allocate_many(actor=actor, provider=provider, count=2)  # a proof of 2 hashes
    checkpoints.publish()
    lookup_client.get(f"/api/v1/vaults/{allocated.number}")  # records the token's last use
    route_cache.clear()
    checkpoints.clear_cache()
    receipts.clear_cache()
    # cold: token, vault, provider identity, endpoints, certificates (the unsigned lookup's five),
    # then the latest checkpoint, the vault's log entry and the proof's tree nodes (one each)
    with django_assert_num_queries(8):
        assert lookup_client.get(f"/api/v1/vaults/{allocated.number}").status_code == 200
    # warm: checkpoint, entry and proof are cached per process (they never change): token, vault
    with django_assert_num_queries(2):
        assert lookup_client.get(f"/api/v1/vaults/{allocated.number}").status_code == 200
