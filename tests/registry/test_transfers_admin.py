"""Portability in the federation admin: all transfers, cancel or approve with a reason, locks."""

from __future__ import annotations

import pytest

from registry.models import AuditEvent, Message, Transfer, TransferCode, Vault
from registry.services import transfers
from registry.services.common import Actor
from tests.registry.conftest import run_action

pytestmark = pytest.mark.django_db


def test_the_admin_lists_every_transfer(otp_client, pending):
    page = otp_client.get("/admin/registry/transfer/")
    assert page.status_code == 200
    assert str(pending.vault) in page.content.decode()
    assert otp_client.get(f"/admin/registry/transfer/{pending.pk}/change/").status_code == 200


def test_the_admin_never_shows_a_code_or_its_hash(otp_client, holder_code):
    code = TransferCode.objects.get()
    page = otp_client.get(f"/admin/registry/transfercode/{code.pk}/change/").content.decode()
    listing = otp_client.get("/admin/registry/transfercode/").content.decode()
    for shown in (page, listing):
        assert holder_code not in shown
        assert code.code_hash not in shown
        assert "code_hash" not in shown and "salt" not in shown


def test_cancel_asks_for_a_reason_then_cancels(otp_client, pending, provider, other_provider):
    # when the admin picks the action, a form asks for a reason and nothing changes
    page = run_action(otp_client, "transfer", "server_cancel", [pending.pk])
    assert 'name="reason"' in page.content.decode()
    assert Transfer.objects.get().state == "pending"

    # when they confirm with one
    run_action(
        otp_client, "transfer", "server_cancel", [pending.pk], apply="1", reason="dispute #7"
    )

    # then the transfer is server_cancelled, the reason kept, both sides told
    transfer = Transfer.objects.get()
    assert (transfer.state, transfer.outcome_reason, transfer.outcome_note) == (
        "server_cancelled",
        "admin",
        "dispute #7",
    )
    event = AuditEvent.objects.get(action="transfer:server_cancelled")
    assert event.actor == "user:root"
    assert event.data["note"] == "dispute #7"
    assert set(
        Message.objects.filter(kind="transfer.cancelled").values_list("provider", flat=True)
    ) == {provider.pk, other_provider.pk}


def test_approve_settles_a_dispute_for_the_gaining_side(otp_client, pending, other_provider):
    run_action(otp_client, "transfer", "server_approve", [pending.pk], apply="1", reason="ok")
    transfer = Transfer.objects.get()
    assert transfer.state == "server_approved"
    assert Vault.objects.get(pk=transfer.vault_id).provider_id == other_provider.pk


def test_cancelling_an_ended_transfer_is_reported_and_changes_nothing(otp_client, pending):
    transfers.transfer_cancel(
        actor=Actor.system("tests"), provider=pending.gaining_provider, transfer=pending
    )
    response = run_action(
        otp_client, "transfer", "server_cancel", [pending.pk], apply="1", reason="late"
    )
    assert response.status_code == 302
    assert Transfer.objects.get().state == "client_cancelled"


def test_registry_lock_is_set_and_cleared_with_a_reason(otp_client, pending):
    vault = Vault.objects.get(pk=pending.vault_id)
    # setting asks for a reason first
    page = run_action(otp_client, "vault", "set_registry_lock", [vault.pk])
    assert 'name="reason"' in page.content.decode()
    assert Vault.objects.get(pk=vault.pk).registry_lock is False

    run_action(otp_client, "vault", "set_registry_lock", [vault.pk], apply="1", reason="fraud")

    vault.refresh_from_db()
    assert vault.registry_lock is True
    assert Transfer.objects.get().state == "server_cancelled"  # the lock ended the transfer
    assert AuditEvent.objects.get(action="vault:registry_lock").data == {"reason": "fraud"}

    run_action(otp_client, "vault", "clear_registry_lock", [vault.pk], apply="1", reason="done")

    vault.refresh_from_db()
    assert vault.registry_lock is False
    assert AuditEvent.objects.filter(action="vault:registry_lock_cleared").exists()


def test_locking_a_locked_vault_is_reported(otp_client, vault):
    Vault.objects.filter(pk=vault.pk).update(registry_lock=True)
    run_action(otp_client, "vault", "set_registry_lock", [vault.pk], apply="1", reason="again")
    assert not AuditEvent.objects.filter(action="vault:registry_lock").exists()


def test_messages_and_webhooks_are_listed_without_secrets(otp_client, pending, other_provider):
    from registry.services import messages

    _hook, secret = messages.webhook_register(
        actor=Actor.system("tests"), provider=other_provider, url="https://hooks.example/in"
    )
    assert otp_client.get("/admin/registry/message/").status_code == 200
    page = otp_client.get("/admin/registry/webhook/")
    assert page.status_code == 200
    hook = other_provider.webhooks.get()
    change = otp_client.get(f"/admin/registry/webhook/{hook.pk}/change/").content.decode()
    assert secret not in page.content.decode() and secret not in change


def test_transfers_are_searched_by_number_in_any_form_or_consent_reference(otp_client, pending):
    # given a pending transfer and the number as people paste it
    display = str(pending.vault)
    for term in (display, display.lower().replace(" ", "-"), pending.vault_id[:8], "consent-42"):
        # when the admin searches for it
        page = otp_client.get("/admin/registry/transfer/", {"q": term})
        # then the page answers with the transfer
        assert page.status_code == 200, term
        assert list(page.context["cl"].result_list) == [pending], term
    # and a term matching nothing answers an empty list, not an error
    page = otp_client.get("/admin/registry/transfer/", {"q": "FR00 ZZZZ"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == []
