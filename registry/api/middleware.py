"""Refuse oversized API bodies before anything reads them (DRF's JSON parser has no limit)."""

from __future__ import annotations

from django.conf import settings

from registry.api.errors import problem_response
from registry.errors import ErrorCode


class ApiBodyLimitMiddleware:
    """413 problem+json when Content-Length exceeds the view's limit.

    A view names its limit with ``max_body_setting`` (a setting's name, read per request so that
    it can be changed in tests); the default is VAULT_API_MAX_BODY.

    Django reads at most Content-Length bytes of a body, so checking the header is enough to
    bound what the API ever holds in memory. A chunked body (``Transfer-Encoding`` without
    ``Content-Length``) would read as empty, a plan "asking for no number": it is refused with
    411 Length Required. The nginx site in deploy/ buffers chunked bodies and passes them on
    with a Content-Length, so clients behind it may still send them.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not request.path.startswith("/api/"):
            return None
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = getattr(settings, getattr(view_class, "max_body_setting", "VAULT_API_MAX_BODY"))
        if "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH"):
            return problem_response(
                411,
                ErrorCode.LENGTH_REQUIRED,
                "Send the body with a Content-Length header, not chunked.",
                instance=request.path,
            )
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return problem_response(
                400, ErrorCode.BAD_REQUEST, "Content-Length is not a number.", instance=request.path
            )
        if length > limit:
            return problem_response(
                413,
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"The request body is {length} bytes; this endpoint accepts at most {limit}.",
                instance=request.path,
                max_bytes=limit,
            )
        return None
