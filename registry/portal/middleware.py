"""Pages for people speak their language and show times in the federation's time zone; the
API is a machine interface: always English and UTC, whatever the client's Accept-Language.

A member's session ends after ``PORTAL_IDLE_SECONDS`` (30 minutes) without a request, however
long the session cookie would last (the admin keeps ``SESSION_COOKIE_AGE``)."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.utils import timezone, translation
from django.utils.translation import gettext as _

LAST_SEEN_SESSION_KEY = "portal_last_seen"


class PeopleTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
            return self.get_response(request)
        timezone.activate(settings.PEOPLE_TIME_ZONE)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class PortalIdleTimeoutMiddleware:
    """Sign a member out when their previous request is older than ``PORTAL_IDLE_SECONDS``.

    The time of each request is kept in the session (saved on every request anyway,
    ``SESSION_SAVE_EVERY_REQUEST``); an idle session is flushed server-side, so a stolen cookie
    is worth nothing after the delay either. The request then goes on anonymous: a portal page
    sends it to the login form, which says why. Staff of the federation (no membership) are
    left alone. After the authentication, OTP and message middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and not request.path.startswith("/api/")
            and user.is_authenticated
            and getattr(user, "membership", None) is not None
        ):
            now = int(time.time())
            last_seen = request.session.get(LAST_SEEN_SESSION_KEY, now)
            if now - last_seen > settings.PORTAL_IDLE_SECONDS:
                logout(request)
                messages.info(
                    request,
                    _("You were signed out after %(minutes)d minutes without activity.")
                    % {"minutes": settings.PORTAL_IDLE_SECONDS // 60},
                )
            else:
                request.session[LAST_SEEN_SESSION_KEY] = now
        return self.get_response(request)
