"""Request-wide settings for people's pages: their time zone, the client's address."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.utils import timezone

# Machine answers keep UTC: the API, the log and well-known documents.
_MACHINE_PREFIXES = ("/api/", "/.well-known/", "/healthz", "/readyz")


class PeopleTimeZoneMiddleware:
    """Show times in ``DISPLAY_TIME_ZONE`` (Europe/Paris) on pages for people; the API stays
    in UTC (``TIME_ZONE``), since DRF renders times in the current zone."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.zone = zoneinfo.ZoneInfo(settings.DISPLAY_TIME_ZONE)

    def __call__(self, request):
        if request.path.startswith(_MACHINE_PREFIXES):
            return self.get_response(request)
        timezone.activate(self.zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def client_ip(request) -> str | None:
    """The client's address for login throttling: behind the TLS proxy (``BEHIND_TLS_PROXY``),
    the last X-Forwarded-For entry, the one the proxy appended; else REMOTE_ADDR."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR")
