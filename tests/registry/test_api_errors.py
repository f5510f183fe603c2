"""Every API error is RFC 9457 problem+json with a stable code, never an HTML page or a trace."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from registry import numbers
from registry.models import AuditEvent, Provider, Vault
from registry.services import vaults
from tests.factories import random_siren
from tests.registry.helpers import PROBLEM

APPLICATIONS = "/api/v1/provider-applications"


def assert_problem(response, status: int, code: str) -> dict:
    """A problem document with every member RFC 9457 and the registry promise."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert {"type", "title", "status", "code", "detail"} <= body.keys()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"] == f"urn:vault-registry:problem:{code}"
    assert body["title"] and body["detail"]
    return body


def application() -> dict:
    return {
        "legal_name": "Coffre SAS",
        "legal_id": random_siren(),
        "technical_email": "tech@coffre.example",
        "security_email": "security@coffre.example",
    }


def test_401(db):
    # when
    response = APIClient().get("/api/v1/provider/vaults")

    # then
    body = assert_problem(response, 401, "not_authenticated")
    assert body["instance"] == "/api/v1/provider/vaults"


def test_403(lookup_client):
    # when
    response = lookup_client.get("/api/v1/provider/vaults")

    # then
    assert_problem(response, 403, "insufficient_scope")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here",
        "/api/v1/provider/endpoints/not-a-uuid/deactivate",
        "/api/v2/provider/vaults",
    ],
)
def test_404_for_an_unknown_url(provider_client, path):
    # when
    response = provider_client.get(path)

    # then
    body = assert_problem(response, 404, "not_found")
    assert body["instance"] == path


def test_503_before_the_registry_signed_anything(lookup_client):
    number = numbers.make("FR", "VLT1", "000000000003").value
    response = lookup_client.get(f"/api/v1/vaults/{number}")
    assert_problem(response, 503, "no_checkpoint")


def test_404_for_an_unknown_vault(lookup_client, checkpoint):
    # given an empty registry that signed its (empty) state
    number = numbers.make("FR", "VLT1", "000000000003").value

    # when
    response = lookup_client.get(f"/api/v1/vaults/{number}")

    # then
    assert_problem(response, 404, "vault_not_found")


def test_405(provider_client):
    # when
    response = provider_client.delete("/api/v1/provider/endpoints")

    # then
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_405_on_a_public_endpoint(db):
    # when
    response = APIClient().get(APPLICATIONS)

    # then
    assert_problem(response, 405, "method_not_allowed")


def test_413(db, settings):
    # given
    settings.VAULT_API_MAX_BODY = 200
    payload = {**application(), "legal_name": "x" * 300}

    # when
    response = APIClient().post(APPLICATIONS, payload, format="json")

    # then
    body = assert_problem(response, 413, "payload_too_large")
    assert body["max_bytes"] == 200
    assert not Provider.objects.exists()
    assert not AuditEvent.objects.exists()


def test_413_before_authentication(db, settings):
    # given
    settings.VAULT_API_MAX_BODY = 10

    # when
    response = APIClient().post(
        "/api/v1/provider/endpoints", {"url": "https://" + "a" * 50}, format="json"
    )

    # then
    assert_problem(response, 413, "payload_too_large")


def test_415(db):
    # when
    response = APIClient().post(APPLICATIONS, "legal_name=Coffre", content_type="text/plain")

    # then
    assert_problem(response, 415, "unsupported_media_type")
    assert not Provider.objects.exists()


@pytest.mark.parametrize("raw", ['{"legal_name": ', "[1, 2", "\x00\x01", '{"a": NaN'])
def test_400_for_malformed_json(db, raw):
    # when
    response = APIClient().post(APPLICATIONS, raw, content_type="application/json")

    # then
    assert_problem(response, 400, "malformed_json")
    assert not Provider.objects.exists()


def test_400_for_a_json_body_that_is_not_an_object(db):
    # when
    response = APIClient().post(APPLICATIONS, "[]", content_type="application/json")

    # then
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"]


def test_400_for_a_malformed_vault_number(provider_client):
    # when
    response = provider_client.get("/api/v1/provider/vaults/FR00-ABC")

    # then
    assert_problem(response, 400, "invalid_length")


def test_429(db, settings):
    # given
    settings.VAULT_RATE_APPLICATIONS_PER_HOUR = 2
    client = APIClient()
    first = [client.post(APPLICATIONS, application(), format="json") for _ in range(2)]

    # when
    response = client.post(APPLICATIONS, application(), format="json")

    # then
    assert [r.status_code for r in first] == [201, 201]
    assert_problem(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    assert Provider.objects.count() == 2


def test_409(db):
    # given
    payload = application()
    APIClient().post(APPLICATIONS, payload, format="json")

    # when
    response = APIClient().post(APPLICATIONS, payload, format="json")

    # then
    assert_problem(response, 409, "duplicate_legal_id")


def test_410(provider, lookup_client, actor):
    # given
    vault = vaults.vault_allocate(actor=actor, provider=provider)
    vaults.vault_close(actor=actor, vault=vault)

    # when
    response = lookup_client.get(f"/api/v1/vaults/{vault.number}")

    # then
    assert_problem(response, 410, "vault_closed")


def test_500_hides_the_error(provider_client, monkeypatch, caplog):
    # given
    def explode(**kwargs):
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    monkeypatch.setattr(vaults, "vault_allocate", explode)

    # when
    response = provider_client.post("/api/v1/provider/vaults")

    # then
    body = assert_problem(response, 500, "server_error")
    text = response.content.decode()
    for leak in ("Traceback", "RuntimeError", "hunter2", "explode", ".py"):
        assert leak not in text
    assert "hunter2" not in body["detail"]
    assert any(record.exc_info for record in caplog.records if record.name == "registry.api")
    assert not Vault.objects.exists()


def test_django_views_outside_the_api_keep_html(db):
    # when
    response = APIClient().get("/no-such-page")

    # then
    assert response.status_code == 404
    assert not response["Content-Type"].startswith(PROBLEM)
