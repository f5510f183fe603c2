"""Fixtures for portability tests (a clock to move, the three sides of a transfer) and for the
federation admin (a superuser with TOTP, a session that passed it, changelist actions).

``provider`` (tests/conftest.py) hosts ``vault`` and is the losing side; ``other_provider`` is the
gaining side; ``third_provider`` sees neither.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from registry.services import transfers
from registry.services.common import Actor
from tests.factories import deliverable_provider, make_token


class Clock:
    """``timezone.now`` frozen at a moment the test moves forward; no sleeping."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(timezone.now())
    monkeypatch.setattr(timezone, "now", clock)
    return clock


def bearer(owner, days: int = 400) -> APIClient:
    """An API client for ``owner`` whose token outlives any clock move of a test."""
    client = APIClient()
    _token, value = make_token(owner, expires_at=timezone.now() + timedelta(days=days))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
    return client


@pytest.fixture
def third_provider(db):
    return deliverable_provider()


@pytest.fixture
def losing_client(provider) -> APIClient:
    return bearer(provider)


@pytest.fixture
def gaining_client(other_provider) -> APIClient:
    return bearer(other_provider)


@pytest.fixture
def third_client(third_provider) -> APIClient:
    return bearer(third_provider)


@pytest.fixture
def holder_code(provider, vault) -> str:
    """A code the losing provider issued for the holder of ``vault``."""
    _code, value = transfers.transfer_code_issue(
        actor=Actor.system("tests"), provider=provider, vault=vault
    )
    return value


@pytest.fixture
def pending(clock, provider, other_provider, vault, holder_code):
    """A transfer of ``vault`` from ``provider`` to ``other_provider``, awaiting an answer."""
    transfer = transfers.transfer_request(
        actor=Actor.system("tests"),
        gaining_provider=other_provider,
        number=vault.number,
        code=holder_code,
        consent_reference="consent-42",
    )
    return transfer


# --- The federation admin -------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_user(db):
    """A superuser with a confirmed TOTP device (overrides pytest-django's ``admin_user``)."""
    user = User.objects.create_superuser("root", "root@registry.example", PASSWORD)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


@pytest.fixture
def otp_client(client, admin_user):
    """A browser session that passed both the password and the TOTP code."""
    client.force_login(admin_user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = admin_user.totpdevice_set.get().persistent_id
    session.save()
    return client


def run_action(client, model: str, action: str, pks, query: str = "", follow=False, **form):
    """Post an admin changelist action for the rows ``pks``, with any extra form fields.

    A confirmation (``apply``) says how many records the admin was shown (``expected``): by
    default, as many as were selected.
    """
    url = f"/admin/registry/{model}/{query}"
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], **form}
    if "apply" in form:
        data.setdefault("expected", str(len(pks)))
    return client.post(url, data, follow=follow)


@pytest.fixture(autouse=True)
def _english_admin(settings):
    """The admin's tests read its English labels (people's default language is French)."""
    settings.LANGUAGE_CODE = "en"
