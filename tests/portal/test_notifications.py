"""The provider's messages and webhook pages: the API's services behind them, roles, the
secret shown once, field-level refusals in French."""

from __future__ import annotations

import pytest

from registry import numbers
from registry.models import AuditEvent, Message, Webhook
from registry.services import transfers
from registry.services.common import Actor
from tests.factories import VaultFactory
from tests.portal.conftest import make_member, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def requested(provider, other_provider):
    """A transfer of one of ``provider``'s vaults, requested by ``other_provider``: the losing
    provider gets a ``transfer.requested`` message (and a ``transfer_code.issued`` one)."""
    vault = VaultFactory(provider=provider)
    system = Actor.system("tests")
    _code, value = transfers.transfer_code_issue(actor=system, provider=provider, vault=vault)
    return transfers.transfer_request(
        actor=system,
        gaining_provider=other_provider,
        number=vault.number,
        code=value,
        consent_reference="consent-1",
    )


def test_the_inbox_lists_unread_messages_with_their_vault_and_transfer(provider, requested, viewer):
    page = signed_in(viewer).get("/portal/messages/").content.decode()
    assert "le transfert d&#x27;un de vos coffres est demandé" in page
    assert "un code de transfert a été émis" in page
    assert numbers.format_display(requested.vault_id) in page
    assert f"/portal/transfers/{requested.pk}/" in page
    assert "2 messages non lus" in page
    # a viewer reads but has no button to acknowledge
    assert "Marquer comme lu" not in page


def test_an_operator_marks_a_message_read_through_the_service(provider, requested, operator):
    message = Message.objects.get(provider=provider, kind="transfer.requested")
    client = signed_in(operator)
    answer = client.post(f"/portal/messages/{message.pk}/ack/")
    assert answer.status_code == 302
    message.refresh_from_db()
    assert message.acked_at is not None
    event = AuditEvent.objects.get(action="message:acked", target_id=str(message.pk))
    assert event.actor == f"user:{operator.username} provider:{provider.pk}"
    # it left the unread list, and the API's queue
    page = client.get("/portal/messages/").content.decode()
    assert f'id="message-{message.pk}"' not in page
    assert f'id="message-{message.pk}"' in client.get("/portal/messages/?show=all").content.decode()


def test_mark_all_as_read(provider, requested, operator):
    client = signed_in(operator)
    client.post("/portal/messages/ack-all/")
    assert not Message.objects.filter(provider=provider, acked_at__isnull=True).exists()
    page = client.get("/portal/messages/").content.decode()
    assert "0 message non lu" in page and "Aucun message." in page


def test_a_viewer_cannot_acknowledge(provider, requested, viewer):
    message = Message.objects.filter(provider=provider).first()
    assert signed_in(viewer).post(f"/portal/messages/{message.pk}/ack/").status_code == 403
    assert signed_in(viewer).post("/portal/messages/ack-all/").status_code == 403
    message.refresh_from_db()
    assert message.acked_at is None


def test_another_providers_message_is_not_found(provider, other_provider, requested):
    theirs = make_member(other_provider, "operator")
    message = Message.objects.filter(provider=provider).first()
    assert signed_in(theirs).post(f"/portal/messages/{message.pk}/ack/").status_code == 404
    assert f'id="message-{message.pk}"' not in (
        signed_in(theirs).get("/portal/messages/?show=all").content.decode()
    )


def test_the_start_page_counts_unread_messages(provider, requested, viewer):
    page = signed_in(viewer).get("/portal/").content.decode()
    assert "2 messages non lus" in page


def test_a_webhook_secret_is_shown_once_on_a_page_never_cached(provider, operator):
    client = signed_in(operator)
    # when an operator registers a webhook
    answer = client.post("/portal/webhook/", {"url": "https://hooks.coffre.example/registry"})
    assert answer.status_code == 302  # POST/redirect/GET: a reload registers nothing
    page = client.get("/portal/webhook/")
    # then the secret is on the page once, with a copy button, never cached
    assert "no-store" in page["Cache-Control"]
    webhook = Webhook.objects.live().get(provider=provider)
    shown = page.content.decode()
    assert f'<code class="secret" id="webhook-secret">{webhook.secret}</code>' in shown
    assert 'data-copy="webhook-secret"' in shown
    assert "https://hooks.coffre.example/registry" in shown
    again = client.get("/portal/webhook/").content.decode()
    assert webhook.secret not in again and "https://hooks.coffre.example/registry" in again
    # and it is audited with the person's name
    event = AuditEvent.objects.get(action="webhook:registered")
    assert event.actor == f"user:{operator.username} provider:{provider.pk}"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://hooks.coffre.example/registry", "doit commencer par https://"),
        ("https://bob:pw@hooks.coffre.example/", "Retirez le nom d&#x27;utilisateur"),
        ("https://localhost/hook", "réseau privé ou réservé"),
        ("", "Ce champ est obligatoire."),
    ],
)
def test_a_refused_webhook_address_is_explained_on_the_field(provider, operator, url, error):
    answer = signed_in(operator).post("/portal/webhook/", {"url": url})
    assert answer.status_code == 200
    page = answer.content.decode()
    assert error in page
    assert 'aria-invalid="true"' in page or "errorlist" in page
    assert not Webhook.objects.filter(provider=provider).exists()


def test_replacing_and_removing_the_webhook(provider, operator):
    client = signed_in(operator)
    client.post("/portal/webhook/", {"url": "https://one.coffre.example/"})
    client.post("/portal/webhook/", {"url": "https://two.coffre.example/"})
    assert Webhook.objects.live().get(provider=provider).url == "https://two.coffre.example/"
    client.post("/portal/webhook/remove/")
    assert not Webhook.objects.live().filter(provider=provider).exists()
    assert "Aucun webhook" in client.get("/portal/webhook/").content.decode()
    client.post("/portal/webhook/remove/")  # nothing to remove: said, not a 500
    assert "Vous n&#x27;avez pas de webhook." in client.get("/portal/webhook/").content.decode()


def test_a_viewer_sees_the_webhook_but_cannot_change_it(provider, viewer):
    client = signed_in(viewer)
    page = client.get("/portal/webhook/").content.decode()
    assert "Aucun webhook" in page and 'name="url"' not in page
    assert client.post("/portal/webhook/", {"url": "https://x.coffre.example/"}).status_code == 403
    assert client.post("/portal/webhook/remove/").status_code == 403
    assert not Webhook.objects.filter(provider=provider).exists()


def test_an_issuer_member_has_no_webhook_page(issuer):
    client = signed_in(make_member(issuer))
    assert client.get("/portal/webhook/").status_code == 403
    assert client.get("/portal/messages/").status_code == 403


def test_the_pages_speak_english_too(provider, requested, operator):
    client = signed_in(operator)
    client.cookies["django_language"] = "en"
    assert "2 unread messages." in client.get("/portal/messages/").content.decode()
    answer = client.post("/portal/webhook/", {"url": "http://x.coffre.example/"})
    assert "The address must start with https://." in answer.content.decode()
