"""Every request observed once: its request id, one access log line, and its metrics (issue 12).

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
