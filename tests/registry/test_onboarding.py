"""Public applications to join the federation, as a provider or as an issuer."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from registry.models import (
    AuditEvent,
    Issuer,
    IssuerStatusChange,
    OrganisationStatus,
    Provider,
    ProviderStatusChange,
)
from tests.factories import ProviderFactory, make_token, random_siren
from tests.registry.helpers import assert_problem, changes

PROVIDERS = "/api/v1/provider-applications"
ISSUERS = "/api/v1/issuer-applications"


def provider_application(**fields) -> dict:
    return {
        "legal_name": "Coffre Numérique SAS",
        "legal_id": random_siren(),
        "contact_name": "Jeanne Martin",
        "technical_email": "tech@coffre.example",
        "security_email": "security@coffre.example",
        "certifications": ["NF Z42-020"],
        **fields,
    }


def issuer_application(**fields) -> dict:
    return {
        "legal_name": "Banque Exemple SA",
        "legal_id": random_siren(),
        "technical_email": "tech@banque.example",
        "security_email": "security@banque.example",
        "purposes": ["bank_statement", "tax_notice"],
        **fields,
    }


def test_provider_application_lands_as_applied(db):
    # given
    payload = provider_application(legal_id="732 829 320")

    # when
    response = APIClient().post(PROVIDERS, payload, format="json")

    # then
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["legal_id_scheme"], body["legal_id"]) == (
        "applied",
        "siren",
        "732829320",
    )
    provider = Provider.objects.get(pk=body["id"])
    assert provider.status == OrganisationStatus.APPLIED
    assert (provider.legal_name, provider.certifications) == (
        "Coffre Numérique SAS",
        ["NF Z42-020"],
    )
    change = ProviderStatusChange.objects.get(provider=provider)
    assert (change.from_status, change.to_status) == ("", "applied")
    assert change.actor == "public:127.0.0.1"
    assert AuditEvent.objects.get(target_id=str(provider.pk)).action == "applied"
    assert not changes().exists()


def test_issuer_application_lands_as_applied(db):
    # when
    response = APIClient().post(ISSUERS, issuer_application(), format="json")

    # then
    assert response.status_code == 201
    issuer = Issuer.objects.get(pk=response.json()["id"])
    assert issuer.status == OrganisationStatus.APPLIED
    assert issuer.purposes == ["bank_statement", "tax_notice"]
    change = IssuerStatusChange.objects.get(issuer=issuer)
    assert (change.from_status, change.to_status) == ("", "applied")


@pytest.mark.parametrize(
    ("url", "payload"), [(PROVIDERS, provider_application), (ISSUERS, issuer_application)]
)
def test_a_bad_siren_is_refused(db, url, payload):
    # when
    response = APIClient().post(url, payload(legal_id="732829321"), format="json")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("legal_id", "invalid_siren")]
    assert not Provider.objects.exists()
    assert not Issuer.objects.exists()


@pytest.mark.parametrize(
    ("url", "required"),
    [
        (PROVIDERS, {"legal_name", "legal_id", "technical_email", "security_email"}),
        (ISSUERS, {"legal_name", "legal_id", "technical_email", "security_email", "purposes"}),
    ],
)
def test_missing_fields_are_named(db, url, required):
    # when
    response = APIClient().post(url, {}, format="json")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert {e["field"] for e in body["errors"]} == required
    assert {e["code"] for e in body["errors"]} == {"required"}
    assert not Provider.objects.exists()
    assert not Issuer.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("technical_email", "not-an-email"),
        ("legal_id_scheme", "vat"),
        ("certifications", "NF Z42-020"),
    ],
)
def test_invalid_fields_are_named(db, field, value):
    # when
    response = APIClient().post(PROVIDERS, provider_application(**{field: value}), format="json")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert [e["field"] for e in body["errors"]] == [field]
    assert not Provider.objects.exists()


def test_issuer_application_refuses_an_unknown_purpose(db):
    # when
    response = APIClient().post(ISSUERS, issuer_application(purposes=["spam"]), format="json")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["purposes.0"]
    assert not Issuer.objects.exists()


@pytest.mark.parametrize(
    ("url", "payload"), [(PROVIDERS, provider_application), (ISSUERS, issuer_application)]
)
def test_a_duplicate_application_is_a_conflict(db, url, payload):
    # given
    APIClient().post(url, payload(legal_id="732829320"), format="json")

    # when
    response = APIClient().post(url, payload(legal_id="732 829 320"), format="json")

    # then
    assert_problem(response, 409, "duplicate_legal_id")
    assert Provider.objects.count() + Issuer.objects.count() == 1


def test_an_active_member_blocks_a_new_application(db):
    # given
    ProviderFactory(legal_id="732829320")

    # when
    response = APIClient().post(
        PROVIDERS, provider_application(legal_id="732829320"), format="json"
    )

    # then
    assert_problem(response, 409, "duplicate_legal_id")


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer two words", "Basic Zm9vOmJhcg==", "Bearer"]
)
def test_applications_need_no_authentication(db, header):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    # when
    response = client.post(PROVIDERS, provider_application(), format="json")

    # then
    assert response.status_code == 201


def test_a_valid_token_does_not_change_who_applied(provider):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(provider)[1]}")

    # when
    response = client.post(PROVIDERS, provider_application(), format="json")

    # then
    assert response.status_code == 201
    applied = Provider.objects.get(pk=response.json()["id"])
    assert applied.status == OrganisationStatus.APPLIED
    assert AuditEvent.objects.get(target_id=str(applied.pk)).actor_token is None
