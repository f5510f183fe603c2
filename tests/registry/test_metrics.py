"""/metrics: what it counts, what it reads from the database, and who may read it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from registry.models import Message, Transfer, Webhook
from registry.models.messages import DeliveryState
from registry.models.transfers import TransferState
from registry.proxies import parse_networks
from tests.factories import VaultFactory
from tests.registry.helpers import assert_problem
from tests.test_wsgi import call

pytestmark = pytest.mark.django_db

LOOKUP_ROUTE = "/api/v1/vaults/<str:number>"


def scrape(client=None, **headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_per_route_method_and_status_with_their_latency(
    lookup_client, vault, checkpoint
):
    # given a scrape before
    before = scrape()

    # when a lookup is asked through Django's stack, and an unknown path
    assert lookup_client.get(f"/api/v1/vaults/{vault.number}").status_code == 200
    assert lookup_client.get("/api/v1/nothing-here/12345").status_code == 404

    # then each is counted under its URL pattern, the unknown path under one label
    after = scrape()
    requests = "vault_registry_requests_total"
    lookup = {"route": LOOKUP_ROUTE, "method": "GET"}
    assert (
        value(after, requests, **lookup, status="200")
        == value(before, requests, **lookup, status="200") + 1
    )
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, requests, **unmatched) == value(before, requests, **unmatched) + 1
    count = "vault_registry_request_duration_seconds_count"
    assert value(after, count, **lookup) == value(before, count, **lookup) + 1


def test_the_lookup_short_path_is_counted_under_the_same_route(issuer, vault, checkpoint):
    from tests.factories import make_token

    token = make_token(issuer)[1]
    before = scrape()

    status, headers, _body = call(f"/api/v1/vaults/{vault.number}", token=token)

    assert status == 200
    assert headers["X-Request-ID"]
    after = scrape()
    labels = {"route": LOOKUP_ROUTE, "method": "GET", "status": "200"}
    name = "vault_registry_requests_total"
    assert value(after, name, **labels) == value(before, name, **labels) + 1
    lookups = "vault_registry_lookups_total"
    mine = {"issuer": str(issuer.pk), "status": "200"}
    assert value(after, lookups, **mine) == value(before, lookups, **mine) + 1


def test_lookups_and_plan_sizes_are_counted_per_issuer(lookup_client, issuer, vault, checkpoint):
    before = scrape()

    lookup_client.get(f"/api/v1/vaults/{vault.number}")
    lookup_client.get("/api/v1/vaults/FR00VLT1000000000000")  # malformed: 400
    plan = lookup_client.post("/api/v1/routing-plans", [vault.number, "FR12"] * 3, format="json")
    assert plan.status_code == 200

    after = scrape()
    lookups = "vault_registry_lookups_total"
    for status in ("200", "400"):
        labels = {"issuer": str(issuer.pk), "status": status}
        assert value(after, lookups, **labels) == value(before, lookups, **labels) + 1
    labels = {"issuer": str(issuer.pk)}
    assert value(after, "vault_registry_plan_numbers_count", **labels) == 1 + value(
        before, "vault_registry_plan_numbers_count", **labels
    )
    assert value(after, "vault_registry_plan_numbers_sum", **labels) == 6 + value(
        before, "vault_registry_plan_numbers_sum", **labels
    )


def test_log_checkpoint_and_backlogs_are_read_from_the_database(provider, other_provider, settings):
    # given a log, a checkpoint signed a while ago, two configured witnesses that did not
    # cosign, a message due to a live webhook and a transfer past its deadline
    from directory import checkpoints

    settings.VAULT_WITNESSES = [{"name": "w1"}, {"name": "w2"}]
    vault = VaultFactory(provider=provider)
    signed = checkpoints.publish()
    Webhook.objects.create(provider=provider, url="https://hooks.provider.example/in", secret="s")
    Message.objects.create(
        provider=provider,
        kind="transfer_requested",
        delivery_state=DeliveryState.PENDING,
        next_delivery_at=timezone.now() - timedelta(minutes=1),
    )
    Transfer.objects.create(
        vault=vault,
        losing_provider=provider,
        gaining_provider=other_provider,
        state=TransferState.PENDING,
        deadline=timezone.now() - timedelta(hours=1),
    )

    # when Prometheus scrapes
    samples = scrape()

    # then
    assert value(samples, "vault_registry_database_up") == 1
    assert value(samples, "vault_registry_log_size") == checkpoints.log_size()
    assert value(samples, "vault_registry_checkpoint_size") == signed.size
    age = value(samples, "vault_registry_checkpoint_age_seconds")
    assert 0 <= age <= time.time() - signed.created_at.timestamp() + 2
    assert value(samples, "vault_registry_witness_cosignatures_missing") == 2
    assert value(samples, "vault_registry_webhook_backlog") == 1
    assert value(samples, "vault_registry_transfer_backlog") == 1


def test_a_scrape_says_when_the_database_is_down(monkeypatch):
    from directory import checkpoints

    def down():
        raise RuntimeError("connection refused")

    monkeypatch.setattr(checkpoints, "log_size", down)

    samples = scrape()

    assert value(samples, "vault_registry_database_up") == 0


def test_metrics_are_refused_to_other_addresses():
    response = Client(REMOTE_ADDR="203.0.113.9").get("/metrics")

    assert_problem(response, 403, "permission_denied")


def test_a_forwarded_address_is_believed_from_a_trusted_proxy_only(settings):
    # an untrusted client cannot claim to be local
    untrusted = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert untrusted.get("/metrics").status_code == 403
    # nginx on the Unix socket forwards the real client's address
    proxied = Client(REMOTE_ADDR="", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.get("/metrics").status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = parse_networks(["203.0.113.0/24"])
    assert proxied.get("/metrics").status_code == 200


def test_the_bearer_secret_opens_metrics_from_anywhere(settings):
    settings.METRICS_TOKEN = "metrics-secret-0123456789"
    client = Client(REMOTE_ADDR="203.0.113.9")

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    scrape(client, HTTP_AUTHORIZATION="Bearer metrics-secret-0123456789")
