"""The message queue (transactional outbox), its poll API, and webhook delivery with retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from registry import transfer_codes
from registry.errors import DomainError
from registry.models import DeliveryState, Message, MessageKind
from registry.services import messages, transfers, webhooks
from registry.services.common import Actor
from tests.factories import CertificateFactory, VaultFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
MESSAGES = "/api/v1/messages"
WEBHOOK = "/api/v1/provider/webhook"


class FakeEndpoint:
    """An injected HTTP sender: answers the given statuses in turn and records each request."""

    def __init__(self, *answers: int | Exception):
        self.answers = list(answers)
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        self.requests.append((url, body, headers))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def kinds_for(provider) -> list[str]:
    return list(Message.objects.filter(provider=provider).values_list("kind", flat=True))


# --- One message per event ------------------------------------------------------------------------


def test_every_event_of_a_transfer_reaches_the_sides_that_must_know(
    clock, provider, other_provider, vault
):
    # code issued → the holder's provider
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=provider, vault=vault)
    assert kinds_for(provider) == ["transfer_code.issued"]
    # requested → the losing provider
    transfer = transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=other_provider,
        number=vault.number,
        code=value,
        consent_reference="c",
    )
    assert kinds_for(provider)[-1] == "transfer.requested"
    # approved → the gaining provider; completed → both
    transfers.transfer_approve(actor=SYSTEM, provider=provider, transfer=transfer)
    assert kinds_for(other_provider) == ["transfer.approved", "transfer.completed"]
    assert kinds_for(provider)[-1] == "transfer.completed"
    body = Message.objects.filter(kind="transfer.completed").first().payload
    assert body["transfer"] == str(transfer.pk)
    assert body["state"] == "client_approved"
    assert value not in json.dumps(list(Message.objects.values_list("payload", flat=True)))


def test_rejected_and_cancelled_are_told_to_the_other_side(
    clock, provider, other_provider, vault, holder_code
):
    first = transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=other_provider,
        number=vault.number,
        code=holder_code,
        consent_reference="c",
    )
    transfers.transfer_reject(actor=SYSTEM, provider=provider, transfer=first, reason="fraud")
    assert kinds_for(other_provider) == ["transfer.rejected"]
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=provider, vault=vault)
    second = transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=other_provider,
        number=vault.number,
        code=value,
        consent_reference="c",
    )
    transfers.transfer_cancel(actor=SYSTEM, provider=other_provider, transfer=second)
    assert kinds_for(provider)[-1] == "transfer.cancelled"


def test_a_refused_request_queues_nothing(provider, other_provider, vault, holder_code):
    before = Message.objects.count()
    with pytest.raises(DomainError):
        transfers.transfer_request(
            actor=SYSTEM,
            gaining_provider=other_provider,
            number=vault.number,
            code=transfer_codes.generate(),
            consent_reference="c",
        )
    assert Message.objects.count() == before


def test_expiring_certificates_are_announced_once(clock, provider):
    # given a certificate that expires in 20 days, and the provider's long-lived one
    soon = CertificateFactory(provider=provider, not_after=clock.now + timedelta(days=20))
    out = StringIO()

    # when the daily command runs twice
    call_command("notify_expiring_certificates", stdout=out)
    call_command("notify_expiring_certificates", stdout=out)

    # then one message tells the provider, once
    message = Message.objects.get(kind=MessageKind.CERTIFICATE_EXPIRING)
    assert message.provider_id == provider.pk
    assert message.payload["certificate"] == str(soon.pk)
    assert "Queued 1" in out.getvalue() and "Queued 0" in out.getvalue()


# --- The poll queue -------------------------------------------------------------------------------


def test_the_queue_answers_oldest_first_and_only_ones_own(
    pending, losing_client, gaining_client, provider, holder_code
):
    response = losing_client.get(MESSAGES)
    assert response.status_code == 200
    items = response.json()["results"]
    assert [m["kind"] for m in items] == ["transfer_code.issued", "transfer.requested"]
    assert items[0]["id"] < items[1]["id"]
    assert items[1]["data"]["transfer"] == str(pending.pk)
    assert gaining_client.get(MESSAGES).json()["results"] == []


def test_ack_removes_a_message_from_the_queue_and_is_idempotent(pending, losing_client):
    first = losing_client.get(MESSAGES).json()["results"][0]

    response = losing_client.post(f"{MESSAGES}/{first['id']}/ack")

    assert response.status_code == 200
    acked_at = response.json()["acked_at"]
    assert acked_at is not None
    ids = [m["id"] for m in losing_client.get(MESSAGES).json()["results"]]
    assert first["id"] not in ids
    again = losing_client.post(f"{MESSAGES}/{first['id']}/ack")
    assert (again.status_code, again.json()["acked_at"]) == (200, acked_at)


def test_another_providers_message_is_404(pending, losing_client, gaining_client):
    first = losing_client.get(MESSAGES).json()["results"][0]
    response = gaining_client.post(f"{MESSAGES}/{first['id']}/ack")
    assert response.status_code == 404
    assert response.json()["code"] == "message_not_found"
    assert Message.objects.get(pk=first["id"]).acked_at is None


def test_issuers_have_no_provider_queue(lookup_client):
    assert lookup_client.get(MESSAGES).json()["code"] == "insufficient_scope"


# --- Webhooks -------------------------------------------------------------------------------------


def test_register_a_webhook_shows_its_secret_once(losing_client):
    assert losing_client.get(WEBHOOK).json()["code"] == "webhook_not_found"

    response = losing_client.post(WEBHOOK, {"url": "https://hooks.example/vr"}, format="json")

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    assert response.json()["secret"].startswith("whsec_")
    shown = losing_client.get(WEBHOOK).json()
    assert shown["url"] == "https://hooks.example/vr"
    assert "secret" not in shown


def test_a_webhook_must_be_https(losing_client):
    response = losing_client.post(WEBHOOK, {"url": "http://hooks.example/vr"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_remove_a_webhook(losing_client):
    losing_client.post(WEBHOOK, {"url": "https://hooks.example/vr"}, format="json")
    assert losing_client.post(f"{WEBHOOK}/remove").status_code == 200
    assert losing_client.post(f"{WEBHOOK}/remove").json()["code"] == "webhook_not_found"


def test_the_real_sender_refuses_plain_http():
    with pytest.raises(ValueError, match="https"):
        webhooks.http_sender("http://hooks.example/", b"{}", {}, 1.0)


def test_a_message_survives_a_failing_endpoint_and_is_delivered_once_it_answers(
    clock, provider, other_provider, vault
):
    # given the losing provider's webhook, and a transfer request queued for it
    _hook, secret = messages.webhook_register(
        actor=SYSTEM, provider=provider, url="https://hooks.provider.example/vr"
    )
    _code, value = transfers.transfer_code_issue(actor=SYSTEM, provider=provider, vault=vault)
    transfers.transfer_request(
        actor=SYSTEM,
        gaining_provider=other_provider,
        number=vault.number,
        code=value,
        consent_reference="c",
    )
    issued = Message.objects.get(kind="transfer_code.issued")
    messages.message_ack(actor=SYSTEM, provider=provider, message_id=issued.pk)
    message = Message.objects.get(kind="transfer.requested")
    endpoint = FakeEndpoint(503, OSError("connection refused"), 200)

    # when the endpoint is down, the message stays queued and is retried after a backoff
    report = webhooks.deliver_webhooks(sender=endpoint)
    assert (report.delivered, report.failed) == (0, 1)
    message.refresh_from_db()
    assert (message.delivery_state, message.delivery_attempts) == (DeliveryState.PENDING, 1)
    assert message.next_delivery_at == clock.now + timedelta(seconds=30)
    assert message.last_delivery_error == "HTTP 503"
    assert webhooks.deliver_webhooks(sender=endpoint).attempted == 0  # not due yet

    clock.advance(seconds=30)
    webhooks.deliver_webhooks(sender=endpoint)  # refused again: the wait doubles
    message.refresh_from_db()
    assert message.delivery_attempts == 2
    assert message.next_delivery_at == clock.now + timedelta(seconds=60)
    assert message.last_delivery_error.startswith("OSError")

    # when it answers again
    clock.advance(seconds=60)
    report = webhooks.deliver_webhooks(sender=endpoint)

    # then the message is delivered, signed, with its id to deduplicate
    assert report.delivered == 1
    message.refresh_from_db()
    assert (message.delivery_state, message.delivered_at) == (DeliveryState.DELIVERED, clock.now)
    assert len(endpoint.requests) == 3
    url, body, headers = endpoint.requests[-1]
    assert url == "https://hooks.provider.example/vr"
    assert headers["webhook-id"] == str(message.pk)
    signed = f"{message.pk}.{headers['webhook-timestamp']}.".encode() + body
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert json.loads(body)["kind"] == "transfer.requested"
    # and it is not sent again, but stays in the poll queue until acknowledged
    requests = len(endpoint.requests)
    clock.advance(hours=1)
    assert webhooks.deliver_webhooks(sender=endpoint).attempted == 0
    assert len(endpoint.requests) == requests
    assert Message.objects.get(pk=message.pk).acked_at is None


def test_delivery_gives_up_after_the_last_attempt_and_resumes_on_a_new_webhook(
    clock, settings, provider, vault, holder_code
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    messages.webhook_register(actor=SYSTEM, provider=provider, url="https://a.example/")
    down = FakeEndpoint(500)
    webhooks.deliver_webhooks(sender=down)
    clock.advance(minutes=1)
    report = webhooks.deliver_webhooks(sender=down)
    assert report.abandoned == 1
    message = Message.objects.get()
    assert message.delivery_state == DeliveryState.ABANDONED

    # when the provider registers a working endpoint, the message is tried again there
    messages.webhook_register(actor=SYSTEM, provider=provider, url="https://b.example/")
    up = FakeEndpoint(204)
    assert webhooks.deliver_webhooks(sender=up).delivered == 1
    assert up.requests[0][0] == "https://b.example/"


def test_acknowledged_and_webhookless_messages_are_not_pushed(
    clock, provider, other_provider, vault, holder_code
):
    # given a message acknowledged through the poll queue, and a provider without webhook
    message = Message.objects.get(provider=provider)
    messages.message_ack(actor=SYSTEM, provider=provider, message_id=message.pk)
    messages.webhook_register(actor=SYSTEM, provider=provider, url="https://a.example/")
    # (other_provider has no webhook; a code issued for its own vault queued it a message, due now)
    other_vault = VaultFactory(provider=other_provider)
    transfers.transfer_code_issue(actor=SYSTEM, provider=other_provider, vault=other_vault)
    endpoint = FakeEndpoint(200)
    # then nothing is sent
    assert webhooks.deliver_webhooks(sender=endpoint).attempted == 0
    assert endpoint.requests == []


def test_the_backoff_doubles_up_to_its_cap(settings):
    settings.WEBHOOK_BACKOFF_BASE_SECONDS = 30
    settings.WEBHOOK_BACKOFF_MAX_SECONDS = 3600
    waits = [webhooks.backoff(n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_deliver_webhooks_command_reports_progress(
    clock, provider, vault, holder_code, monkeypatch
):
    messages.webhook_register(actor=SYSTEM, provider=provider, url="https://a.example/")
    endpoint = FakeEndpoint(200)
    monkeypatch.setattr(webhooks, "http_sender", endpoint)
    out = StringIO()
    call_command("deliver_webhooks", stdout=out)
    assert "Delivered 1" in out.getvalue()
    assert len(endpoint.requests) == 1
