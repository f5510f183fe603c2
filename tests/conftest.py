"""Shared fixtures: a small federation and API clients holding each kind of token."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from registry.services.common import Actor
from tests.factories import (
    CertificateFactory,
    EndpointFactory,
    IssuerFactory,
    ProviderFactory,
    VaultFactory,
    make_token,
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``postgresql`` (triggers, row locks) only run on PostgreSQL."""
    if item.get_closest_marker("postgresql") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


@pytest.fixture(autouse=True)
def _empty_cache():
    """Throttle counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def actor() -> Actor:
    return Actor.system("tests")


@pytest.fixture
def provider(db):
    """An active provider that can be delivered to: one endpoint, one encryption certificate."""
    provider = ProviderFactory()
    EndpointFactory(provider=provider)
    CertificateFactory(provider=provider)
    return provider


@pytest.fixture
def other_provider(db):
    provider = ProviderFactory()
    EndpointFactory(provider=provider)
    CertificateFactory(provider=provider)
    return provider


@pytest.fixture
def issuer(db):
    return IssuerFactory()


@pytest.fixture
def vault(provider):
    return VaultFactory(provider=provider)


def _client(value: str | None) -> APIClient:
    client = APIClient()
    if value:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def provider_client(provider) -> APIClient:
    return _client(make_token(provider)[1])


@pytest.fixture
def other_provider_client(other_provider) -> APIClient:
    return _client(make_token(other_provider)[1])


@pytest.fixture
def lookup_client(issuer) -> APIClient:
    return _client(make_token(issuer)[1])


@pytest.fixture(autouse=True)
def _empty_route_cache():
    """Routes and tokens are cached per process; factories write behind the services' back."""
    from directory.selectors import route_cache
    from registry.api.auth import token_cache

    route_cache.clear()
    token_cache.clear()
    yield
    route_cache.clear()
    token_cache.clear()
