"""The admin as an operations console: the start page's work queue, records linked to each
other, a vault's proven deliverability and log history, log entries found by subject."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registry.models import Certificate, LogEntry, OrganisationStatus
from registry.services import vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind
from tests.factories import ProviderFactory, VaultFactory, deliverable_provider

pytestmark = pytest.mark.django_db


def test_the_start_page_shows_the_work_waiting(otp_client, pending, provider, checkpoint):
    # given an application, a transfer due soon, a certificate expiring, a held vault
    ProviderFactory(status=OrganisationStatus.APPLIED)
    Certificate.objects.filter(provider=provider).update(
        not_after=timezone.now() + timedelta(days=10)
    )
    held = VaultFactory(provider=provider)
    vaults.vault_hold(actor=Actor.system("t"), vault=held, kind=HoldKind.SERVER)
    stranded = deliverable_provider()
    VaultFactory(provider=stranded)
    stranded.endpoints.update(deactivated_at=timezone.now())
    pending.deadline = timezone.now() + timedelta(hours=2)
    pending.save(update_fields=["deadline"])

    page = otp_client.get("/admin/")

    assert page.status_code == 200
    queue = page.context["queue"]
    assert queue["provider_applications"] == 1
    assert (queue["transfers_due"], queue["transfers_pending"]) == (1, 1)
    assert queue["certificates_expiring"] == 1
    assert queue["undeliverable"] == 2
    assert queue["undeliverable_by_reason"] == {"hold": 1, "no_endpoint": 1}
    html = page.content.decode()
    assert "/admin/registry/provider/?status__exact=applied" in html
    assert "/admin/registry/transfer/?state__exact=pending" in html
    assert page.context["checkpoint"].size >= checkpoint.size
    assert 'id="checkpoint">log size' in html


def test_a_provider_links_to_its_records(otp_client, provider, vault):
    page = otp_client.get(f"/admin/registry/provider/{provider.pk}/change/").content.decode()
    mine = f"provider__id__exact={provider.pk}"
    for link in (
        f"/admin/registry/vault/?{mine}",
        f"/admin/registry/endpoint/?{mine}",
        f"/admin/registry/certificate/?{mine}",
        f"/admin/registry/apitoken/?{mine}",
        f"/admin/registry/auditevent/?target_type=provider&amp;target_id={provider.pk}",
        f"/admin/registry/logentry/?q={provider.pk}",
    ):
        assert link in page, link
    # and the links answer the provider's records
    listing = otp_client.get(f"/admin/registry/vault/?{mine}")
    assert list(listing.context["cl"].result_list) == [vault]


def test_a_vault_shows_its_proven_deliverability_and_history(otp_client, provider):
    vault = vaults.vault_allocate(actor=Actor.system("t"), provider=provider)
    vaults.vault_hold(actor=Actor.system("t"), vault=vault, kind=HoldKind.SERVER)

    page = otp_client.get(f"/admin/registry/vault/{vault.pk}/change/")

    html = page.content.decode()
    assert page.status_code == 200
    assert '<span class="deliverable-no">No</span>: hold' in html
    entries = LogEntry.objects.filter(kind__in=["vault.allocated", "vault.held"])
    for entry in entries:
        assert f"/admin/registry/logentry/{entry.sequence}/change/" in html
    assert "vault.held" in html and "vault.allocated" in html


def test_log_entries_are_found_by_vault_number_or_provider(otp_client, provider):
    vault = vaults.vault_allocate(actor=Actor.system("t"), provider=provider)
    other = vaults.vault_allocate(actor=Actor.system("t"), provider=deliverable_provider())

    by_number = otp_client.get("/admin/registry/logentry/", {"q": str(vault).lower()})
    assert by_number.status_code == 200
    found = {e.sequence for e in by_number.context["cl"].result_list}
    assert found == {vault.last_log_index}

    by_provider = otp_client.get("/admin/registry/logentry/", {"q": str(provider.pk)})
    assert by_provider.status_code == 200
    found = {e.sequence for e in by_provider.context["cl"].result_list}
    assert vault.last_log_index in found and other.last_log_index not in found
