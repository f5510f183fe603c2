"""Pages for people speak their language and show times in the federation's time zone; the
API is a machine interface: always English and UTC, whatever the client's Accept-Language."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone, translation


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
