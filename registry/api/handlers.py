"""Django's error views: problem+json under /api/, Django's own pages elsewhere."""

from __future__ import annotations

from django.views import defaults

from registry.api.errors import problem_response
from registry.errors import ErrorCode


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    if _is_api(request):
        return problem_response(
            400, ErrorCode.BAD_REQUEST, "The request is malformed.", instance=request.path
        )
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if _is_api(request):
        return problem_response(
            403, ErrorCode.PERMISSION_DENIED, "Forbidden.", instance=request.path
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception=None):
    if _is_api(request):
        return problem_response(
            404, ErrorCode.NOT_FOUND, "There is nothing at this address.", instance=request.path
        )
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return problem_response(
            500,
            ErrorCode.SERVER_ERROR,
            "The registry could not answer; the error was logged.",
            instance=request.path,
        )
    return defaults.server_error(request)
