"""A member's session ends after 30 idle minutes; the admin's keeps its own limit."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User

from registry.portal.middleware import LAST_SEEN_SESSION_KEY
from tests.portal.conftest import PASSWORD, signed_in

pytestmark = pytest.mark.django_db


def idle_for(client, seconds: int) -> None:
    """Pretend the session's last request was ``seconds`` ago."""
    session = client.session
    session[LAST_SEEN_SESSION_KEY] = int(time.time()) - seconds
    session.save()


def test_a_session_idle_more_than_30_minutes_is_sent_to_login(operator):
    # given a member who signed in and used the portal
    client = signed_in(operator)
    assert client.get("/portal/vaults/").status_code == 200
    # when the next request comes 31 minutes later
    idle_for(client, 31 * 60)
    answer = client.get("/portal/vaults/")
    # then it is sent to the login form, which says why
    assert answer.status_code == 302
    assert answer["Location"] == "/portal/login/?next=/portal/vaults/"
    login_page = client.get(answer["Location"]).content.decode()
    assert "après 30 minutes sans activité" in login_page
    # and the session is over for good: coming back at once does not revive it
    assert client.get("/portal/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_each_request_restarts_the_idle_delay(operator):
    client = signed_in(operator)
    client.get("/portal/")
    idle_for(client, 29 * 60)
    assert client.get("/portal/vaults/").status_code == 200
    # the request just made counts as activity: 29 more minutes are fine again
    assert time.time() - client.session[LAST_SEEN_SESSION_KEY] < 5
    idle_for(client, 29 * 60)
    assert client.get("/portal/transfers/").status_code == 200


def test_the_delay_is_a_setting(operator, settings):
    settings.PORTAL_IDLE_SECONDS = 60
    client = signed_in(operator)
    client.get("/portal/")
    idle_for(client, 61)
    assert client.get("/portal/").status_code == 302


def test_a_federation_admin_session_keeps_its_own_limit(client):
    # given an admin (no membership) whose session saw no request for an hour
    client.force_login(User.objects.create_superuser("root", "root@registry.example", PASSWORD))
    idle_for(client, 3600)
    client.get("/")
    # then the portal's idle rule did not end it
    assert "_auth_user_id" in client.session
