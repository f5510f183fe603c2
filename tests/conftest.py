"""Shared fixtures: a small federation and API clients holding each kind of token."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from registry.services.common import Actor
from registry.services.common import _schedule_checkpoint as REAL_SCHEDULE
from tests.factories import IssuerFactory, VaultFactory, deliverable_provider, make_token


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
    return deliverable_provider()


@pytest.fixture
def other_provider(db):
    return deliverable_provider()


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
def _empty_usage_counters():
    """Usage and forwarded-traffic counts are gathered per process (registry.usage,
    directory.federation.traffic): each test starts with none."""
    from directory.federation import traffic
    from registry import usage

    usage.reset()
    traffic.reset()
    yield
    usage.reset()
    traffic.reset()


@pytest.fixture(autouse=True)
def _empty_token_cache():
    """Tokens are cached per process; factories write behind the services' back."""
    from registry.api.auth import token_cache

    token_cache.clear()
    yield
    token_cache.clear()


@pytest.fixture(scope="session")
def signing_key_dir(tmp_path_factory):
    """Log and receipt keys generated once into a temporary directory, as generate_keys does."""
    from django.conf import settings
    from django.test import override_settings

    from directory import keys

    path = tmp_path_factory.mktemp("keys")
    with override_settings(VAULT_KEY_DIR=path):
        keys.generate()
    keys.reset()
    assert str(path) != str(settings.VAULT_KEY_DIR)
    return path


@pytest.fixture(autouse=True)
def _signing_keys(settings, signing_key_dir, monkeypatch, tmp_path):
    """Every test signs with throwaway keys; every write publishes a checkpoint at once.

    A test runs inside one transaction that never commits, so the publication a commit would
    trigger (``transaction.on_commit``) is done when the append ends instead.
    """
    from directory import checkpoints, keys, proven, receipts
    from directory.federation import members
    from registry.services import common

    members.clear_cache()
    settings.VAULT_KEY_DIR = signing_key_dir
    settings.VAULT_CHECKPOINT_INTERVAL = 0
    settings.VAULT_CHECKPOINT_STATE_FILE = str(tmp_path / "last-checkpoint.json")
    monkeypatch.setattr(common, "_schedule_checkpoint", checkpoints.publish_soon)
    keys.reset()
    checkpoints.clear_cache()
    receipts.clear_cache()
    proven.clear_cache()
    yield
    keys.reset()
    checkpoints.clear_cache()
    receipts.clear_cache()
    proven.clear_cache()
    members.clear_cache()


@pytest.fixture
def commit_publication(monkeypatch):
    """Publication as in production: scheduled with ``transaction.on_commit`` (for the tests
    of that mechanism, with django_capture_on_commit_callbacks)."""
    from registry.services import common

    monkeypatch.setattr(common, "_schedule_checkpoint", REAL_SCHEDULE)


@pytest.fixture
def checkpoint(db):
    """Publish a checkpoint over the log as it is now (on_commit hooks do not run in tests)."""
    from directory import checkpoints

    return checkpoints.publish()


# A public address for every test host name (the documentation ranges are not public).
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture(autouse=True)
def _offline_dns(monkeypatch):
    """Webhook hosts resolve without the network: ``localhost`` to loopback, any other name to
    a public address. Tests about resolution replace this again."""
    from registry import destinations

    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "localhost" else [PUBLIC_ADDRESS]

    monkeypatch.setattr(destinations, "resolve", resolve)
