"""WSGI entry point, used by gunicorn (see deploy/gunicorn.conf.py).

``GET /api/v1/vaults/<number>``, the lookup issuers call millions of times a day, takes a short
path: the same view, called directly, without the middleware stack and URL resolution that the
API's other pages need (sessions, CSRF, messages, locale, OTP: half of a lookup's time). What
the skipped layers do for a lookup is done here: the host check (ALLOWED_HOSTS), the security
headers (Django's own SecurityMiddleware and XFrameOptionsMiddleware), the Content-Length
(CommonMiddleware's; without it gunicorn would send the answer chunked), and what the request
signals' receivers do for a lookup's one database connection: close it before and after the
request if it broke or outlived CONN_MAX_AGE. The signals themselves are not sent (dispatching
them to every receiver cost about 10% of a lookup), so a receiver connected to them does not see
lookups. Everything else goes to Django as usual.
"""

import os

from django.core.exceptions import DisallowedHost
from django.core.wsgi import get_wsgi_application
from django.db import DEFAULT_DB_ALIAS, connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

django_application = get_wsgi_application()

from registry.api.errors import problem_response  # noqa: E402 (needs the apps loaded)
from registry.errors import ErrorCode  # noqa: E402


class LookupFastPath:
    """Serves single lookups straight from their view; passes every other request on."""

    prefix = "/api/v1/vaults/"

    def __init__(self, app):
        from django.core.handlers.wsgi import WSGIRequest
        from django.middleware.clickjacking import XFrameOptionsMiddleware
        from django.middleware.security import SecurityMiddleware

        from directory.api.views import VaultLookupApi

        self.app = app
        self.request_class = WSGIRequest
        self.view = VaultLookupApi.as_view()
        self.security = SecurityMiddleware(lambda request: None)
        self.frame_options = XFrameOptionsMiddleware(lambda request: None)

    @staticmethod
    def close_unusable_connection() -> None:
        """What ``close_old_connections`` does at request start and finish, for the lookup's
        one connection (a test holding a transaction open replaces it, as the test client
        disconnects that receiver)."""
        connections[DEFAULT_DB_ALIAS].close_if_unusable_or_obsolete()

    def matches(self, environ) -> bool:
        path = environ.get("PATH_INFO", "")
        number = path[len(self.prefix) :]
        return (
            environ.get("REQUEST_METHOD") == "GET"
            and path.startswith(self.prefix)
            and bool(number)
            and "/" not in number
        )

    def __call__(self, environ, start_response):
        if not self.matches(environ):
            return self.app(environ, start_response)
        self.close_unusable_connection()
        request = self.request_class(environ)
        try:
            request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it
        except DisallowedHost:
            response = problem_response(
                400, ErrorCode.BAD_REQUEST, "The request is malformed.", instance=request.path
            )
        else:
            response = self.security.process_request(request) or self.view(
                request, number=request.path_info[len(self.prefix) :]
            )
        response = self.frame_options.process_response(
            request, self.security.process_response(request, response)
        )
        content = response.content
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(content))
        self.close_unusable_connection()
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [
            *response.items(),
            *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
        ]
        start_response(status, headers)
        return [content]


application = LookupFastPath(django_application)
