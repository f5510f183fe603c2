"""Bearer tokens: who may call what, and what the registry keeps of a token."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from registry.api.auth import token_cache
from registry.errors import Conflict, ErrorCode
from registry.models import ApiToken, AuditEvent, OrganisationStatus, Provider
from registry.services import tokens
from tests.factories import IssuerFactory, ProviderFactory, VaultFactory, make_token
from tests.registry.helpers import assert_problem

ENDPOINTS = "/api/v1/provider/endpoints"
REALM = 'Bearer realm="vault-registry"'


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_no_header_is_not_authenticated(provider):
    # when
    response = client_with(None).get(ENDPOINTS)

    # then
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == REALM


def test_another_scheme_is_not_authenticated(provider):
    # when
    response = client_with("Basic dXNlcjpwYXNz").get(ENDPOINTS)

    # then
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == REALM


@pytest.mark.parametrize(
    "header",
    ["Bearer vr_not_a_token", "Bearer", "Bearer two words", "bearer vr_not_a_token"],
    ids=["unknown", "no-value", "two-words", "lower-case-unknown"],
)
def test_a_bad_token_is_invalid(provider, header):
    # when
    response = client_with(header).get(ENDPOINTS)

    # then
    assert_problem(response, 401, "invalid_token")
    assert response["WWW-Authenticate"] == REALM


def test_an_expired_token_is_refused(provider):
    # given
    _token, value = make_token(provider, expires_at=timezone.now() - timedelta(seconds=1))

    # when
    response = client_with(f"Bearer {value}").get(ENDPOINTS)

    # then
    assert_problem(response, 401, "token_expired")
    assert response["WWW-Authenticate"] == REALM


def test_a_revoked_token_is_refused(provider, actor):
    # given
    token, value = make_token(provider)
    tokens.token_revoke(actor=actor, token=token)

    # when
    response = client_with(f"Bearer {value}").get(ENDPOINTS)

    # then
    assert_problem(response, 401, "token_revoked")


def test_a_lookup_token_cannot_manage_a_provider(issuer, lookup_client):
    # when
    response = lookup_client.get(ENDPOINTS)

    # then
    assert_problem(response, 403, "insufficient_scope")


def test_a_provider_token_cannot_look_up(vault, provider_client):
    # when
    response = provider_client.get(f"/api/v1/vaults/{vault.number}")

    # then
    assert_problem(response, 403, "insufficient_scope")


def test_a_lookup_token_can_look_up(vault, lookup_client):
    # when
    response = lookup_client.get(f"/api/v1/vaults/{vault.number}")

    # then
    assert response.status_code == 200


def test_a_lookup_token_cannot_allocate(issuer, lookup_client):
    # when
    response = lookup_client.post("/api/v1/provider/vaults")

    # then
    assert_problem(response, 403, "insufficient_scope")
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "status",
    [OrganisationStatus.SUSPENDED, OrganisationStatus.WITHDRAWN, OrganisationStatus.APPLIED],
)
def test_a_token_of_an_inactive_provider_is_refused(db, status):
    # given
    provider = ProviderFactory()
    VaultFactory(provider=provider)
    _token, value = make_token(provider)
    Provider.objects.filter(pk=provider.pk).update(status=status)

    # when
    response = client_with(f"Bearer {value}").post("/api/v1/provider/vaults")

    # then
    assert_problem(response, 403, "organisation_inactive")
    assert provider.vaults.count() == 1


def test_a_token_of_a_suspended_issuer_is_refused(vault):
    # given
    issuer = IssuerFactory(status=OrganisationStatus.SUSPENDED)
    _token, value = make_token(issuer)

    # when
    response = client_with(f"Bearer {value}").get(f"/api/v1/vaults/{vault.number}")

    # then
    assert_problem(response, 403, "organisation_inactive")


def test_last_use_is_recorded(provider):
    # given
    token, value = make_token(provider)
    assert token.last_used_at is None
    before = timezone.now()

    # when
    response = client_with(f"Bearer {value}").get(ENDPOINTS)

    # then
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert before <= token.last_used_at <= timezone.now()


def test_last_use_is_not_rewritten_within_a_minute(provider, django_assert_num_queries):
    # given
    token, value = make_token(provider, last_used_at=timezone.now() - timedelta(seconds=5))
    recorded = token.last_used_at
    client = client_with(f"Bearer {value}")

    # when
    with django_assert_num_queries(2):  # the token, the endpoints: no write
        response = client.get(ENDPOINTS)

    # then
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == recorded


def test_a_stale_last_use_is_refreshed(provider):
    # given
    token, value = make_token(provider, last_used_at=timezone.now() - timedelta(hours=1))

    # when
    client_with(f"Bearer {value}").get(ENDPOINTS)

    # then
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(minutes=1)


@pytest.mark.parametrize("owner_fixture", ["provider", "issuer"])
def test_token_create_keeps_only_the_hash(request, actor, owner_fixture):
    # given
    owner = request.getfixturevalue(owner_fixture)

    # when
    token, value = tokens.token_create(actor=actor, owner=owner, name="ci")

    # then
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(value not in str(column) for column in row.values())
    assert row["key_hash"] == hashlib.sha256(value.encode()).hexdigest()
    assert value.startswith(row["prefix"])
    assert len(row["prefix"]) < len(value) // 3
    audit = AuditEvent.objects.filter(target_id=str(token.pk)).values().get()
    assert all(value not in json.dumps(column, default=str) for column in audit.values())


def test_the_created_token_works_once_shown(provider, actor):
    # given
    _token, value = tokens.token_create(actor=actor, owner=provider, name="ci")

    # when
    response = client_with(f"Bearer {value}").get(ENDPOINTS)

    # then
    assert response.status_code == 200
    assert value not in response.content.decode()


def test_token_create_gives_a_new_value_each_time(provider, actor):
    # when
    values = {tokens.token_create(actor=actor, owner=provider, name="ci")[1] for _ in range(3)}

    # then
    assert len(values) == 3


@pytest.mark.parametrize(
    ("factory", "code"),
    [
        (ProviderFactory, ErrorCode.PROVIDER_NOT_ACTIVE),
        (IssuerFactory, ErrorCode.ISSUER_NOT_ACTIVE),
    ],
)
def test_token_create_refuses_an_application_not_yet_approved(db, actor, factory, code):
    # given
    owner = factory(status=OrganisationStatus.APPLIED)

    # when
    with pytest.raises(Conflict) as caught:
        tokens.token_create(actor=actor, owner=owner, name="ci")

    # then
    assert caught.value.code == code
    assert not ApiToken.objects.exists()


def _token_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "apitoken" in q["sql"]]


def test_lookups_write_the_last_use_at_most_once_a_minute(issuer, vault, checkpoint):
    # given an issuer's token last used an hour ago, and the workers' token cache off, so that
    # every lookup reads the token from the database as a fresh worker would
    token, value = make_token(issuer, last_used_at=timezone.now() - timedelta(hours=1))
    client = client_with(f"Bearer {value}")

    # when it makes 20 lookups in a row
    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            token_cache.clear()
            assert client.get(f"/api/v1/vaults/{vault.number}").status_code == 200

    # then the last use is written once, by the first lookup, and not by the 19 others
    assert len(_token_updates(queries.captured_queries)) == 1
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(minutes=1)


def test_a_lookup_writes_the_last_use_again_once_it_is_a_minute_old(issuer, vault, checkpoint):
    # given a token whose last use was recorded 61 seconds ago
    token, value = make_token(issuer, last_used_at=timezone.now() - timedelta(seconds=61))

    # when it looks a vault up
    with CaptureQueriesContext(connection) as queries:
        response = client_with(f"Bearer {value}").get(f"/api/v1/vaults/{vault.number}")

    # then the lookup records the use
    assert response.status_code == 200
    assert len(_token_updates(queries.captured_queries)) == 1
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(seconds=5)
