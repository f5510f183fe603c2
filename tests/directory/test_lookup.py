"""The lookup: GET /api/v1/vaults/{number}, as an issuer sees it."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from directory import checkpoints, proven
from registry import numbers, usage
from registry.models import OrganisationStatus
from registry.services import common, organisations, routing, tokens, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.factories import (
    CertificateFactory,
    EndpointFactory,
    IssuerFactory,
    ProviderFactory,
    VaultFactory,
    make_token,
)

pytestmark = pytest.mark.django_db


def lookup(client, number: str):
    return client.get(f"/api/v1/vaults/{number}")


def test_deliverable_vault_answers_its_full_routing_record(lookup_client, vault, provider):
    # when an issuer looks the vault up
    response = lookup(lookup_client, vault.number)
    # then it gets the provider, its endpoint and its encryption certificate
    assert response.status_code == 200
    body = response.json()
    endpoint = provider.endpoints.get()
    certificate = provider.certificates.get()
    assert body["number"] == vault.number
    assert body["display"] == numbers.format_display(vault.number)
    assert body["status"] == "active"
    assert body["flags"] == []
    assert body["deliverable"] is True
    assert body["reasons"] == []
    assert body["provider"]["id"] == str(provider.pk)
    assert body["provider"]["legal_id"] == f"siren:{provider.legal_id}"
    assert [e["url"] for e in body["endpoints"]] == [endpoint.url]
    assert body["encryption_certificates"][0]["fingerprint_sha256"] == (
        certificate.fingerprint_sha256
    )
    assert body["encryption_certificates"][0]["pem"].startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize(
    "form",
    [
        lambda n: n.lower(),
        lambda n: numbers.format_display(n),
        lambda n: numbers.format_display(n).replace(" ", "-"),
        lambda n: numbers.format_display(n).lower().replace(" ", "."),
    ],
)
def test_every_input_form_resolves_the_same_vault(lookup_client, vault, form):
    response = lookup(lookup_client, form(vault.number))
    assert response.status_code == 200
    assert response.json()["number"] == vault.number


def test_one_changed_digit_is_400_invalid_check_digits(lookup_client, vault):
    # given the vault's number with one serial digit changed
    last = vault.number[-1]
    typo = vault.number[:-1] + str((int(last) + 1) % 10)
    # then the lookup refuses it before touching the registry
    response = lookup(lookup_client, typo)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_check_digits"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("FR97", "invalid_length"),
        ("FR97VLT10123456789%24%24", "invalid_characters"),
        ("1297VLT1012345678901", "invalid_country"),
    ],
)
def test_malformed_numbers_are_400_with_their_code(lookup_client, raw, code):
    response = lookup(lookup_client, raw)
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_unknown_number_is_404(lookup_client, checkpoint):
    number = numbers.draw("FR", "VLT1").value
    response = lookup(lookup_client, number)
    assert response.status_code == 404
    assert response.json()["code"] == "vault_not_found"


def test_closed_vault_is_410_gone(lookup_client, vault, actor):
    vaults.vault_close(actor=actor, vault=vault)
    response = lookup(lookup_client, vault.number)
    assert response.status_code == 410
    body = response.json()
    assert body["code"] == "vault_closed"
    assert body["number"] == vault.number


@pytest.mark.parametrize("kind", [HoldKind.CLIENT, HoldKind.SERVER])
def test_held_vault_is_not_deliverable_with_the_reason(lookup_client, vault, actor, kind):
    vaults.vault_hold(actor=actor, vault=vault, kind=kind)
    body = lookup(lookup_client, vault.number).json()
    assert body["deliverable"] is False
    assert body["reasons"] == ["hold"]
    assert body["flags"] == [str(kind)]


def test_suspended_provider_is_not_deliverable(lookup_client, vault, provider, actor):
    organisations.provider_set_status(
        actor=actor, provider=provider, status=OrganisationStatus.SUSPENDED, reason="audit"
    )
    body = lookup(lookup_client, vault.number).json()
    assert body["deliverable"] is False
    assert body["reasons"] == ["provider_suspended"]
    assert body["provider"]["status"] == "suspended"


def test_no_endpoint_and_no_valid_certificate_are_reasons(lookup_client, db, actor):
    # given a provider whose only endpoint was deactivated and whose certificate was retired
    provider = ProviderFactory()
    endpoint = EndpointFactory(provider=provider)
    certificate = CertificateFactory(provider=provider)
    vault = VaultFactory(provider=provider)
    routing.endpoint_deactivate(actor=actor, endpoint=endpoint)
    routing.certificate_retire(actor=actor, certificate=certificate)
    # then the vault is undeliverable for both reasons
    body = lookup(lookup_client, vault.number).json()
    assert body["deliverable"] is False
    assert body["reasons"] == ["no_endpoint", "no_valid_certificate"]
    assert body["endpoints"] == []
    assert body["encryption_certificates"] == []


def test_only_currently_valid_encryption_certificates_are_answered(lookup_client, vault, provider):
    # given a signing certificate, an expired and a not-yet-active endpoint next to the good ones
    CertificateFactory(provider=provider, use="signing")
    now = timezone.now()
    EndpointFactory(provider=provider, activates_at=now + timedelta(days=2))
    EndpointFactory(
        provider=provider,
        activates_at=now - timedelta(days=10),
        expires_at=now - timedelta(days=1),
    )
    body = lookup(lookup_client, vault.number).json()
    assert len(body["endpoints"]) == 1
    assert len(body["encryption_certificates"]) == 1


def test_several_valid_certificates_are_all_answered_for_rollover(lookup_client, vault, provider):
    CertificateFactory(provider=provider)
    body = lookup(lookup_client, vault.number).json()
    assert len(body["encryption_certificates"]) == 2


def test_the_answer_is_the_state_signed_by_the_checkpoint_served(
    lookup_client, provider, actor, monkeypatch
):
    # given a vault, signed in a checkpoint, then held in a write not yet signed
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    signed = checkpoints.serving()
    with monkeypatch.context() as unsigned:
        unsigned.setattr(common, "_schedule_checkpoint", lambda: None)
        vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT)
    checkpoints.clear_cache()
    # then the answer is the signed state, proven against that checkpoint
    body = lookup(lookup_client, vault.number).json()
    assert (body["deliverable"], body["flags"]) == (True, [])
    assert body["proof"]["checkpoint"] == signed.note
    # and once the hold is signed, the answer says it
    checkpoints.publish()
    body = lookup(lookup_client, vault.number).json()
    assert (body["deliverable"], body["flags"]) == (False, ["client_hold"])


def test_lookup_runs_a_fixed_small_number_of_queries(
    lookup_client, vault, provider, django_assert_num_queries
):
    # given more endpoints and certificates than the minimum: the count must not depend on them
    EndpointFactory(provider=provider)
    CertificateFactory(provider=provider)
    lookup(lookup_client, vault.number)  # records the token's last use (a minute's precision)
    proven.clear_cache()
    # cold: the token, the vault's record with its map proof, the provider's record with its map
    # proof (on PostgreSQL one query each, a record and its proof's nodes together; on SQLite
    # two), and the PEMs of the certificates answered. The checkpoint served is cached for a
    # second.
    pair = 1 if connection.vendor == "postgresql" else 2
    with django_assert_num_queries(2 + 2 * pair):
        assert lookup(lookup_client, vault.number).status_code == 200
    # warm: the provider's record, proof and PEMs are cached per checkpoint, and so are the map's
    # top levels, which hold the whole of this small map: the token and the vault's record
    with django_assert_num_queries(2):
        assert lookup(lookup_client, vault.number).status_code == 200


def test_cached_route_is_refreshed_when_the_provider_changes(lookup_client, vault, provider, actor):
    # given a lookup that cached the provider's route
    assert len(lookup(lookup_client, vault.number).json()["endpoints"]) == 1
    # when the provider publishes a second endpoint through the service (its log position moves)
    routing.endpoint_create(
        actor=actor,
        provider=provider,
        transport_profile="vault-pivot-https/1",
        url="https://second.provider.example/v1",
    )
    # then the next lookup answers it at once
    assert len(lookup(lookup_client, vault.number).json()["endpoints"]) == 2


def test_cached_route_expires_with_its_certificate(issuer, vault, provider, monkeypatch):
    # given a cached answer with one valid certificate, for a token that outlives it
    certificate = provider.certificates.get()
    lookup_client = APIClient()
    value = make_token(issuer, expires_at=certificate.not_after + timedelta(days=1))[1]
    lookup_client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    assert lookup(lookup_client, vault.number).json()["deliverable"] is True
    # when time passes beyond the certificate's expiry, with no write at all
    later = certificate.not_after + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    # then the lookup no longer answers it
    body = lookup(lookup_client, vault.number).json()
    assert body["encryption_certificates"] == []
    assert body["reasons"] == ["no_valid_certificate"]


def test_with_the_token_cache_a_warm_lookup_is_two_queries(
    lookup_client, vault, settings, django_assert_num_queries
):
    # given the production token cache
    settings.VAULT_TOKEN_CACHE_SECONDS = 5
    lookup(lookup_client, vault.number)
    # then a warm lookup only reads the vault's record and its map proof (one query on
    # PostgreSQL; on SQLite, this small map's nodes all sit in the cached top levels)
    with django_assert_num_queries(1):
        assert lookup(lookup_client, vault.number).status_code == 200


def test_a_revoked_token_is_refused_once_the_cache_delay_is_over(
    issuer, vault, settings, monkeypatch
):
    settings.VAULT_TOKEN_CACHE_SECONDS = 5
    token, value = make_token(issuer)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    assert lookup(client, vault.number).status_code == 200
    tokens.token_revoke(actor=Actor.system("tests"), token=token)
    # within the delay the worker still trusts what it checked; after it, the token is refused
    clock = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: clock + 6)
    response = lookup(client, vault.number)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


@pytest.mark.django_db(transaction=True)
def test_lookups_survive_a_new_database_connection(lookup_client, vault):
    """A reconnection between lookups (after CONN_MAX_AGE, or a broken connection) changes
    nothing in their answers."""
    from django.db import connection

    assert lookup(lookup_client, vault.number).status_code == 200
    connection.close()
    assert lookup(lookup_client, vault.number).json()["number"] == vault.number
    connection.close()
    assert lookup(lookup_client, vault.number).json()["number"] == vault.number


@pytest.fixture
def payroll_client() -> APIClient:
    """An issuer allowed bank statements and payslips."""
    client = APIClient()
    issuer = IssuerFactory(purposes=["bank_statement", "payslip"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(issuer)[1]}")
    client.issuer = issuer
    return client


def test_a_purpose_answers_only_the_endpoints_accepting_its_document_type(
    payroll_client, vault, provider
):
    # given the provider's endpoint for bank statements, and a second one for payslips
    statements = provider.endpoints.get()
    payslips = EndpointFactory(provider=provider, document_types=["payslip"])

    # when the issuer looks up for each purpose, and for none
    def urls(query: str) -> list[str]:
        body = lookup(payroll_client, f"{vault.number}{query}").json()
        assert body["deliverable"] is True
        return sorted(e["url"] for e in body["endpoints"])

    # then
    assert urls("?purpose=payslip") == [payslips.url]
    assert urls("?purpose=bank_statement") == [statements.url]
    assert urls("") == sorted([statements.url, payslips.url])


def test_a_provider_without_an_endpoint_for_the_purpose_is_not_deliverable_for_it(
    payroll_client, vault
):
    # the provider's only endpoint takes bank statements
    body = lookup(payroll_client, f"{vault.number}?purpose=payslip").json()

    assert body["deliverable"] is False
    assert body["reasons"] == ["no_endpoint_for_purpose"]
    assert body["endpoints"] == []


def test_the_receipt_and_the_usage_name_the_purpose(payroll_client, vault):
    receipt = lookup(payroll_client, f"{vault.number}?purpose=payslip").json()["receipt"]

    payload = receipt.split(".")[1]
    asked = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["asked"]
    assert asked["purpose"] == "payslip"
    counted = {key[2]: counts for key, counts in usage._counts.items()}
    assert counted["payslip"][:2] == [1, 1]


@pytest.mark.parametrize(
    ("purpose", "status", "code"),
    [("postcards", 400, "validation_error"), ("tax_notice", 403, "purpose_not_allowed")],
)
def test_a_purpose_unknown_or_not_allowed_is_refused(payroll_client, vault, purpose, status, code):
    response = lookup(payroll_client, f"{vault.number}?purpose={purpose}")

    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_a_purpose_costs_no_query(payroll_client, vault):
    lookup(payroll_client, vault.number)  # records the token's last use
    # warm, with and without a purpose: the token, the vault's record and its map proof
    with CaptureQueriesContext(connection) as without:
        assert lookup(payroll_client, vault.number).status_code == 200
    with CaptureQueriesContext(connection) as with_purpose:
        assert lookup(payroll_client, f"{vault.number}?purpose=payslip").status_code == 200
    assert len(with_purpose) == len(without) <= 3
