"""WSGI entry point, used by gunicorn (see deploy/gunicorn.conf.py).

``GET /api/v1/vaults/<number>``, the lookup issuers call millions of times a day, takes a short
path: the same view, called directly, without the middleware stack and URL resolution that the
API's other pages need (sessions, CSRF, messages, locale, OTP: about a third of a lookup through
the whole handler, ``benchmarks/lookup_parts.py``). What the skipped layers do for a lookup is
done here: the host check (ALLOWED_HOSTS), the security headers (Django's own SecurityMiddleware
and XFrameOptionsMiddleware), the Content-Length (CommonMiddleware's; without it gunicorn would
send the answer chunked), the request id, access line and metrics (``begin`` and ``finish`` of
``registry.middleware``), and what the request signals' receivers do for the database: close a
connection that broke or outlived CONN_MAX_AGE, before and after the request. The signals
themselves are not sent (dispatching them to every receiver costs about 10 µs more, some 5% of a
lookup), so a receiver connected to them does not see lookups. Everything else goes to Django as
usual."""

import os

from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

django_application = get_wsgi_application()


class LookupFastPath:
    """Serves single lookups straight from their view; passes every other request on."""

    prefix = "/api/v1/vaults/"

    def __init__(self, app):
        from django.core.handlers.wsgi import WSGIRequest
        from django.middleware.clickjacking import XFrameOptionsMiddleware
        from django.middleware.security import SecurityMiddleware

        from directory.api.views import VaultLookupApi
        from registry import middleware as observation

        self.app = app
        self.request_class = WSGIRequest
        self.view = VaultLookupApi.as_view()
        self.security = SecurityMiddleware(lambda request: None)
        self.frame_options = XFrameOptionsMiddleware(lambda request: None)
        self.observation = observation
        self.route = "/api/v1/vaults/<str:number>"  # the URL pattern's, as the middleware says

    @staticmethod
    def close_unusable_connection() -> None:
        """Django's receiver of the request signals, called directly at request start and
        finish (a test holding a transaction open replaces it, as the test client disconnects
        that receiver)."""
        close_old_connections()

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
        started, context = self.observation.begin(request)
        try:
            request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it
        except DisallowedHost as exc:  # answered and logged as Django's handler would
            response = response_for_exception(request, exc)
        else:
            response = self.security.process_request(request) or self.view(
                request, number=request.path_info[len(self.prefix) :]
            )
        response = self.frame_options.process_response(
            request, self.security.process_response(request, response)
        )
        self.observation.finish(request, response, self.route, started, context)
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
