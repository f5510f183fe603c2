"""The admin's destructive and mass-impact actions: a confirmation page that states the impact
and asks a reason, nothing changed before confirming, "select all" over 10,000 records."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from registry.models import ApiToken, AuditEvent, Endpoint, Provider, Transfer, Vault
from registry.services import vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.factories import EndpointFactory, VaultFactory, deliverable_provider, make_token
from tests.registry.conftest import run_action
from tests.registry.helpers import changes

pytestmark = pytest.mark.django_db


def impact_of(page) -> list[str]:
    return [str(line) for line in page.context["impact"]]


def test_server_hold_states_how_many_vaults_become_undeliverable(otp_client, provider):
    # given three vaults, one of them already held
    chosen = [VaultFactory(provider=provider) for _ in range(3)]
    vaults.vault_hold(actor=Actor.system("t"), vault=chosen[0], kind=HoldKind.SERVER)
    before = changes().count()

    # when the admin picks "server hold" for the three
    page = run_action(otp_client, "vault", "server_hold", [v.pk for v in chosen])

    # then a page says what it will do, asks a reason, and nothing changed yet
    assert page.status_code == 200
    assert impact_of(page) == ["2 vaults deliverable now become undeliverable."]
    assert page.context["count"] == 3
    assert 'name="reason"' in page.content.decode()
    assert Vault.objects.filter(server_hold=True).count() == 1
    assert changes().count() == before


def test_a_confirmation_without_a_reason_changes_nothing(otp_client, vault):
    page = run_action(otp_client, "vault", "close", [vault.pk], apply="1", reason="  ")
    assert page.status_code == 200
    assert page.context["form"].errors["reason"]
    vault.refresh_from_db()
    assert vault.status == "active"


def test_close_confirms_then_closes_with_the_reason_audited(otp_client, pending):
    # given a vault with a pending transfer
    vault = Vault.objects.get(pk=pending.vault_id)
    page = run_action(otp_client, "vault", "close", [vault.pk])
    assert impact_of(page) == [
        "1 vault deliverable now becomes undeliverable.",
        "Closing cannot be undone: the numbers answer 410 Gone and are never reused.",
        "1 pending transfer ends server_cancelled.",
    ]
    # when the admin confirms with a reason
    response = run_action(otp_client, "vault", "close", [vault.pk], apply="1", reason="fraud")
    # then the vault is closed, its transfer cancelled, the reason audited
    assert response.status_code == 302
    vault.refresh_from_db()
    assert vault.status == "closed"
    assert Transfer.objects.get().state == "server_cancelled"
    event = AuditEvent.objects.get(action="vault:closed")
    assert (event.actor, event.data, event.log_sequence) == (
        "user:root",
        {"reason": "fraud"},
        vault.last_log_index,
    )


def test_a_selection_that_changed_since_the_page_is_shown_again(otp_client, provider):
    # given the admin saw one vault matching a search, and another one matches now
    first = VaultFactory(provider=provider)
    second = VaultFactory(provider=provider)
    response = run_action(
        otp_client,
        "vault",
        "server_hold",
        [first.pk],
        select_across="1",
        apply="1",
        reason="x",
        expected="1",
    )
    # then nothing is held and the page says so, with the new count
    assert response.status_code == 200
    assert response.context["count"] == 2
    assert "selection changed" in str(response.context["form"].non_field_errors())
    assert not Vault.objects.filter(pk__in=[first.pk, second.pk], server_hold=True).exists()


def test_deactivating_the_last_endpoint_states_the_vaults_it_strands(otp_client, provider):
    # given a provider with one endpoint and two vaults, another with two endpoints
    VaultFactory(provider=provider)
    VaultFactory(provider=provider)
    spare = deliverable_provider()
    EndpointFactory(provider=spare)
    VaultFactory(provider=spare)
    only = Endpoint.objects.get(provider=provider)
    one_of_two = Endpoint.objects.filter(provider=spare).first()

    page = run_action(otp_client, "endpoint", "deactivate", [only.pk, one_of_two.pk])

    assert impact_of(page) == [
        "2 vaults deliverable now become undeliverable (their provider has no other endpoint)."
    ]
    assert Endpoint.objects.filter(deactivated_at__isnull=False).count() == 0
    run_action(
        otp_client, "endpoint", "deactivate", [only.pk], apply="1", reason="compromised host"
    )
    only.refresh_from_db()
    assert only.deactivated_at is not None
    event = AuditEvent.objects.get(action="endpoint:deactivated")
    assert event.data == {"reason": "compromised host"}


def test_suspending_a_provider_states_its_vaults(otp_client, provider):
    VaultFactory(provider=provider)
    page = run_action(otp_client, "provider", "make_suspended", [provider.pk])
    assert impact_of(page) == [
        "1 organisation moves to suspended.",
        "1 vault deliverable now becomes undeliverable.",
    ]
    provider.refresh_from_db()
    assert provider.status == "active"


def test_revoking_a_token_asks_a_reason_and_names_owners_left_without_one(otp_client, provider):
    token, _value = make_token(provider)
    page = run_action(otp_client, "apitoken", "revoke", [token.pk])
    assert impact_of(page) == [
        "1 provider or issuer is left without a live token: its API calls answer 401."
    ]
    assert ApiToken.objects.get().revoked_at is None
    run_action(otp_client, "apitoken", "revoke", [token.pk], apply="1", reason="leaked in a log")
    assert ApiToken.objects.get().revoked_at is not None
    assert AuditEvent.objects.get(action="token:revoked").data == {"reason": "leaked in a log"}


def test_approving_a_transfer_states_its_impact(otp_client, pending):
    page = run_action(otp_client, "transfer", "server_approve", [pending.pk])
    assert impact_of(page) == [
        "1 pending transfer ends; its vault will route to the gaining provider from now on.",
        "0 vaults deliverable now become undeliverable (their gaining provider cannot receive "
        "documents).",
    ]
    assert Transfer.objects.get().state == "pending"


def test_more_than_the_ceiling_is_refused_with_a_message(otp_client, provider, settings):
    settings.VAULT_ADMIN_BULK_MAX = 2
    chosen = [VaultFactory(provider=provider) for _ in range(3)]
    response = run_action(
        otp_client, "vault", "server_hold", [chosen[0].pk], select_across="1", follow=True
    )
    assert "at most 2" in response.content.decode()
    assert not Vault.objects.filter(server_hold=True).exists()


def test_select_all_10000_vaults_acts_on_the_query(otp_client, provider, monkeypatch):
    # given 10,000 vaults of one provider, and a few of another that the filter leaves out
    from registry.services import common

    monkeypatch.setattr(common, "_schedule_checkpoint", lambda: None)  # not what is tested
    vaults.vault_allocate_many(actor=Actor.system("t"), provider=provider, count=10_000)
    other = VaultFactory(provider=deliverable_provider())
    query = f"?provider__id__exact={provider.pk}"
    listing = otp_client.get(f"/admin/registry/vault/{query}")
    page_ids = [v.pk for v in listing.context["cl"].result_list]
    assert len(page_ids) == 100

    # when the admin ticks the page, "select all", and picks server hold
    page = run_action(otp_client, "vault", "server_hold", page_ids, query=query, select_across="1")

    # then the confirmation counts the whole query and posts back the query, not 10,000 ids
    assert page.status_code == 200
    assert page.context["count"] == 10_000
    assert impact_of(page) == ["10000 vaults deliverable now become undeliverable."]
    html = page.content.decode()
    assert html.count(f'name="{ACTION_CHECKBOX_NAME}"') == 100
    assert f'action="/admin/registry/vault/{query}"' in html
    assert Vault.objects.filter(server_hold=True).count() == 0

    # when they confirm with a reason
    response = run_action(
        otp_client,
        "vault",
        "server_hold",
        page_ids,
        query=query,
        select_across="1",
        apply="1",
        reason="provider under investigation",
        expected="10000",
    )

    # then every vault of the query is held, each with its log entry and audit event
    assert response.status_code == 302
    assert Vault.objects.filter(provider=provider, server_hold=True).count() == 10_000
    assert Vault.objects.get(pk=other.pk).server_hold is False
    assert changes().filter(kind="vault.held").count() == 10_000
    assert AuditEvent.objects.filter(action="vault:server_hold").count() == 10_000
    assert Provider.objects.get(pk=provider.pk).status == "active"
