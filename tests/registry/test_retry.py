"""Writes the database refuses for concurrency: retried, then 503 retry_later; commands go on.

The API is not inside a transaction in production, so these tests use ``transactional_db``:
inside a test's own transaction nothing could be retried.
"""

from __future__ import annotations

from io import StringIO

import psycopg.errors
import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from registry.models import Message, Transfer, TransferState, Vault
from registry.services import messages as message_services
from registry.services import transfers, vaults, webhooks
from registry.services.common import Actor
from tests.registry.conftest import bearer
from tests.registry.helpers import assert_problem

SYSTEM = Actor.system("tests")


def database_error(cause: Exception) -> OperationalError:
    """What Django raises for a psycopg error: its own OperationalError, caused by it."""
    error = OperationalError(str(cause))
    error.__cause__ = cause
    return error


DEADLOCK = database_error(psycopg.errors.DeadlockDetected("deadlock detected"))
SERIALISATION = database_error(psycopg.errors.SerializationFailure("could not serialize"))


class FailingFirst:
    """Stands for a service: raises ``errors`` one per call, then calls the real one."""

    def __init__(self, real, *errors: Exception):
        self.real, self.errors, self.calls = real, list(errors), 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.real(*args, **kwargs)


@pytest.fixture
def allocation(transactional_db):
    from tests.factories import deliverable_provider

    return deliverable_provider()


def test_a_write_that_meets_a_deadlock_is_retried_and_succeeds(allocation, monkeypatch):
    # given the first attempt of an allocation meets a deadlock
    service = FailingFirst(vaults.vault_allocate, DEADLOCK)
    monkeypatch.setattr(vaults, "vault_allocate", service)

    # when
    response = bearer(allocation).post("/api/v1/provider/vaults")

    # then
    assert response.status_code == 201
    assert service.calls == 2
    assert Vault.objects.filter(provider=allocation).count() == 1


def test_a_write_refused_every_time_answers_503_retry_later(allocation, monkeypatch, settings):
    # given every attempt meets a serialisation failure
    settings.VAULT_WRITE_ATTEMPTS = 3
    settings.VAULT_RETRY_AFTER_SECONDS = 2
    service = FailingFirst(vaults.vault_allocate, *[SERIALISATION] * 3)
    monkeypatch.setattr(vaults, "vault_allocate", service)

    # when
    response = bearer(allocation).post("/api/v1/provider/vaults")

    # then
    assert_problem(response, 503, "retry_later")
    assert response["Retry-After"] == "2"
    assert service.calls == 3
    assert not Vault.objects.filter(provider=allocation).exists()


def test_other_database_errors_are_not_retried(allocation, monkeypatch):
    # given a database error that is not about concurrency
    other = database_error(psycopg.errors.DiskFull("no space left"))
    service = FailingFirst(vaults.vault_allocate, other)
    monkeypatch.setattr(vaults, "vault_allocate", service)

    # when
    response = bearer(allocation).post("/api/v1/provider/vaults")

    # then
    assert_problem(response, 500, "server_error")
    assert service.calls == 1


@pytest.mark.django_db
def test_process_transfers_goes_past_a_failed_transfer_and_reports_it(
    clock, pending, provider, other_provider, monkeypatch
):
    # given two overdue transfers, the first of which cannot be settled
    from tests.factories import VaultFactory

    second_vault = VaultFactory(provider=provider)
    code = transfers.transfer_code_issue(actor=SYSTEM, provider=provider, vault=second_vault)[1]
    second = transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=other_provider,
        number=second_vault.number,
        code=code,
        consent_reference="consent-43",
    )
    clock.set(max(pending.deadline, second.deadline))
    real = transfers.transfer_settle

    def settle(*, transfer, **kwargs):
        if transfer.pk == pending.pk:
            raise DEADLOCK
        return real(transfer=transfer, **kwargs)

    monkeypatch.setattr(transfers, "transfer_settle", settle)
    out, err = StringIO(), StringIO()

    # when
    with pytest.raises(CommandError, match="1 transfer"):
        call_command("process_transfers", stdout=out, stderr=err)

    # then
    assert Transfer.objects.get(pk=second.pk).state == TransferState.SERVER_APPROVED
    assert Transfer.objects.get(pk=pending.pk).state == TransferState.PENDING
    assert str(pending.pk) in err.getvalue()
    assert "Settled 1" in out.getvalue()


@pytest.mark.django_db
def test_deliver_webhooks_goes_past_an_outcome_it_cannot_record(
    provider, other_provider, monkeypatch
):
    # given two providers' messages, and the first provider's outcome cannot be recorded
    for owner in (provider, other_provider):
        message_services.webhook_register(
            actor=SYSTEM, provider=owner, url=f"https://{owner.pk}.example/"
        )
        message_services.message_enqueue(
            provider=owner, kind="transfer.requested", data={}, at=timezone.now()
        )
    real = webhooks.webhook_record_attempt

    def record(*, message_id, **kwargs):
        if Message.objects.get(pk=message_id).provider_id == provider.pk:
            raise DEADLOCK
        return real(message_id=message_id, **kwargs)

    monkeypatch.setattr(webhooks, "webhook_record_attempt", record)
    monkeypatch.setattr(webhooks, "http_sender", lambda url, body, headers, timeout: 200)
    out = StringIO()

    # when
    with pytest.raises(CommandError, match="1 message"):
        call_command("deliver_webhooks", stdout=out)

    # then the other provider's message is delivered, the failed one stays leased
    assert "1 not recorded" in out.getvalue()
    delivered = Message.objects.get(provider=other_provider)
    assert delivered.delivery_state == "delivered"
    leased = Message.objects.get(provider=provider)
    assert (leased.delivery_state, leased.delivery_attempts) == ("pending", 0)
    assert leased.next_delivery_at > timezone.now()
