"""The admin's accounts: one login error whatever failed, throttled guesses, short sessions,
hidden TOTP secrets, audited staff changes, and times shown in Paris."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from registry.models import AuditEvent, Transfer
from registry.services import organisations
from registry.services.common import Actor
from tests.registry.conftest import PASSWORD
from tests.registry.test_admin import current_code

pytestmark = pytest.mark.django_db


def login(client, username="root", password=PASSWORD, code=""):
    return client.post(
        "/admin/login/", {"username": username, "password": password, "otp_token": code}
    )


def errors_of(response) -> list[str]:
    return [str(e) for e in response.context["form"].non_field_errors()]


def test_the_login_error_does_not_say_which_factor_failed(client, admin_user):
    wrong_code = f"{(int(current_code(admin_user)) + 1) % 10**6:06d}"
    answers = [
        login(client, password="wrong password", code=current_code(admin_user)),
        login(client, code=wrong_code),
        login(client),  # right password, no code
        login(client, username="nobody", code="123456"),
    ]
    # every failure shows the same single error and no device list
    assert {response.status_code for response in answers} == {200}
    assert len({tuple(errors_of(response)) for response in answers}) == 1
    assert errors_of(answers[0]) == [
        "Enter the correct username, password and authentication code of a staff account. "
        "The username and password are case-sensitive."
    ]
    for response in answers:
        assert "phone" not in response.content.decode()  # the device's name
    assert client.get("/admin/").status_code == 302


def test_password_guessing_is_throttled(client, admin_user, settings):
    # given five failed attempts for root from one address
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, password="guess")
    # then even the right password and code are refused, and the admin stays closed
    response = login(client, code=current_code(admin_user))
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_wrong_codes_after_a_right_password_count_as_failures(client, admin_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, code="000000")
    assert login(client, code=current_code(admin_user)).status_code == 429


def test_sessions_are_short_and_end_with_the_browser(client, admin_user, settings):
    response = login(client, code=current_code(admin_user))
    assert response.status_code == 302
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
    assert client.session.get_expire_at_browser_close() is True
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["expires"] == "" and cookie["max-age"] == ""  # a browser-session cookie


def test_totp_secrets_are_not_shown(otp_client, admin_user):
    device = admin_user.totpdevice_set.get()
    page = otp_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    listing = otp_client.get("/admin/otp_totp/totpdevice/").content.decode()
    for shown in (page, listing):
        assert device.key not in shown
        assert "qrcode" not in shown
    assert 'name="key"' not in page


def test_staff_user_and_device_changes_are_audited(otp_client, admin_user):
    # when an admin creates another superuser
    response = otp_client.post(
        "/admin/auth/user/add/",
        {
            "username": "bob",
            "password1": "another long passphrase 42",
            "password2": "another long passphrase 42",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    bob = User.objects.get(username="bob")
    created = AuditEvent.objects.get(action="user:created")
    assert (created.actor, created.target_id, created.data["username"]) == (
        "user:root",
        str(bob.pk),
        "bob",
    )
    assert "another long passphrase" not in str(created.data)

    # when they make bob a superuser, then give him a TOTP device and remove it
    otp_client.post(
        f"/admin/auth/user/{bob.pk}/change/",
        {
            "username": "bob",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    changed = AuditEvent.objects.get(action="user:changed")
    assert changed.data["is_superuser"] is True
    assert "Superuser status" in str(changed.data["change"])

    response = otp_client.post(
        "/admin/otp_totp/totpdevice/add/",
        {
            "user": bob.pk,
            "name": "bob's phone",
            "key": "3132333435363738393031323334353637383930",
            "step": 30,
            "t0": 0,
            "digits": 6,
            "tolerance": 1,
            "drift": 0,
            "throttling_failure_count": 0,
            "confirmed": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    device = TOTPDevice.objects.get(user=bob)
    otp_client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})

    # then each change is in the audit trail, without the device's key
    events = AuditEvent.objects.filter(target_type="totpdevice").order_by("id")
    assert [e.action for e in events] == ["totpdevice:created", "totpdevice:deleted"]
    assert events[0].data["user"] == "bob"
    assert device.key not in str(list(events.values()))


def test_audit_rows_keep_the_actors_name_after_the_user_is_deleted(provider):
    # given a change made by an admin who is later deleted
    alice = User.objects.create_superuser("alice", "alice@registry.example", PASSWORD)
    organisations.provider_set_status(
        actor=Actor.for_user(alice), provider=provider, status="suspended", reason="audit"
    )
    alice.delete()
    # then the audit event and the status history still name her
    event = AuditEvent.objects.get(action="status:suspended")
    assert (event.actor, event.actor_user) == ("user:alice", None)
    assert provider.status_changes.get(to_status="suspended").actor == "user:alice"


def test_the_admin_shows_times_in_paris_and_the_api_in_utc(otp_client, pending, losing_client):
    # given a deadline at noon UTC in January (1 p.m. in Paris)
    Transfer.objects.filter(pk=pending.pk).update(deadline=datetime(2027, 1, 15, 12, tzinfo=UTC))
    page = otp_client.get("/admin/registry/transfer/").content.decode()
    assert "Jan. 15, 2027, 1 p.m." in page
    answer = losing_client.get(f"/api/v1/provider/transfers/{pending.pk}").json()
    assert answer["deadline"].startswith("2027-01-15T12:00:00")
    assert timezone.get_current_timezone_name() == "UTC"  # nothing leaked past the request
