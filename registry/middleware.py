"""Request-wide middleware: every request observed once (its request id, one access log line,
and its metrics, issue 12), and people's pages shown in their time zone.

``RequestObservationMiddleware`` comes first in MIDDLEWARE, so its latency covers the whole
stack; the lookup's short path (``registry/wsgi.py``) calls ``begin`` and ``finish`` itself.
The request id is the trusted proxy's ``X-Request-ID`` (nginx's ``$request_id``) or a new one;
it is on every log line written while the request is answered and in the response's
``X-Request-ID``. The access line (logger ``registry.requests``) is INFO, 4xx included (a
refused request is the caller's business, not the operator's), and ERROR for 5xx.
"""

from __future__ import annotations

import logging
import time
import zoneinfo

from django.conf import settings
from django.utils import timezone

from registry import logs, metrics
from registry.api.auth import Principal
from registry.proxies import from_trusted_proxy

access = logging.getLogger("registry.requests")

UNMATCHED = "unmatched"  # a path no URL pattern matches: one label, whatever was asked


def begin(request) -> tuple[float, object]:
    """Start observing: the request id (kept on the request and in the logging context)."""
    started = time.perf_counter()
    given = request.META.get("HTTP_X_REQUEST_ID")
    if given and from_trusted_proxy(request):
        request.request_id = logs.accept_request_id(given)
    else:
        request.request_id = logs.new_request_id()
    return started, logs.request_id.set(request.request_id)


def caller(request) -> str | None:
    """The organisation id behind the request's token; None for anyone else. Read without
    evaluating the session's lazy user (that would cost a query)."""
    user = request.__dict__.get("user")
    if type(user) is not Principal:
        return None
    token = user.token
    owner = token.provider_id or token.issuer_id
    return str(owner) if owner is not None else None


def finish(request, response, route: str, started: float, context) -> None:
    """Stop observing: the response header, the metrics and the access line."""
    seconds = time.perf_counter() - started
    status = response.status_code
    response["X-Request-ID"] = request.request_id
    metrics.observe_request(route, request.method, status, seconds)
    level = logging.ERROR if status >= 500 else logging.INFO
    if access.isEnabledFor(level):
        access.log(
            level,
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "request_id": request.request_id,
                "method": request.method,
                "route": route,
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
                "caller": caller(request),
            },
        )
    logs.request_id.reset(context)


def route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route is not None else UNMATCHED


class RequestObservationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started, context = begin(request)
        response = self.get_response(request)
        finish(request, response, route_of(request), started, context)
        return response


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
