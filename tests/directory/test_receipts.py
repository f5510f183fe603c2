"""Proven lookup answers and their receipts, and the client's verification of every field."""

from __future__ import annotations

import base64
import json
from io import StringIO

import pytest
from django.core.management import call_command

from directory import keys, receipts
from directory.client import cli
from directory.client.errors import (
    Expired,
    RefusedNumber,
    Tampered,
    UnknownKey,
    VerificationError,
)
from directory.client.verify import Trust, verify_lookup, verify_receipt
from directory.transparency import records as rec
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
    """A vault allocated through the service (so it is logged, mapped and signed)."""
    return vaults.vault_allocate(actor=actor, provider=provider)


@pytest.fixture
def trust(tmp_path) -> Trust:
    return Trust(pinned_keys(tmp_path)[0])


def test_found_answer_is_proven_and_its_receipt_signs_every_proven_field(
    lookup_client, allocated, provider, trust
):
    response = lookup_client.get(f"/api/v1/vaults/{allocated.number}")
    body = response.json()
    verified = verify_lookup(allocated.number, None, response.status_code, body, trust)
    # then the proven records are the vault's and its provider's, as the log carries them
    assert verified.vault["number"] == allocated.number
    assert verified.provider["id"] == str(provider.pk)
    assert body["proof"]["vault"]["key"] == rec.vault_key(allocated.number)
    # and the receipt binds the question, every proven field, the checkpoint and the values
    payload = verify_receipt(body["receipt"], trust.keys)
    assert payload["asked"]["number"] == allocated.number
    assert payload["answer"]["fields"]["endpoints"] == [
        {k: v for k, v in e.items()} for e in body["endpoints"]
    ]
    assert payload["values"]["vault"] == rec.value_of(verified.vault).hex()
    assert payload["checkpoint"] == body["proof"]["checkpoint"]
    assert payload["exp"] - payload["iat"] == 600


def test_header_is_ed25519_with_the_receipt_kid(lookup_client, allocated):
    token = lookup_client.get(f"/api/v1/vaults/{allocated.number}").json()["receipt"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "Ed25519"
    assert header["kid"] == keys.signing_key(keys.Purpose.RECEIPT).kid


def test_not_found_and_closed_answers_are_proven_and_invalid_ones_signed(
    lookup_client, allocated, actor, trust
):
    unknown = numbers.draw("FR", "VLT1").value
    not_found = lookup_client.get(f"/api/v1/vaults/{unknown}")
    invalid = lookup_client.get("/api/v1/vaults/FR00")
    vaults.vault_close(actor=actor, vault=allocated)
    closed = lookup_client.get(f"/api/v1/vaults/{allocated.number}")
    # then 404 carries a proof of absence, 410 the closed record, both verified
    absent = verify_lookup(unknown, None, 404, not_found.json(), trust)
    assert absent.vault is None and absent.status == 404
    gone = verify_lookup(allocated.number, None, 410, closed.json(), trust)
    assert gone.vault["status"] == "closed" and gone.vault["closed_at"]
    # and a malformed number is signed as refused, and refused by the client on its own status
    assert verify_receipt(invalid.json()["receipt"], trust.keys)["answer"] == {
        "status": 400,
        "code": "invalid_length",
    }
    with pytest.raises(RefusedNumber):
        verify_lookup("FR00", None, 400, invalid.json(), trust)


def test_tampered_unknown_key_and_expired_receipts_are_refused_distinctly(
    lookup_client, allocated, tmp_path, settings, trust
):
    pinned = trust.keys
    token = lookup_client.get(f"/api/v1/vaults/{allocated.number}").json()["receipt"]
    # tampered: the payload is changed to re-point the vault
    head, _payload_part, signature = token.split(".")
    claims = _payload(token)
    claims["answer"]["fields"]["provider"]["id"] = "00000000-0000-0000-0000-000000000000"
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


def test_routing_plan_receipt_binds_the_hashes_and_the_checkpoint(checkpoint, trust):
    token = receipts.receipt_for_plan("a" * 64, "b" * 64, {"asked": 3}, checkpoint)
    payload = verify_receipt(token, trust.keys)
    assert payload["typ"] == "routing-plan"
    assert payload["asked"] == {"request_sha256": "a" * 64, "purpose": None}
    assert payload["answer"] == {"answer_sha256": "b" * 64, "summary": {"asked": 3}}
    assert payload["checkpoint"] == checkpoint.note


def test_routing_plan_receipt_binds_the_purpose_asked(checkpoint, trust):
    token = receipts.receipt_for_plan("a" * 64, "b" * 64, {}, checkpoint, "payslip")
    assert verify_receipt(token, trust.keys)["asked"]["purpose"] == "payslip"


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
    assert "sha256:" in out and "(PEM checked)" in out
    assert "no witness required" in out


def test_cli_refuses_expired_and_unknown_key_receipts_and_bad_numbers_with_distinct_exit_codes(
    allocated, issuer, tmp_path, settings
):
    _, keys_path = pinned_keys(tmp_path)
    token = make_token(issuer)[1]
    settings.VAULT_RECEIPT_TTL = -3600
    code, _out, err = _cli("lookup", allocated.number, token=token, keys_path=keys_path)
    assert code == Expired.exit_code and "REFUSED (expired)" in err
    settings.VAULT_RECEIPT_TTL = 600
    code, _out, err = _cli("lookup", "FR12 3", token=token, keys_path=keys_path)
    assert code == RefusedNumber.exit_code != 0 and "invalid_length" in err
    document = json.loads(keys_path.read_text())
    document["receipt_keys"][0]["kid"] = "someone-else"
    keys_path.write_text(json.dumps(document))
    code, _out, err = _cli("lookup", allocated.number, token=token, keys_path=keys_path)
    assert code == UnknownKey.exit_code and "REFUSED (unknown key)" in err
    assert issubclass(UnknownKey, VerificationError)
