"""Accounts: invitations, roles, login with password and TOTP, throttling, audit by name."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.errors import Conflict, Forbidden, NotFound
from registry.models import AuditEvent
from registry.portal.models import Membership, Role
from registry.services import accounts, vaults
from registry.services.common import Actor
from registry.services.transfers import vault_set_registry_lock
from tests.factories import VaultFactory
from tests.portal.conftest import PASSWORD, make_member

pytestmark = pytest.mark.django_db


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_an_administrator_invites_and_the_invitation_works_once(provider, administrator):
    # given an invitation by the organisation's administrator
    invitation, token = accounts.portal_user_invite(
        actor=Actor.for_user(administrator),
        organisation=provider,
        email="Bob@Org.example",
        role=Role.OPERATOR,
    )
    # then only its hash is kept
    assert token not in invitation.token_hash
    # when it is accepted
    user = accounts.portal_invitation_accept(
        token=token, username="bob", password=PASSWORD, full_name="Bob Martin"
    )
    # then bob is an operator of the provider, and it is audited with his name
    assert user.membership.provider == provider and user.membership.role == Role.OPERATOR
    assert AuditEvent.objects.filter(action="portal:joined", actor__startswith="user:bob ").exists()
    invited = AuditEvent.objects.get(action="portal:invited")
    assert invited.actor.startswith(f"user:{administrator.username} provider:{provider.pk}")
    # and the link does not work twice
    with pytest.raises(NotFound):
        accounts.portal_invitation_accept(token=token, username="eve", password=PASSWORD)


def test_operators_and_other_organisations_cannot_invite(provider, other_provider, operator):
    with pytest.raises(Forbidden):
        accounts.portal_user_invite(
            actor=Actor.for_user(operator),
            organisation=provider,
            email="x@y.example",
            role=Role.VIEWER,
        )
    stranger = make_member(other_provider, Role.ADMINISTRATOR)
    with pytest.raises(Forbidden):
        accounts.portal_user_invite(
            actor=Actor.for_user(stranger),
            organisation=provider,
            email="x@y.example",
            role=Role.VIEWER,
        )


def test_the_last_administrator_keeps_the_role(administrator):
    with pytest.raises(Conflict) as refused:
        accounts.portal_user_set_role(
            actor=Actor.for_user(administrator),
            membership=administrator.membership,
            role=Role.VIEWER,
        )
    assert refused.value.code == "last_administrator"


def test_a_member_never_has_a_federation_admins_rights(provider, administrator):
    # given a vault the registry locked
    vault = VaultFactory(provider=provider)
    admin = User.objects.create_superuser("root", "r@x.example", PASSWORD)
    vault_set_registry_lock(actor=Actor.for_user(admin), vault=vault, locked=True, reason="court")
    member = Actor.for_user(administrator)
    assert not member.is_federation_admin and Actor.for_user(admin).is_federation_admin
    # then the provider's person can neither hold nor unlock it
    with pytest.raises(Conflict):
        vaults.vault_hold(actor=member, vault=vault, kind=vaults.HoldKind.CLIENT)
    with pytest.raises(Forbidden):
        vault_set_registry_lock(actor=member, vault=vault, locked=False, reason="please")


def test_login_needs_password_and_code_and_never_says_which_was_wrong(administrator):
    device = administrator.totpdevice_set.get()
    client = Client()
    form = {"username": administrator.username, "password": PASSWORD, "code": "000000"}
    wrong_code = client.post("/portal/login/", form)
    wrong_password = client.post(
        "/portal/login/", {**form, "password": "nope", "code": code_for(device)}
    )
    for answer in (wrong_code, wrong_password):
        assert answer.status_code == 200
        assert "code est incorrect" in answer.content.decode()
    # when both are right (after django-otp's own wait following a wrong code)
    device.refresh_from_db()
    device.throttle_reset()
    answer = client.post("/portal/login/", {**form, "code": code_for(device)})
    assert answer.status_code == 302 and answer["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200


def test_a_recovery_code_replaces_the_app_once(administrator):
    codes = accounts.portal_recovery_codes_renew(user=administrator)
    form = {"username": administrator.username, "password": PASSWORD, "code": codes[0]}
    assert Client().post("/portal/login/", form).status_code == 302
    assert Client().post("/portal/login/", form).status_code == 200  # used up


def test_login_attempts_are_throttled(administrator):
    client = Client()
    form = {"username": administrator.username, "password": "wrong", "code": ""}
    for _ in range(5):
        client.post("/portal/login/", form)
    # then even the right password and code are refused for a while
    device = administrator.totpdevice_set.get()
    answer = client.post("/portal/login/", {**form, "password": PASSWORD, "code": code_for(device)})
    assert answer.status_code == 429
    assert "Trop de tentatives" in answer.content.decode()


def test_first_login_enrols_totp_and_shows_recovery_codes_once(provider, administrator):
    _invitation, token = accounts.portal_user_invite(
        actor=Actor.for_user(administrator),
        organisation=provider,
        email="c@org.example",
        role=Role.VIEWER,
    )
    client = Client()
    page = client.get(f"/portal/invitation/{token}/")
    assert page.status_code == 200
    answer = client.post(
        f"/portal/invitation/{token}/",
        {"full_name": "Chloé", "username": "chloe", "password": PASSWORD, "password2": PASSWORD},
    )
    assert answer["Location"] == "/portal/totp/"
    # the portal waits for the second factor
    assert client.get("/portal/")["Location"] == "/portal/totp/"
    enrol = client.get("/portal/totp/")
    assert "<svg" in enrol.content.decode()
    device = TOTPDevice.objects.get(user__username="chloe", confirmed=False)
    answer = client.post("/portal/totp/", {"code": code_for(device)})
    assert answer["Location"] == "/portal/recovery-codes/"
    codes = client.get("/portal/recovery-codes/")
    assert codes["Cache-Control"].startswith("max-age=0") and "no-store" in codes["Cache-Control"]
    assert codes.content.decode().count("<li>") >= 10
    assert "<li>" not in client.get("/portal/recovery-codes/").content.decode().split("codes")[-1]
    assert AuditEvent.objects.filter(action="portal:totp_enrolled").exists()
    assert Membership.objects.get(user__username="chloe").role == Role.VIEWER
