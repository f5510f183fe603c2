"""Every kind of provider write at once, through the API, on PostgreSQL: no 5xx, a gapless log.

Two API clients of one provider (one allocating and holding vaults and approving transfers, the
other publishing and withdrawing endpoints and certificates) and a gaining provider requesting
transfers of the first one's vaults, for a fixed number of rounds each. Before the lock order
of ``registry.services.common`` these answered 500 on deadlocks.
"""

from __future__ import annotations

import queue
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from directory import checkpoints
from registry import x509
from registry.models import LogEntry, LogHead
from registry.services import common
from tests.factories import ProviderFactory, deliverable_provider, make_token

pytestmark = pytest.mark.postgresql

ROUNDS = 12


def _client(owner) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(owner)[1]}")
    return client


def test_all_write_kinds_at_once_answer_no_5xx_and_keep_the_log_gapless(
    transactional_db, monkeypatch
):
    # given: a provider with two clients, a gaining provider, and PEMs to publish and retire
    monkeypatch.setattr(common, "_schedule_checkpoint", lambda: None)  # published once, below
    losing = deliverable_provider()
    gaining = ProviderFactory()
    vault_client, routing_client, gaining_client = _client(losing), _client(losing), None
    gaining_client = _client(gaining)
    pems = [x509.generate_certificate(f"rollover {i}", "encryption")[0] for i in range(2)]
    codes: queue.Queue = queue.Queue()
    requested: queue.Queue = queue.Queue()
    statuses: list[tuple[str, int]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(3)

    def call(client: APIClient, label: str, path: str, data: dict | None = None):
        response = client.post(f"/api/v1/{path}", data or {}, format="json")
        statuses.append((label, response.status_code))
        return response

    def vaults_and_approvals() -> None:
        for _ in range(ROUNDS):
            number = call(vault_client, "allocate", "provider/vaults").json()["number"]
            call(vault_client, "hold", f"provider/vaults/{number}/hold")
            call(vault_client, "release", f"provider/vaults/{number}/release")
            issued = call(vault_client, "code", f"provider/vaults/{number}/transfer-code")
            codes.put((number, issued.json()["code"]))
            try:
                transfer = requested.get(timeout=0.05)
            except queue.Empty:
                continue
            call(vault_client, "approve", f"provider/transfers/{transfer}/approve")
        codes.put(None)
        while (transfer := requested.get(timeout=60)) is not None:
            call(vault_client, "approve", f"provider/transfers/{transfer}/approve")

    def endpoints_and_certificates() -> None:
        for round_ in range(ROUNDS):
            endpoint = call(
                routing_client,
                "endpoint",
                "provider/endpoints",
                {
                    "transport_profile": "vault-pivot-https/1",
                    "url": f"https://deliver.example/{round_}",
                },
            ).json()["id"]
            certificate = call(
                routing_client,
                "certificate",
                "provider/certificates",
                {"use": "encryption", "pem": pems[round_ % 2]},
            ).json()["id"]
            call(routing_client, "deactivate", f"provider/endpoints/{endpoint}/deactivate")
            call(routing_client, "retire", f"provider/certificates/{certificate}/retire")

    def transfer_requests() -> None:
        while (item := codes.get(timeout=60)) is not None:
            number, code = item
            response = call(
                gaining_client,
                "request",
                "provider/transfers",
                {"vault": number, "code": code, "consent_reference": "consent"},
            )
            if response.status_code == 201:
                requested.put(response.json()["id"])
        requested.put(None)

    def run(work) -> None:
        try:
            start.wait(timeout=30)
            work()
        except BaseException as exc:  # surfaced below
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(work,))
        for work in (vaults_and_approvals, endpoints_and_certificates, transfer_requests)
    ]

    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    # then
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    server_errors = [(label, status) for label, status in statuses if status >= 500]
    assert server_errors == []
    assert {label for label, _status in statuses} >= {
        "allocate",
        "hold",
        "release",
        "code",
        "request",
        "approve",
        "endpoint",
        "certificate",
        "deactivate",
        "retire",
    }
    assert all(status < 300 for _label, status in statuses), statuses
    size = LogHead.objects.get(pk=1).size
    assert sorted(LogEntry.objects.values_list("sequence", flat=True)) == list(range(size))
    assert checkpoints.publish().size == size  # the stored tree and map are what the log gives
