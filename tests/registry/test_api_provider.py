"""Provider self-service over the API: endpoints, certificates and vaults, each provider alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from registry import numbers, x509
from registry.models import AuditEvent, Certificate, Endpoint, Vault, VaultStatus
from registry.numbers import format_display
from tests.factories import VaultFactory
from tests.registry.helpers import assert_problem, changes, log_kinds

ENDPOINTS = "/api/v1/provider/endpoints"
CERTIFICATES = "/api/v1/provider/certificates"
VAULTS = "/api/v1/provider/vaults"


# --- Endpoints ----------------------------------------------------------------------------------


def test_list_endpoints_shows_only_the_providers_own(provider, other_provider, provider_client):
    # given
    mine = provider.endpoints.get()

    # when
    response = provider_client.get(ENDPOINTS)

    # then
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == [str(mine.pk)]
    assert response.json()[0]["url"] == mine.url


def test_create_endpoint(provider, provider_client):
    # given
    payload = {
        "transport_profile": "vault-pivot-https/1",
        "url": "https://inbox.provider.example/v2",
        "document_types": ["payslip", "invoice"],
    }

    # when
    response = provider_client.post(ENDPOINTS, payload, format="json")

    # then
    assert response.status_code == 201
    endpoint = Endpoint.objects.get(pk=response.json()["id"])
    assert endpoint.provider_id == provider.pk
    assert (endpoint.url, endpoint.document_types) == (payload["url"], payload["document_types"])
    assert log_kinds() == ["endpoint.published"]
    audit = AuditEvent.objects.get(action="endpoint:published")
    assert audit.actor_token.provider_id == provider.pk


def test_create_endpoint_refuses_http(provider, provider_client):
    # when
    response = provider_client.post(
        ENDPOINTS,
        {"transport_profile": "vault-pivot-https/1", "url": "http://inbox.provider.example/v2"},
        format="json",
    )

    # then
    body = assert_problem(response, 400, "validation_error")
    assert {"field": "url", "code": "not_https"}.items() <= body["errors"][0].items()
    assert provider.endpoints.count() == 1
    assert log_kinds() == []


def test_create_endpoint_refuses_an_unknown_transport_profile(provider, provider_client):
    # when
    response = provider_client.post(
        ENDPOINTS,
        {"transport_profile": "carrier-pigeon/1", "url": "https://inbox.provider.example/v2"},
        format="json",
    )

    # then
    body = assert_problem(response, 400, "validation_error")
    assert [error["field"] for error in body["errors"]] == ["transport_profile"]
    assert provider.endpoints.count() == 1


def test_create_endpoint_refuses_an_expiry_before_activation(provider, provider_client):
    # when
    response = provider_client.post(
        ENDPOINTS,
        {
            "transport_profile": "vault-pivot-https/1",
            "url": "https://inbox.provider.example/v2",
            "activates_at": "2030-01-02T00:00:00Z",
            "expires_at": "2030-01-01T00:00:00Z",
        },
        format="json",
    )

    # then
    body = assert_problem(response, 400, "validation_error")
    assert [error["field"] for error in body["errors"]] == ["expires_at"]
    assert provider.endpoints.count() == 1


def test_create_endpoint_twice_is_a_conflict(provider, provider_client):
    # given
    existing = provider.endpoints.get()

    # when
    response = provider_client.post(
        ENDPOINTS,
        {"transport_profile": existing.transport_profile, "url": existing.url},
        format="json",
    )

    # then
    assert_problem(response, 409, "duplicate_endpoint")
    assert provider.endpoints.count() == 1


def test_deactivate_endpoint(provider, provider_client):
    # given
    endpoint = provider.endpoints.get()

    # when
    response = provider_client.post(f"{ENDPOINTS}/{endpoint.pk}/deactivate")
    again = provider_client.post(f"{ENDPOINTS}/{endpoint.pk}/deactivate")

    # then
    assert response.status_code == 200
    assert response.json()["deactivated_at"] is not None
    assert Endpoint.objects.get(pk=endpoint.pk).deactivated_at is not None
    assert_problem(again, 409, "endpoint_already_deactivated")
    assert log_kinds() == ["endpoint.deactivated"]


def test_deactivate_an_unknown_endpoint_is_not_found(provider_client):
    # when
    response = provider_client.post(f"{ENDPOINTS}/00000000-0000-0000-0000-000000000000/deactivate")

    # then
    assert_problem(response, 404, "not_found")


# --- Certificates -------------------------------------------------------------------------------


def test_upload_certificate(provider, provider_client):
    # given
    pem, _key = x509.generate_certificate("docs.provider.example", "encryption", key_type="rsa")

    # when
    response = provider_client.post(CERTIFICATES, {"use": "encryption", "pem": pem}, format="json")

    # then
    assert response.status_code == 201
    body = response.json()
    certificate = Certificate.objects.get(pk=body["id"])
    assert certificate.provider_id == provider.pk
    assert (body["key_type"], body["key_size"]) == ("rsa", 2048)
    assert body["subject"] == "CN=docs.provider.example"
    assert log_kinds() == ["certificate.published"]


def _expired() -> str:
    now = datetime.now(UTC)
    return x509.generate_certificate(
        "old", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )[0]


def _not_yet_valid() -> str:
    now = datetime.now(UTC)
    return x509.generate_certificate(
        "future", not_before=now + timedelta(days=1), not_after=now + timedelta(days=30)
    )[0]


def _corrupt() -> str:
    return "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("make_pem", "code"),
    [
        (lambda: "this is not a certificate", "cert_not_pem"),
        (_corrupt, "cert_unparseable"),
        (lambda: x509.generate_certificate("leak")[1], "cert_private_key"),
        (lambda: "".join(x509.generate_certificate("leak")), "cert_private_key"),
        (_expired, "cert_expired"),
        (_not_yet_valid, "cert_not_yet_valid"),
        (
            lambda: x509.generate_certificate("weak", key_type="rsa", rsa_bits=1024)[0],
            "cert_weak_key",
        ),
        (
            lambda: x509.generate_certificate("sign", key_usage={"digital_signature": True})[0],
            "cert_key_usage_mismatch",
        ),
    ],
    ids=[
        "garbage",
        "corrupt",
        "private-key",
        "cert-and-key",
        "expired",
        "not-yet-valid",
        "rsa-1024",
        "usage-mismatch",
    ],
)
def test_upload_refuses_an_unfit_certificate(provider, provider_client, make_pem, code):
    # given
    pem = make_pem()

    # when
    response = provider_client.post(CERTIFICATES, {"use": "encryption", "pem": pem}, format="json")

    # then
    body = assert_problem(response, 400, code)
    assert "PRIVATE KEY" not in body["detail"]
    assert provider.certificates.count() == 1
    assert log_kinds() == []
    assert not AuditEvent.objects.exists()


def test_upload_refuses_an_unknown_use(provider, provider_client):
    # given
    pem, _key = x509.generate_certificate("docs", "encryption")

    # when
    response = provider_client.post(CERTIFICATES, {"use": "mining", "pem": pem}, format="json")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert [error["field"] for error in body["errors"]] == ["use"]
    assert provider.certificates.count() == 1


def test_list_certificates_shows_only_the_providers_own(provider, other_provider, provider_client):
    # given
    mine = provider.certificates.get()

    # when
    response = provider_client.get(CERTIFICATES)

    # then
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == [str(mine.pk)]
    assert response.json()[0]["fingerprint_sha256"] == mine.fingerprint_sha256


def test_retire_certificate(provider, provider_client):
    # given
    certificate = provider.certificates.get()

    # when
    response = provider_client.post(f"{CERTIFICATES}/{certificate.pk}/retire")
    again = provider_client.post(f"{CERTIFICATES}/{certificate.pk}/retire")

    # then
    assert response.status_code == 200
    assert response.json()["retired_at"] is not None
    assert Certificate.objects.get(pk=certificate.pk).retired_at is not None
    assert_problem(again, 409, "certificate_already_retired")
    assert log_kinds() == ["certificate.retired"]


# --- Vaults -------------------------------------------------------------------------------------


def test_allocate_vault(provider, provider_client):
    # when
    response = provider_client.post(VAULTS)

    # then
    assert response.status_code == 201
    body = response.json()
    vault = Vault.objects.get(pk=body["number"])
    assert vault.provider_id == provider.pk
    assert numbers.is_valid(body["number"])
    assert body["display"] == format_display(body["number"])
    assert (body["status"], body["flags"]) == (
        "active",
        [],
    )
    assert body["log_sequence"] == changes().get().sequence
    assert log_kinds() == ["vault.allocated"]


def test_allocate_vault_for_a_suspended_provider_is_refused(provider, provider_client):
    # given
    type(provider).objects.filter(pk=provider.pk).update(status="suspended")

    # when
    response = provider_client.post(VAULTS)

    # then
    assert_problem(response, 403, "organisation_inactive")
    assert not Vault.objects.exists()


def test_list_vaults_pages_with_a_cursor(provider, other_provider, provider_client):
    # given
    mine = {VaultFactory(provider=provider).number for _ in range(7)}
    VaultFactory(provider=other_provider)

    # when
    seen, pages = [], 0
    url = f"{VAULTS}?page_size=3"
    while url:
        response = provider_client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) <= 3
        seen += [item["number"] for item in body["results"]]
        url, pages = body["next"], pages + 1

    # then
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == mine


def test_list_vaults_default_page(provider, provider_client):
    # given
    VaultFactory(provider=provider)

    # when
    response = provider_client.get(VAULTS)

    # then
    assert response.status_code == 200
    body = response.json()
    assert (len(body["results"]), body["next"], body["previous"]) == (1, None, None)


@pytest.mark.parametrize(
    "form",
    [
        lambda n: n,
        lambda n: n.lower(),
        format_display,
        lambda n: "-".join(n[i : i + 4] for i in range(0, 20, 4)),
        lambda n: " " + format_display(n).lower().replace(" ", ".") + " ",
    ],
    ids=["compact", "lower", "spaces", "hyphens", "dots-and-padding"],
)
def test_get_vault_by_any_input_form(vault, provider_client, form):
    # when
    response = provider_client.get(f"{VAULTS}/{quote(form(vault.number))}")

    # then
    assert response.status_code == 200
    assert response.json()["number"] == vault.number


def test_get_vault_with_a_mistyped_number_says_why(provider, provider_client):
    # given
    vault = VaultFactory(provider=provider, number=numbers.make("FR", "VLT1", "000000000012").value)
    typo = vault.number[:-2] + "21"  # two neighbours swapped

    # when
    response = provider_client.get(f"{VAULTS}/{typo}")

    # then
    assert_problem(response, 400, "invalid_check_digits")


def test_get_unknown_vault_is_not_found(provider, provider_client):
    # given
    number = numbers.make("FR", "VLT1", "000000000001").value

    # when
    response = provider_client.get(f"{VAULTS}/{number}")

    # then
    assert_problem(response, 404, "vault_not_found")


def test_hold_release_and_close_a_vault(vault, provider_client):
    # when
    held = provider_client.post(f"{VAULTS}/{vault.number}/hold")
    held_again = provider_client.post(f"{VAULTS}/{vault.number}/hold")
    released = provider_client.post(f"{VAULTS}/{vault.number}/release")
    released_again = provider_client.post(f"{VAULTS}/{vault.number}/release")
    closed = provider_client.post(f"{VAULTS}/{format_display(vault.number)}/close")
    after_close = provider_client.post(f"{VAULTS}/{vault.number}/hold")

    # then
    assert (held.status_code, held.json()["flags"]) == (200, ["client_hold"])
    assert_problem(held_again, 409, "already_held")
    assert (released.status_code, released.json()["flags"]) == (200, [])
    assert_problem(released_again, 409, "not_held")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_at"] is not None
    assert_problem(after_close, 410, "vault_closed")
    vault.refresh_from_db()
    assert (vault.status, vault.client_hold) == (VaultStatus.CLOSED, False)
    assert log_kinds() == ["vault.held", "vault.released", "vault.closed"]


def test_provider_cannot_lift_a_registry_lock(vault, provider_client):
    # given
    Vault.objects.filter(pk=vault.pk).update(registry_lock=True)

    # when
    response = provider_client.post(f"{VAULTS}/{vault.number}/close")

    # then
    assert_problem(response, 409, "registry_locked")
    assert Vault.objects.get(pk=vault.pk).status == VaultStatus.ACTIVE


# --- Isolation: another provider's records are not found ----------------------------------------


@pytest.mark.parametrize("action", ["", "/hold", "/release", "/close"])
def test_another_providers_vault_is_not_found(other_provider, provider_client, action):
    # given
    theirs = VaultFactory(provider=other_provider, client_hold=True)
    before = Vault.objects.filter(pk=theirs.pk).values().get()

    # when
    if action:
        response = provider_client.post(f"{VAULTS}/{theirs.number}{action}")
    else:
        response = provider_client.get(f"{VAULTS}/{theirs.number}")

    # then
    assert_problem(response, 404, "vault_not_found")
    assert Vault.objects.filter(pk=theirs.pk).values().get() == before
    assert log_kinds() == []
    assert not AuditEvent.objects.exists()


def test_another_providers_vault_is_not_listed(other_provider, provider_client):
    # given
    VaultFactory(provider=other_provider)

    # when
    response = provider_client.get(VAULTS)

    # then
    assert response.json()["results"] == []


def test_another_providers_endpoint_is_not_found(other_provider, provider_client):
    # given
    theirs = other_provider.endpoints.get()

    # when
    response = provider_client.post(f"{ENDPOINTS}/{theirs.pk}/deactivate")

    # then
    assert_problem(response, 404, "not_found")
    assert Endpoint.objects.get(pk=theirs.pk).deactivated_at is None
    assert log_kinds() == []


def test_another_providers_certificate_is_not_found(other_provider, provider_client):
    # given
    theirs = other_provider.certificates.get()

    # when
    response = provider_client.post(f"{CERTIFICATES}/{theirs.pk}/retire")

    # then
    assert_problem(response, 404, "not_found")
    assert Certificate.objects.get(pk=theirs.pk).retired_at is None
    assert log_kinds() == []


def test_not_found_does_not_reveal_that_the_record_exists(other_provider, provider_client):
    # given
    theirs = VaultFactory(provider=other_provider)
    nobody = numbers.make("FR", "VLT1", "000000000002").value

    # when
    existing = provider_client.get(f"{VAULTS}/{theirs.number}").json()
    missing = provider_client.get(f"{VAULTS}/{nobody}").json()

    # then
    assert existing["detail"] == missing["detail"]
    assert (existing["code"], existing["title"]) == (missing["code"], missing["title"])


def test_a_garbled_cursor_is_400_not_404(provider_client):
    response = provider_client.get("/api/v1/provider/vaults?cursor=not-a-cursor")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["field"] == "cursor"
