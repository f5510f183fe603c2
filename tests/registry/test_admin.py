"""The federation admin: TOTP second factor, and actions that go through the services."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django_otp.oath import totp
from rest_framework.test import APIClient

from registry.models import ApiToken, AuditEvent, OrganisationStatus, Provider, Vault
from registry.services import organisations
from tests.factories import ProviderFactory
from tests.registry.conftest import PASSWORD, run_action
from tests.registry.helpers import changes

pytestmark = pytest.mark.django_db


def current_code(user) -> str:
    device = user.totpdevice_set.get()
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_password_alone_does_not_open_the_admin(client, admin_user):
    # when the admin logs in with the right password but no TOTP code
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    # then the login page answers again and the admin stays closed
    assert response.status_code == 200
    assert "otp_token" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_password_and_a_wrong_code_do_not_open_the_admin(client, admin_user):
    wrong = f"{(int(current_code(admin_user)) + 1) % 10**6:06d}"
    client.post("/admin/login/", {"username": "root", "password": PASSWORD, "otp_token": wrong})
    assert client.get("/admin/").status_code == 302


def test_password_and_totp_code_open_the_admin(client, admin_user):
    response = client.post(
        "/admin/login/",
        {"username": "root", "password": PASSWORD, "otp_token": current_code(admin_user)},
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_logged_in_session_without_otp_is_refused(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/registry/provider/").status_code == 302


def test_approve_asks_for_a_reason_then_calls_the_service(otp_client, admin_user):
    # given an application
    provider = ProviderFactory(status=OrganisationStatus.APPLIED)
    # when the admin picks "approve" without a reason, a form asks for one and nothing changes
    page = run_action(otp_client, "provider", "make_active", [provider.pk])
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()
    provider.refresh_from_db()
    assert provider.status == OrganisationStatus.APPLIED
    # when they confirm with a reason
    run_action(otp_client, "provider", "make_active", [provider.pk], apply="1", reason="KYC ok")
    # then the provider is active, with its history, log entry and audit event
    provider.refresh_from_db()
    assert provider.status == OrganisationStatus.ACTIVE
    change = provider.status_changes.last()
    assert (change.to_status, change.reason, change.actor_user) == ("active", "KYC ok", admin_user)
    assert changes().filter(kind="provider.status").count() == 1
    assert AuditEvent.objects.filter(action="status:active", actor="user:root").exists()


def test_an_invalid_transition_is_reported_and_changes_nothing(otp_client):
    provider = ProviderFactory(status=OrganisationStatus.REJECTED)
    response = run_action(
        otp_client, "provider", "make_active", [provider.pk], apply="1", reason="oops"
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.status == OrganisationStatus.REJECTED
    assert not changes().exists()


def test_create_token_redirects_to_a_page_that_shows_the_value_once(otp_client):
    # given an active provider
    provider = ProviderFactory()
    # when the admin creates a token
    response = run_action(
        otp_client,
        "provider",
        "create_token",
        [provider.pk],
        apply="1",
        name="ops",
        expires_in_days="30",
    )
    # then the POST answers a redirect (POST/redirect/GET) to the page that shows it
    assert response.status_code == 302
    page = otp_client.get(response["Location"])
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    token = ApiToken.objects.get(provider=provider)
    value = page.context["created"][0]["value"]
    assert value.startswith(token.prefix)
    html = page.content.decode()
    assert f'<code class="secret" id="token-1">{value}</code>' in html
    assert 'data-copy="token-1"' in html  # the copy button
    assert value not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    assert api.get("/api/v1/provider/endpoints").status_code == 200

    # when the page is reloaded
    again = otp_client.get(response["Location"])
    # then the value is gone and no second token exists
    assert again.status_code == 410
    assert value not in again.content.decode()
    assert "no-store" in again["Cache-Control"]
    assert ApiToken.objects.filter(provider=provider).count() == 1


def test_server_hold_asks_for_a_reason_then_holds_the_vault(otp_client, vault):
    page = run_action(otp_client, "vault", "server_hold", [vault.pk])
    assert page.status_code == 200
    vault.refresh_from_db()
    assert vault.server_hold is False

    run_action(otp_client, "vault", "server_hold", [vault.pk], apply="1", reason="court order")

    vault.refresh_from_db()
    assert vault.server_hold is True
    assert changes().filter(kind="vault.held").count() == 1
    event = AuditEvent.objects.get(action="vault:server_hold")
    assert (event.actor, event.data) == ("user:root", {"reason": "court order"})


def test_records_cannot_be_edited_or_deleted_in_the_admin(otp_client, vault, actor):
    provider = Provider.objects.get()
    organisations.provider_set_status(
        actor=actor, provider=provider, status="suspended", reason="x"
    )
    entry = changes().get()
    # the log entry and the vault can be viewed, not changed nor deleted
    assert otp_client.get(f"/admin/registry/logentry/{entry.pk}/change/").status_code == 200
    assert otp_client.post(f"/admin/registry/logentry/{entry.pk}/delete/").status_code == 403
    assert otp_client.post(f"/admin/registry/vault/{vault.pk}/delete/").status_code == 403
    assert otp_client.get("/admin/registry/provider/add/").status_code == 403
    assert changes().count() == 1
    assert Vault.objects.filter(pk=vault.pk).exists()


def test_add_totp_device_enrols_an_admin_whose_codes_open_the_admin(client):
    # given a new superuser without a device
    User.objects.create_superuser("alice", "alice@registry.example", PASSWORD)
    out = StringIO()
    # when the operator enrols a device
    call_command("add_totp_device", "alice", stdout=out)
    # then its URI is printed once, and its codes open the admin
    assert "otpauth://totp/" in out.getvalue()
    alice = User.objects.get(username="alice")
    client.post(
        "/admin/login/",
        {"username": "alice", "password": PASSWORD, "otp_token": current_code(alice)},
    )
    assert client.get("/admin/").status_code == 200
    with pytest.raises(CommandError):
        call_command("add_totp_device", "alice", stdout=StringIO())
